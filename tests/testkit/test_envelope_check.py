"""``assert_preserves_message_envelope`` (spec/testkit-viz.md)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy
from penguiflow.testkit import assert_preserves_message_envelope


async def keeps(message: Message, _ctx: Any) -> Message:
    message.meta["seen"] = True
    return message.model_copy(update={"payload": {"changed": True}})


async def returns_payload(message: Message, _ctx: Any) -> Any:
    return message.payload


async def new_headers(message: Message, _ctx: Any) -> Message:
    return message.model_copy(update={"headers": Headers(tenant="other")})


async def new_trace(message: Message, _ctx: Any) -> Message:
    return message.model_copy(update={"trace_id": "different"})


async def new_both(message: Message, _ctx: Any) -> Message:
    return message.model_copy(update={"trace_id": "x", "headers": Headers(tenant="y")})


async def test_returns_the_result_when_the_envelope_is_kept() -> None:
    result = await assert_preserves_message_envelope(keeps)
    assert result.payload == {"changed": True}
    assert result.meta == {"seen": True}


async def test_default_message_has_an_empty_payload_and_test_tenant() -> None:
    seen: list[Message] = []

    async def capture(message: Message, _ctx: Any) -> Message:
        seen.append(message)
        return message

    await assert_preserves_message_envelope(capture)
    assert seen[0].payload == {}
    assert seen[0].headers == Headers(tenant="test")


async def test_uses_the_given_message_and_context() -> None:
    message = Message(payload=1, headers=Headers(tenant="acme"))
    ctx = object()
    seen: list[Any] = []

    async def capture(msg: Message, context: Any) -> Message:
        seen.extend([msg, context])
        return msg

    assert await assert_preserves_message_envelope(capture, message=message, ctx=ctx) is message
    assert seen == [message, ctx]


async def test_accepts_a_node_and_names_it_in_errors() -> None:
    node = Node(returns_payload, name="packer", policy=NodePolicy(validate="none"))
    with pytest.raises(AssertionError) as info:
        await assert_preserves_message_envelope(node)
    assert str(info.value) == "Node 'packer' must return a Message but produced dict"


async def test_rejects_a_sync_callable() -> None:
    def sync(message: Any, _ctx: Any) -> Any:
        return message

    with pytest.raises(
        TypeError, match=r"^assert_preserves_message_envelope expects an async node$"
    ):
        await assert_preserves_message_envelope(sync)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("func", "fields"),
    [
        pytest.param(new_headers, "headers", id="headers"),
        pytest.param(new_trace, "trace_id", id="trace_id"),
        pytest.param(new_both, "headers, trace_id", id="both"),
    ],
)
async def test_reports_which_envelope_fields_changed(func: Any, fields: str) -> None:
    with pytest.raises(AssertionError) as info:
        await assert_preserves_message_envelope(func)
    assert str(info.value) == (
        f"Node '{func.__name__}' altered Message {fields}; preserve the envelope"
    )


async def test_callable_without_a_name_is_anonymous() -> None:
    with pytest.raises(AssertionError, match=r"^Node '<anonymous>' must return a Message"):
        await assert_preserves_message_envelope(functools.partial(returns_payload))


async def test_stub_context_emits_nothing_and_refuses_chunks() -> None:
    async def uses_ctx(message: Message, ctx: Any) -> Message:
        await ctx.emit(message)
        ctx.emit_nowait(message)
        with pytest.raises(RuntimeError) as info:
            await ctx.emit_chunk(parent=message, text="t")
        assert str(info.value) == (
            "FlowTestKit stub context does not support emit_chunk; "
            "provide a custom context via the 'ctx' parameter"
        )
        return message

    result = await assert_preserves_message_envelope(uses_ctx)
    assert isinstance(result, Message)
