"""Items cross a process boundary as JSON and come back as the same types."""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass

import pytest
from redis_flows import Loose, Order, Tagged

from penguiflow import FlowError, FlowErrorCode, Headers, Message, StreamChunk
from penguiflow._runtime.tracing import Carried
from penguiflow.distributed._codec import decode, dumps, encode, loads
from penguiflow.errors import PenguiFlowError, SerializationError


class Colour(enum.Enum):
    RED = "red"


def _roundtrip(value: object) -> object:
    return loads(dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param({"a": [1, 2.5, "x", True, None]}, id="json"),
        pytest.param((1, (2, 3)), id="tuple"),
        pytest.param(b"\x00bytes", id="bytes"),
        pytest.param({"$model": "not a tag"}, id="dollar-keys"),
        pytest.param(Colour.RED, id="enum"),
        pytest.param(Tagged("t", 3), id="dataclass"),
        pytest.param(Order(sku="a", qty=1, notes=["n"]), id="model"),
        pytest.param(StreamChunk(stream_id="s", seq=2, text="hi"), id="chunk"),
    ],
)
def test_value_round_trips_with_its_type(value: object) -> None:
    back = _roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_message_keeps_its_payload_model_and_envelope() -> None:
    msg = Message(
        payload=Order(sku="s", qty=2), headers=Headers(tenant="t"), deadline_s=5.0, meta={"k": 1}
    )
    back = _roundtrip(msg)
    assert back == msg
    assert isinstance(back.payload, Order)


def test_json_friendly_objects_travel_as_their_json_form() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    ident = uuid.UUID(int=7)
    assert _roundtrip({"when": when, "id": ident}) == {"when": when.isoformat(), "id": str(ident)}


def test_flow_error_travels_without_its_exception_object() -> None:
    original = FlowError(
        trace_id="t",
        node_name="n",
        node_id="i",
        code=FlowErrorCode.NODE_TIMEOUT,
        message="slow",
        original_exc=TimeoutError("late"),
        metadata={"attempt": 2},
    )
    back = _roundtrip(original)
    assert isinstance(back, FlowError)
    assert back.to_payload() == {
        **original.to_payload(),
        "metadata": {"attempt": 2, "remote_exception": "TimeoutError('late')"},
    }
    assert back.unwrap() is None


@pytest.mark.parametrize(
    ("value", "path"),
    [
        pytest.param({"rows": [1, object()]}, "rows[1]", id="object-in-list"),
        pytest.param({1: "x"}, "", id="int-key"),
        pytest.param(Message(payload=lambda: 1, headers=Headers(tenant="t")), "payload", id="func"),
    ],
)
def test_unserialisable_value_names_where_it_sits(value: object, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        encode(value)
    assert info.value.path == path
    assert isinstance(info.value, PenguiFlowError)
    assert isinstance(info.value, TypeError)


def test_class_defined_in_a_function_cannot_cross() -> None:
    @dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="defined inside a function"):
        encode({"v": Local(1)})


def test_unknown_type_on_the_receiving_side_is_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="cannot import 'nowhere_at_all:Thing'"):
        decode({"$model": "nowhere_at_all:Thing", "$fields": {}})


def test_invalid_model_data_on_the_receiving_side_is_a_clear_error() -> None:
    tree = encode(Order(sku="a", qty=1))
    tree["$fields"]["qty"] = "not a number"
    with pytest.raises(SerializationError, match="does not validate"):
        decode(tree)


def test_model_extra_fields_travel() -> None:
    model = Loose(name="n", colour="red", size=[1, 2])
    back = _roundtrip(model)
    assert back == model
    assert back.model_extra == {"colour": "red", "size": [1, 2]}


def test_a_bare_payload_keeps_the_trace_it_carries() -> None:
    carried = Carried({"$odd": 1, "plain": Order(sku="a", qty=1)}, "trace-1")
    back = loads(dumps(carried))
    assert type(back) is Carried
    assert (back.item, back.trace) == (carried.item, "trace-1")
