"""What create(..., durable=True) refuses, and the names durable flows add."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from durable_support import memory_store, message

import penguiflow
from penguiflow import Node, NodePolicy, create, hosting
from penguiflow.errors import DurabilityError, PenguiFlowError
from penguiflow.testkit import InMemoryStateStore


async def ident(msg: Any, ctx: Any) -> Any:
    return msg


def node(name: str) -> Node:
    return Node(ident, name=name, policy=NodePolicy(validate="none"))


def test_durable_without_a_state_store_is_refused() -> None:
    with pytest.raises(DurabilityError, match="needs a state_store"):
        create(node("a").to(), durable=True)


def test_durable_on_a_store_without_a_journal_is_refused() -> None:
    with pytest.raises(DurabilityError, match="InMemoryStateStore keeps no journal"):
        create(node("a").to(), state_store=InMemoryStateStore(), durable=True)


def test_durable_needs_unique_node_names() -> None:
    first, second = node("same"), node("same")
    with pytest.raises(DurabilityError, match="unique node names"):
        create(first.to(second), state_store=memory_store(), durable=True)


def test_durability_error_sits_in_the_hierarchy() -> None:
    assert issubclass(DurabilityError, PenguiFlowError)
    assert issubclass(DurabilityError, TypeError)  # as journal_of raises
    assert "DurabilityError" in penguiflow.errors.__all__


def test_the_flow_says_whether_it_is_durable() -> None:
    assert create(node("a").to(), state_store=memory_store(), durable=True).durable
    assert not create(node("a").to()).durable


async def test_recover_before_run_is_refused() -> None:
    flow = create(node("a").to(), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match=r"before flow\.recover"):
        await flow.recover()


async def test_recover_twice_is_refused() -> None:
    flow = create(node("a").to(), state_store=memory_store(), durable=True)
    flow.run()
    try:
        assert await flow.recover() == []
        with pytest.raises(DurabilityError, match="already called"):
            await flow.recover()
    finally:
        await flow.stop()


async def test_recover_on_a_flow_that_is_not_durable_is_refused() -> None:
    flow = create(node("a").to())
    flow.run()
    try:
        with pytest.raises(DurabilityError, match="durable=True"):
            await flow.recover()
    finally:
        await flow.stop()


async def test_emit_nowait_on_a_durable_flow_names_emit() -> None:
    flow = create(node("a").to(), state_store=memory_store(), durable=True)
    flow.run()
    try:
        with pytest.raises(DurabilityError, match=r"await flow.emit"):
            flow.emit_nowait(message())
    finally:
        await flow.stop()


async def test_rookery_fetch_nowait_on_a_durable_flow_names_fetch() -> None:
    flow = create(node("a").to(), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match=r"await flow.fetch"):
        flow.context(hosting.ROOKERY).fetch_nowait()


async def test_an_idempotency_key_needs_a_durable_flow() -> None:
    flow = create(node("a").to())
    flow.run()
    try:
        with pytest.raises(DurabilityError, match="idempotency_key needs a durable flow"):
            await flow.emit(message(), idempotency_key="k")
    finally:
        await flow.stop()


def test_a_deployment_cannot_take_a_durable_node() -> None:
    a = node("a")
    flow = create(a.to(), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match="deployments"):
        hosting.replace_mailbox(flow, a, asyncio.Queue())  # type: ignore[arg-type]


def test_record_state_outside_a_durable_step_records_nothing() -> None:
    assert hosting.record_state("join:x", [1]) is False


async def test_a_durable_node_cannot_fetch_its_own_edges() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match="cannot fetch from its own edges"):
        await flow.context(b).fetch()
    with pytest.raises(DurabilityError, match="cannot fetch from its own edges"):
        flow.context(b).fetch_nowait()


def test_taking_the_rookery_buffer_of_a_durable_flow_is_refused() -> None:
    flow = create(node("a").to(), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match="take_rookery_buffer"):
        hosting.take_rookery_buffer(flow)
