"""Routing policies: ``RoutingRequest``, ``evaluate_policy`` and ``DictRoutingPolicy``."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from penguiflow import policies
from penguiflow.node import Node
from penguiflow.policies import (
    DictRoutingPolicy,
    RoutingPolicy,
    RoutingRequest,
    evaluate_policy,
)
from penguiflow.types import Headers, Message


async def _noop(message: Any, ctx: Any) -> None:
    return None


def _node(name: str) -> Node:
    return Node(_noop, name=name)


def _request(trace_id: str | None = "t1", message: Any = None) -> RoutingRequest:
    router = _node("router")
    return RoutingRequest(
        message=message,
        context=object(),  # type: ignore[arg-type]
        node=router,
        proposed=(_node("left"), _node("right")),
        trace_id=trace_id,
    )


def test_module_exports_the_documented_names() -> None:
    assert set(policies.__all__) == {
        "DictRoutingPolicy",
        "PolicyCallable",
        "PolicyLike",
        "RoutingDecisionType",
        "RoutingPolicy",
        "RoutingRequest",
        "evaluate_policy",
    }


def test_routing_request_fields_are_in_spec_order() -> None:
    assert [f.name for f in fields(RoutingRequest)] == [
        "message",
        "context",
        "node",
        "proposed",
        "trace_id",
    ]


def test_routing_request_is_slotted_and_mutable() -> None:
    request = _request()
    request.trace_id = "other"
    assert request.trace_id == "other"
    with pytest.raises(AttributeError):
        request.extra = 1  # type: ignore[attr-defined]


def test_routing_request_names_the_router_and_the_proposals() -> None:
    request = _request()
    assert request.node_name == "router"
    assert request.proposed_names == ("left", "right")


def test_routing_request_names_fall_back_to_node_id_when_name_is_empty() -> None:
    request = _request()
    request.node.name = ""
    request.proposed[0].name = ""
    assert request.node_name == request.node.node_id
    assert request.proposed_names == (request.proposed[0].node_id, "right")


async def test_evaluate_policy_calls_select_on_policy_objects() -> None:
    class Policy:
        def select(self, request: RoutingRequest) -> str:
            return f"picked-{request.trace_id}"

    assert await evaluate_policy(Policy(), _request()) == "picked-t1"


async def test_evaluate_policy_awaits_async_select() -> None:
    class Policy:
        async def select(self, request: RoutingRequest) -> list[str]:
            return ["left"]

    assert await evaluate_policy(Policy(), _request()) == ["left"]


async def test_evaluate_policy_calls_plain_callables() -> None:
    assert await evaluate_policy(lambda request: request.proposed_names[1], _request()) == "right"


async def test_evaluate_policy_awaits_async_callables() -> None:
    async def policy(request: RoutingRequest) -> None:
        return None

    assert await evaluate_policy(policy, _request()) is None


def test_dict_policy_satisfies_the_protocol() -> None:
    assert isinstance(DictRoutingPolicy({}), RoutingPolicy)


def test_dict_policy_selects_by_trace_id_by_default() -> None:
    policy = DictRoutingPolicy({"t1": ["left"]}, default="right")
    assert policy.select(_request("t1")) == ["left"]
    assert policy.select(_request("t2")) == "right"


def test_dict_policy_returns_the_stored_decision_object_unchanged() -> None:
    decision = ["router"]
    policy = DictRoutingPolicy({"t1": decision})
    assert policy.select(_request("t1")) is decision


def test_dict_policy_uses_default_for_a_none_key() -> None:
    policy = DictRoutingPolicy({"None": "wrong"}, default="fallback")
    assert policy.select(_request(None)) == "fallback"


def test_dict_policy_without_default_drops_unknown_keys() -> None:
    assert DictRoutingPolicy({"t1": "left"}).select(_request("zzz")) is None


def test_dict_policy_copies_the_mapping() -> None:
    mapping = {"t1": "left"}
    policy = DictRoutingPolicy(mapping)
    mapping["t1"] = "right"
    assert policy.select(_request("t1")) == "left"


def test_dict_policy_uses_a_custom_key_getter() -> None:
    policy = DictRoutingPolicy(
        {"acme": "left"},
        default="right",
        key_getter=lambda request: request.message.headers.tenant,
    )
    acme = Message(payload=1, headers=Headers(tenant="acme"))
    other = Message(payload=1, headers=Headers(tenant="zeta"))
    assert policy.select(_request(message=acme)) == "left"
    assert policy.select(_request(message=other)) == "right"


def test_update_mapping_replaces_the_whole_mapping_with_a_copy() -> None:
    policy = DictRoutingPolicy({"t1": "left", "t2": "left"})
    replacement = {"t1": "right"}
    policy.update_mapping(replacement)
    replacement["t1"] = "changed"
    assert policy.select(_request("t1")) == "right"
    assert policy.select(_request("t2")) is None


def test_set_default_replaces_the_default() -> None:
    policy = DictRoutingPolicy({}, default="left")
    policy.set_default(["right"])
    assert policy.select(_request("t1")) == ["right"]


def test_from_json_builds_a_policy_and_forwards_options() -> None:
    policy = DictRoutingPolicy.from_json(
        json.dumps({"acme": ["left"]}), default="right", key_getter=lambda r: r.message
    )
    assert policy.select(_request(message="acme")) == ["left"]
    assert policy.select(_request(message="other")) == "right"


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "3", "null"], ids=str)
def test_from_json_rejects_non_objects(payload: str) -> None:
    with pytest.raises(TypeError) as info:
        DictRoutingPolicy.from_json(payload)
    assert str(info.value) == "JSON payload must decode to a mapping"


def test_from_json_propagates_decode_errors() -> None:
    with pytest.raises(json.JSONDecodeError):
        DictRoutingPolicy.from_json("{not json")


def test_from_json_file_reads_utf8(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"tenant-é": "right"}, ensure_ascii=False), encoding="utf-8")
    policy = DictRoutingPolicy.from_json_file(str(path), key_getter=lambda r: r.message)
    assert policy.select(_request(message="tenant-é")) == "right"


def test_from_json_file_rejects_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(TypeError, match="JSON payload must decode to a mapping"):
        DictRoutingPolicy.from_json_file(str(path))


def test_from_env_parses_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_ROUTES", '{"t1": "left"}')
    policy = DictRoutingPolicy.from_env("PF_ROUTES", default="right")
    assert policy.select(_request("t1")) == "left"
    assert policy.select(_request("t9")) == "right"


def test_from_env_uses_a_custom_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_ROUTES", "t1=left")
    seen: list[str] = []

    def loader(raw: str) -> dict[str, str]:
        seen.append(raw)
        key, value = raw.split("=")
        return {key: value}

    policy = DictRoutingPolicy.from_env("PF_ROUTES", loader=loader, key_getter=lambda r: r.message)
    assert seen == ["t1=left"]
    assert policy.select(_request(message="t1")) == "left"


def test_from_env_missing_variable_raises_key_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_ROUTES_MISSING", raising=False)
    with pytest.raises(KeyError) as info:
        DictRoutingPolicy.from_env("PF_ROUTES_MISSING")
    assert info.value.args == ("Environment variable 'PF_ROUTES_MISSING' not set",)


@pytest.mark.parametrize(
    ("raw", "loader"),
    [
        pytest.param("[1]", None, id="json-list"),
        pytest.param("x", lambda raw: [raw], id="loader-list"),
    ],
)
def test_from_env_rejects_non_mappings(
    monkeypatch: pytest.MonkeyPatch, raw: str, loader: Any
) -> None:
    monkeypatch.setenv("PF_ROUTES", raw)
    with pytest.raises(TypeError) as info:
        DictRoutingPolicy.from_env("PF_ROUTES", loader=loader)
    assert str(info.value) == "Policy loader must return a mapping"
