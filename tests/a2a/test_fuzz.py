"""Hostile bodies on every route: never a 5xx, invalid JSON, exception text or a stuck task.

The fuzz half draws (route, body) cases with hypothesis (derandomized, so each run
sends the same bodies); the targeted half pins each bug found from outside.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from a2a_support import AGENT_URL, Gates, build_flow, make_card, message, rpc
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penguiflow import Message, Node, NodePolicy, create
from penguiflow.testkit import FakeClock
from penguiflow_a2a import A2AServerAdapter, create_a2a_app
from penguiflow_a2a._aiohttp_app import SERVICE_KEY
from penguiflow_a2a._http import BODY_TIMEOUT_KEY
from penguiflow_a2a.jsonrpc import METHODS
from penguiflow_a2a.principals import SHARED_PRINCIPAL

# -- what every reply must satisfy -----------------------------------------------------------

_LEAKS = ("Traceback", "recursion", "Error(", 'File "', "Exception(")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} in a reply")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} in a reply")
    return value


def strict_json(raw: bytes) -> Any:
    """Parse as RFC 8259 JSON: UTF-8 only, no NaN/Infinity, no lone surrogates."""
    text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
    value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    # A lone surrogate cannot be encoded as UTF-8: re-encoding finds it.
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def check_reply(status: int, content_type: str, raw: bytes, *, leaks: bool = True) -> None:
    """No 5xx, strict JSON (or SSE frames of strict JSON), no exception text.

    ``leaks=False`` skips the exception-text check (a ``FlowError`` the flow sent
    to Rookery names its exception by design).
    """
    assert status < 500, (status, raw[:300])
    text = raw.decode("utf-8")
    for leak in _LEAKS if leaks else ():
        assert leak.lower() not in text.lower(), (leak, text[:300])
    if content_type.startswith("text/event-stream"):
        for frame in text.split("\n\n"):
            for line in frame.split("\n"):
                if line.startswith("data: "):
                    strict_json(line.removeprefix("data: ").encode())
        return
    assert content_type == "application/json", content_type
    strict_json(raw)


async def post(
    client: TestClient[Any, Any], path: str, body: bytes, *, leaks: bool = True
) -> tuple[int, Any]:
    """POST ``body`` as JSON, check the reply, return its status and parsed JSON (or SSE text)."""
    async with asyncio.timeout(5):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        raw = await response.read()
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    check_reply(response.status, content_type, raw, leaks=leaks)
    if content_type == "application/json":
        return response.status, strict_json(raw)
    return response.status, raw.decode()


async def assert_every_task_settled(
    client: TestClient[Any, Any], *, leaks: bool = True
) -> list[dict[str, Any]]:
    """Wait for every stored task to end; ListTasks is strict JSON, every task terminal."""
    service = client.server.app[SERVICE_KEY]
    async with asyncio.timeout(5):
        for record in service.tasks.records(SHARED_PRINCIPAL):
            await record.done.wait()
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"pageSize": 100}}
    _, reply = await post(client, "/", json.dumps(body).encode(), leaks=leaks)
    tasks: list[dict[str, Any]] = reply["result"]["tasks"]
    for task in tasks:
        assert task["status"]["state"] in {
            "TASK_STATE_COMPLETED",
            "TASK_STATE_FAILED",
            "TASK_STATE_CANCELED",
        }, task
    return tasks


# -- hostile pieces ------------------------------------------------------------------------------

HOSTILE_TOKENS: list[bytes] = [
    b"1e999",
    b"-1e999",
    b"1E400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'"\\ud800"',
    b'"\\udfff tail"',
    b'"a\\udc00"',
    b'"\xed\xa0\x80"',  # an encoded surrogate: not UTF-8
    b'"\xff\xfe"',
    b"[" * 500 + b"]" * 500,
    b'{"a":' * 500 + b"1" + b"}" * 500,
    b"[" * 10_000 + b"]" * 10_000,
    b"1" + b"0" * 5000,  # beyond the int-to-str digit limit
    b"",
    b"{",
    b'"unterminated',
    b"[1,]",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

filler = st.one_of(
    st.sampled_from(HOSTILE_TOKENS),
    json_values.map(lambda value: json.dumps(value).encode()),
)

_MSG = (
    '{"messageId":"m","role":"ROLE_USER","parts":[{"text":"hi"}],'
    '"metadata":{"headers":{"tenant":"t"}}}'
)
_RPC_TEMPLATES = [
    '{"jsonrpc":"2.0","id":@@,"method":"%M","params":{"message":' + _MSG + "}}",
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":@@}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"message":@@}}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"id":@@}}',
    '{"jsonrpc":"2.0","id":1,"method":@@,"params":{}}',
    '{"jsonrpc":@@,"id":1,"method":"%M"}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"message":{"messageId":"m","role":"ROLE_USER",'
    '"parts":[{"data":@@}],"metadata":{"headers":{"tenant":"t"}}}}}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"message":{"messageId":@@,"parts":@@}}}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"message":{"messageId":"m","parts":'
    '[{"text":@@}],"metadata":@@}}}',
    '{"jsonrpc":"2.0","id":1,"method":"%M","params":{"message":' + _MSG + ',"configuration":@@}}',
    "@@",
]
_LEGACY_TEMPLATES = [
    '{"payload":@@,"headers":{"tenant":"t"}}',
    '{"payload":{"x":[@@]},"headers":{"tenant":"t"}}',
    '{"payload":1,"headers":@@}',
    '{"payload":1,"headers":{"tenant":@@}}',
    '{"payload":1,"headers":{"tenant":"t"},"meta":@@,"traceId":@@}',
    '{"payload":1,"headers":{"tenant":"t"},"taskId":@@,"deadlineSeconds":@@}',
    "@@",
]
_CANCEL_TEMPLATES = ['{"taskId":@@}', "@@", '{"taskId":"t","extra":@@}']
_REST_TEMPLATES = [
    '{"message":@@}',
    '{"message":' + _MSG + ',"configuration":@@,"metadata":@@}',
    '{"message":{"messageId":"m","parts":[{"data":@@}],"metadata":{"headers":{"tenant":"t"}}}}',
    "@@",
]

ROUTES: list[tuple[str, list[str]]] = [
    ("/message/send", _LEGACY_TEMPLATES),
    ("/message/stream", _LEGACY_TEMPLATES),
    ("/tasks/cancel", _CANCEL_TEMPLATES),
    ("/", _RPC_TEMPLATES),
    ("/message:send", _REST_TEMPLATES),
    ("/message:stream", _REST_TEMPLATES),
    ("/tasks/t1:cancel", _CANCEL_TEMPLATES),
    ("/tasks/t1:subscribe", _CANCEL_TEMPLATES),
]


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bytes]:
    """One hostile request: a route and a body built from a template with hostile holes."""
    path, templates = draw(st.sampled_from(ROUTES))
    template = draw(st.sampled_from(templates))
    method = draw(st.sampled_from([*METHODS, "Nope", ""]))
    pieces = template.replace("%M", method).encode().split(b"@@")
    body = pieces[0]
    for piece in pieces[1:]:
        body += draw(filler) + piece
    if draw(st.booleans()) and len(body) > 2:
        body = body[: draw(st.integers(0, len(body) - 1))]  # cut short
    return path, body


def _app_client() -> tuple[TestClient[Any, Any], Gates]:
    gates = Gates()
    adapter = A2AServerAdapter(
        build_flow(gates, emit_errors_to_rookery=True),
        agent_card=make_card(),
        agent_url=AGENT_URL,
    )
    app = create_a2a_app(adapter, sse_heartbeat_s=None)
    return TestClient(TestServer(app, host="127.0.0.1")), gates


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(cases(), min_size=1, max_size=12))
def test_hostile_bodies_on_every_route_get_strict_json_and_leave_no_task_working(
    batch: list[tuple[str, bytes]],
) -> None:
    async def main() -> None:
        client, gates = _app_client()
        async with asyncio.timeout(20):
            await client.start_server()
            try:
                for path, body in batch:
                    await post(client, path, body)
                await assert_every_task_settled(client)
            finally:
                for gate in list(gates._gates.values()):
                    gate.set()
                await client.close()

    asyncio.run(main())


# -- targeted: one test per bug ----------------------------------------------------------------

LEGACY_OK = b'{"payload":%s,"headers":{"tenant":"t"}}'


def rpc_send(data: bytes, *, method: str = "SendMessage", request_id: int = 9) -> bytes:
    return (
        b'{"jsonrpc":"2.0","id":%d,"method":"%s","params":{"message":{"messageId":"m",'
        b'"role":"ROLE_USER","parts":[{"data":%s}],"metadata":{"headers":{"tenant":"t"}}}}}'
        % (request_id, method.encode(), data)
    )


def rest_send(data: bytes) -> bytes:
    return (
        b'{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"data":%s}],'
        b'"metadata":{"headers":{"tenant":"t"}}}}' % data
    )


def _json_invalid(reply: Any) -> str:
    detail = reply["detail"]
    assert detail[0]["type"] == "json_invalid"
    assert detail[0]["loc"] == ["body"]
    return str(detail[0]["ctx"]["error"])


@pytest.fixture
async def served(make_adapter: Any, make_client: Any) -> TestClient[Any, Any]:
    return await make_client(make_adapter(emit_errors_to_rookery=True), sse_heartbeat_s=None)


@pytest.mark.parametrize("path", ["/message/send", "/message/stream"])
@pytest.mark.parametrize(
    "number", [b"1e999", b"-1e999", b"[1, 2e308]"], ids=["inf", "-inf", "list"]
)
async def test_legacy_route_refuses_out_of_range_numbers_with_422(
    served: TestClient[Any, Any], path: str, number: bytes
) -> None:
    status, reply = await post(served, path, LEGACY_OK % number)
    assert status == 422
    assert _json_invalid(reply) == "number out of range"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_legacy_route_refuses_nan_and_infinity_literals(
    served: TestClient[Any, Any], literal: bytes
) -> None:
    status, reply = await post(served, "/message/send", LEGACY_OK % literal)
    assert status == 422
    assert "not a valid JSON value" in _json_invalid(reply)


@pytest.mark.parametrize("method", ["SendMessage", "message/send", "SendStreamingMessage"])
async def test_jsonrpc_refuses_out_of_range_numbers_as_invalid_params_and_keeps_the_id(
    served: TestClient[Any, Any], method: str
) -> None:
    status, reply = await post(served, "/", rpc_send(b"1e999", method=method, request_id=9))
    assert status == 200
    assert reply["id"] == 9
    assert reply["error"]["code"] == -32602
    assert reply["error"]["message"] == "number out of range"


async def test_out_of_range_number_starts_no_task_and_list_tasks_stays_valid_json(
    served: TestClient[Any, Any],
) -> None:
    await post(served, "/", rpc_send(b"1e999"))
    await post(served, "/message:send", rest_send(b'{"x": -1e999}'))
    assert await assert_every_task_settled(served) == []


async def test_rest_refuses_out_of_range_numbers_with_400_invalid_params(
    served: TestClient[Any, Any],
) -> None:
    status, reply = await post(served, "/message:send", rest_send(b"1e999"))
    assert status == 400
    assert reply["error"]["details"][0]["reason"] == "INVALID_PARAMS"


@pytest.mark.parametrize(
    "text",
    [b'"\\ud800"', b'"x\\udfffy"', b'{"\\udc00": 1}'],
    ids=["high", "low-inside", "in-a-key"],
)
@pytest.mark.parametrize("path", ["/message/send", "/message/stream"])
async def test_legacy_route_refuses_lone_surrogate_escapes_before_starting_work(
    served: TestClient[Any, Any], path: str, text: bytes
) -> None:
    status, reply = await post(served, path, LEGACY_OK % text)
    assert status == 422
    assert "surrogate" in _json_invalid(reply)


async def test_legacy_cancel_refuses_a_lone_surrogate_task_id(served: TestClient[Any, Any]) -> None:
    status, reply = await post(served, "/tasks/cancel", b'{"taskId": "\\ud800"}')
    assert status == 422
    assert "surrogate" in _json_invalid(reply)


@pytest.mark.parametrize("path", ["/message/send", "/message/stream", "/tasks/cancel"])
async def test_legacy_route_refuses_bytes_that_are_not_utf8(
    served: TestClient[Any, Any], path: str
) -> None:
    status, reply = await post(
        served, path, b'{"payload": "\xed\xa0\x80", "taskId": "\xed\xa0\x80"}'
    )
    assert status == 422
    assert _json_invalid(reply) == "request body is not valid UTF-8"


async def test_a_valid_surrogate_pair_is_accepted(served: TestClient[Any, Any]) -> None:
    status, reply = await post(served, "/message/send", LEGACY_OK % b'"\\ud83d\\ude00"')
    assert status == 200
    assert reply["output"] == {"echo": "\U0001f600"}


@pytest.mark.parametrize("method", ["SendStreamingMessage", "message/stream"])
async def test_jsonrpc_stream_with_a_lone_surrogate_is_refused_and_starts_no_task(
    served: TestClient[Any, Any], method: str
) -> None:
    status, reply = await post(served, "/", rpc_send(b'"\\ud800"', method=method))
    assert status == 200
    assert reply["error"]["code"] == -32602
    assert await assert_every_task_settled(served) == []


async def test_jsonrpc_raw_invalid_utf8_is_a_parse_error(served: TestClient[Any, Any]) -> None:
    _, reply = await post(served, "/", rpc_send(b'"\xed\xa0\x80"'))
    assert reply["error"]["code"] == -32700
    assert reply["id"] is None


@pytest.mark.parametrize("depth", [65, 500, 10_000])
@pytest.mark.parametrize("path", ["/message/send", "/message/stream"])
async def test_legacy_route_refuses_deep_nesting_without_exception_text(
    served: TestClient[Any, Any], path: str, depth: int
) -> None:
    status, reply = await post(served, path, LEGACY_OK % (b"[" * depth + b"]" * depth))
    assert status == 422
    assert _json_invalid(reply) == "JSON nested deeper than 64 levels"


async def test_nesting_at_the_limit_is_accepted(served: TestClient[Any, Any]) -> None:
    # The envelope is one level ({"payload": ...}), the payload 63.
    status, reply = await post(served, "/message/send", LEGACY_OK % (b"[" * 63 + b"]" * 63))
    assert status == 200
    assert reply["status"] == "succeeded"


@pytest.mark.parametrize("depth", [500, 10_000])
async def test_jsonrpc_and_rest_refuse_deep_nesting_as_a_parse_error(
    served: TestClient[Any, Any], depth: int
) -> None:
    deep = b"[" * depth + b"]" * depth
    _, reply = await post(served, "/", rpc_send(deep))
    assert reply["error"]["code"] == -32700
    status, rest_reply = await post(served, "/message:send", rest_send(deep))
    assert status == 400
    assert rest_reply["error"]["details"][0]["reason"] == "PARSE_ERROR"


async def test_max_json_depth_is_an_app_option(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), max_json_depth=3)
    status, _ = await post(client, "/message/send", LEGACY_OK % b"[[1]]")
    assert status == 200
    status, _ = await post(client, "/message/send", LEGACY_OK % b"[[[1]]]")
    assert status == 422


@pytest.mark.parametrize("depth", [0, 257])
def test_max_json_depth_outside_its_range_is_refused(make_adapter: Any, depth: int) -> None:
    with pytest.raises(ValueError, match="max_json_depth"):
        create_a2a_app(make_adapter(), max_json_depth=depth)


# -- sizes, types, partial bodies, disconnects ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("/message/send", 413), ("/tasks/cancel", 413), ("/", 200), ("/message:send", 400)],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
async def test_oversized_body_is_refused_with_a_json_body(
    make_adapter: Any, make_client: Any, path: str, status: int, chunked: bool
) -> None:
    client = await make_client(make_adapter(), max_body_bytes=1024)
    payload = b'{"payload": "' + b"x" * 4096 + b'"}'

    async def pieces() -> Any:
        for start in range(0, len(payload), 512):
            yield payload[start : start + 512]

    async with asyncio.timeout(5):
        response = await client.post(
            path,
            data=pieces() if chunked else payload,
            headers={"Content-Type": "application/json"},
        )
        raw = await response.read()
    assert response.status == status
    check_reply(response.status, response.content_type, raw)
    assert "exceeds 1024 bytes" in raw.decode()


@pytest.mark.parametrize(
    "body",
    [b"[]", b"5", b'"x"', b"null", b'{"payload": 1, "headers": []}', b'{"payload": 1, "meta": 5}'],
)
@pytest.mark.parametrize("path", ["/message/send", "/message/stream", "/tasks/cancel"])
async def test_legacy_wrong_types_are_422(
    served: TestClient[Any, Any], path: str, body: bytes
) -> None:
    status, reply = await post(served, path, body)
    assert status == 422
    assert isinstance(reply["detail"], list | str)


@pytest.mark.parametrize(
    "params",
    [None, [], 5, "x", {"message": []}, {"message": {"messageId": 5, "parts": [{"text": 1}]}}],
)
@pytest.mark.parametrize("method", sorted(METHODS))
async def test_jsonrpc_wrong_param_types_are_invalid_params(
    served: TestClient[Any, Any], method: str, params: Any
) -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    status, reply = await post(served, "/", json.dumps(body).encode())
    assert status == 200
    if "error" in reply:
        assert reply["error"]["code"] in {-32602, -32001}
        assert reply["id"] == 3
    else:  # ListTasks with no params lists the (empty) store
        assert method == "ListTasks"


async def test_unknown_routes_and_methods_answer_json(served: TestClient[Any, Any]) -> None:
    for method, path in [("GET", "/nope"), ("GET", "/message/send"), ("DELETE", "/tasks/x")]:
        async with asyncio.timeout(5):
            response = await served.request(method, path)
            raw = await response.read()
        assert response.status in {404, 405}
        check_reply(response.status, response.content_type, raw)
    response = await served.get("/nope")
    assert await response.json() == {"detail": "Not Found"}


async def _raw_request(client: TestClient[Any, Any], head: bytes, body: bytes) -> bytes:
    """Send ``head`` + ``body`` on a bare socket, close the write side, return the reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + body)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("path", ["/message/send", "/message/stream", "/", "/message:send"])
async def test_a_body_cut_short_starts_no_work(served: TestClient[Any, Any], path: str) -> None:
    body = rpc_send(b"1") if path == "/" else LEGACY_OK % b"1"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reply = await _raw_request(served, head, body[: len(body) // 2])
    # Whatever the server managed to answer before the close, it is not a 5xx.
    assert b" 500 " not in reply.split(b"\r\n", 1)[0]
    assert await assert_every_task_settled(served) == []
    # The server is unharmed: a whole request still works.
    status, _ = await post(served, "/message/send", LEGACY_OK % b"2")
    assert status == 200


async def test_a_slow_body_is_read_whole(served: TestClient[Any, Any]) -> None:
    body = LEGACY_OK % b'"slow"'

    async def trickle() -> Any:
        for index in range(len(body)):  # one write per byte
            yield body[index : index + 1]

    async with asyncio.timeout(5):
        response = await served.post(
            "/message/send", data=trickle(), headers={"Content-Type": "application/json"}
        )
        raw = await response.read()
    check_reply(response.status, response.content_type, raw)
    assert json.loads(raw)["output"] == {"echo": "slow"}


async def test_jsonrpc_stream_client_leaving_midway_leaves_no_task_working(
    served: TestClient[Any, Any], gates: Gates
) -> None:
    params = {"message": message({"data": {"op": "hang", "gate": "g"}})}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": params}
    async with asyncio.timeout(5):
        response = await served.post("/", json=body)
        first = await response.content.readline()
    assert first.startswith(b"data: ")
    strict_json(first.removeprefix(b"data: "))
    await gates.wait_entered("g")
    response.close()  # the client leaves mid-stream
    gates.open("g")
    tasks = await assert_every_task_settled(served)
    assert [task["status"]["state"] for task in tasks] == ["TASK_STATE_COMPLETED"]


async def test_legacy_stream_client_leaving_midway_cancels_the_trace(
    served: TestClient[Any, Any], gates: Gates
) -> None:
    async with asyncio.timeout(5):
        response = await served.post(
            "/message/stream",
            json={"payload": {"op": "hang", "gate": "g"}, "headers": {"tenant": "t"}},
        )
        first = await response.content.readline()
    assert first == b"event: status\n"
    await gates.wait_entered("g")
    response.close()
    async with asyncio.timeout(5):
        await gates.cancelled("g").wait()
    # The task id is free again: nothing of the trace was left reserved.
    status, _ = await post(served, "/message/send", LEGACY_OK % b"1")
    assert status == 200


async def test_send_after_hostile_traffic_still_answers_rpc(served: TestClient[Any, Any]) -> None:
    for token in HOSTILE_TOKENS:
        await post(served, "/", rpc_send(token))
    reply = await rpc(served, "SendMessage", {"message": message({"data": {"value": 1}})})
    assert reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_jsonrpc_data_part_may_nest_59_levels_under_the_default_limit(
    served: TestClient[Any, Any],
) -> None:
    _, reply = await post(served, "/", rpc_send(b"[" * 59 + b"]" * 59))
    assert reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    _, reply = await post(served, "/", rpc_send(b"[" * 60 + b"]" * 60))
    assert reply["error"]["code"] == -32700


# -- hostile output: what the flow produces never breaks a reply ------------------------------

NOT_JSON_RESULT = "flow produced a result that is not valid JSON"
NOT_JSON_CHUNK = "flow produced a stream chunk that is not valid JSON"
NOT_JSON_ERROR = "flow produced an error that is not valid JSON"


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_VALUES: dict[str, Any] = {
    "inf": float("inf"),
    "nan": float("nan"),
    "surrogate": "lone \ud800 surrogate",
    "deep": _deep(10_000),
    "huge": "x" * 1_000_000,
}
#: where the node puts the value: its result, its result's meta, a chunk's text or
#: meta, or the text of the exception it raises (a FlowError in Rookery).
PLACES = ["result", "meta", "chunk_text", "chunk_meta", "error"]


def hostile_flow() -> Any:
    """One node returning ``HOSTILE_VALUES[kind]`` at ``place`` (from the payload)."""

    async def produce(message: Message, ctx: Any) -> Any:
        value = HOSTILE_VALUES[message.payload["kind"]]
        place = message.payload["place"]
        if place == "result":
            return {"v": value}
        if place == "meta":
            return message.model_copy(update={"payload": {"ok": 1}, "meta": {"v": value}})
        if place == "error":
            raise ValueError(value if isinstance(value, str) else "not text")
        text, meta = (value, {}) if place == "chunk_text" and isinstance(value, str) else ("t", {})
        if place == "chunk_meta" or not isinstance(value, str):
            meta = {"v": value}
        await ctx.emit_chunk(parent=message, text=text, done=False, meta=meta)
        return {"final": 1}

    node = Node(produce, name="produce", policy=NodePolicy(validate="none"))
    return create(node.to(), emit_errors_to_rookery=True)


def _expected_failure(kind: str, place: str) -> str | None:
    """The safe message of the failure, or ``None`` when the value is fine JSON."""
    if kind == "huge" or (place == "error" and kind != "surrogate"):
        return None
    if place == "error":
        return NOT_JSON_ERROR
    return NOT_JSON_CHUNK if place.startswith("chunk") else NOT_JSON_RESULT


def check_legacy_sse(raw: bytes) -> list[tuple[str, Any]]:
    """2.2.5 SSE frames: named events carry strict JSON, chunk frames text then JSON meta."""
    events: list[tuple[str, Any]] = []
    for frame in raw.decode("utf-8").split("\n\n"):
        if not frame:
            continue
        lines = frame.split("\n")
        name = lines[0].removeprefix("event: ")
        data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        if name in {"chunk", "done"} and lines[1].startswith("id: "):
            events.append((name, [data[0], *[strict_json(d.encode()) for d in data[1:]]]))
        else:
            (one,) = data
            events.append((name, strict_json(one.encode())))
    assert events[-1][0] == "done", events[-1]
    return events


async def _call(client: TestClient[Any, Any], path: str, body: Any) -> tuple[int, bytes, str]:
    async with asyncio.timeout(20):
        response = await client.post(path, json=body)
        raw = await response.read()
    return response.status, raw, response.headers.get("Content-Type", "").split(";")[0]


@pytest.fixture
async def hostile(make_client: Any) -> TestClient[Any, Any]:
    adapter = A2AServerAdapter(hostile_flow(), agent_card=make_card(), agent_url=AGENT_URL)
    client: TestClient[Any, Any] = await make_client(adapter, sse_heartbeat_s=None)
    yield client
    await adapter.stop()


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("kind", sorted(HOSTILE_VALUES))
async def test_hostile_flow_output_on_every_route_gives_strict_json_and_failed_tasks(
    hostile: TestClient[Any, Any], kind: str, place: str
) -> None:
    payload = {"kind": kind, "place": place}
    failure = _expected_failure(kind, place)
    # The 2.2.5 send skips chunks; a result it cannot encode is the spec's flow failure.
    status, raw, _ = await _call(
        hostile, "/message/send", {"payload": payload, "headers": {"tenant": "t"}}
    )
    reply = strict_json(raw)
    if failure in {NOT_JSON_RESULT, NOT_JSON_ERROR}:
        # The 2.2.5 reply holds the error too: that reply is what cannot be sent.
        failure_text = f"flow execution failed: {NOT_JSON_RESULT}"
        assert (status, reply) == (500, {"detail": failure_text})
    else:
        assert status == 200
        assert reply["status"] in {"succeeded", "failed"}
    status, raw, content_type = await _call(
        hostile, "/message/stream", {"payload": payload, "headers": {"tenant": "t"}}
    )
    assert (status, content_type) == (200, "text/event-stream")
    events = check_legacy_sse(raw)
    if failure is not None and place != "meta":  # the 2.2.5 stream sends no result meta
        name, data = events[-2]
        assert (name, data["code"], data["message"]) == ("error", "INTERNAL_ERROR", failure)

    data_part = {"data": payload}
    for path, method in [
        ("/", "SendMessage"),
        ("/", "message/send"),
        ("/", "SendStreamingMessage"),
        ("/", "message/stream"),
        ("/message:send", None),
        ("/message:stream", None),
    ]:
        params = {"message": message(data_part)}
        body = (
            params
            if method is None
            else {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        status, raw, content_type = await _call(hostile, path, body)
        check_reply(status, content_type, raw, leaks=place != "error")
        if content_type == "text/event-stream":
            last = strict_json(
                raw.decode().strip().split("\n\n")[-1].removeprefix("data: ").encode()
            )
            last = last.get("result", last)
            update = last.get("statusUpdate", last)
            state = update["status"]["state"]
        else:
            result = strict_json(raw)
            result = result.get("result", result)
            state = result.get("task", result)["status"]["state"]
        if failure is None:
            assert state.lower().removeprefix("task_state_") in {"completed", "failed"}
        else:
            assert state.lower().removeprefix("task_state_") == "failed"
            assert failure in raw.decode()

    tasks = await assert_every_task_settled(hostile, leaks=place != "error")
    assert len(tasks) == 6
    # Every stored task renders as strict JSON, artifacts and history included.
    for rendering in ["?includeArtifacts=true", "?includeArtifacts=true&historyLength=10"]:
        async with asyncio.timeout(20):
            response = await hostile.get("/tasks" + rendering)
            raw = await response.read()
            check_reply(response.status, response.content_type, raw, leaks=place != "error")
    for task in tasks:
        async with asyncio.timeout(20):
            response = await hostile.get(f"/tasks/{task['id']}")
            raw = await response.read()
            check_reply(response.status, response.content_type, raw, leaks=place != "error")


async def test_a_bad_stream_chunk_fails_the_task_and_cancels_its_trace(
    make_client: Any, gates: Gates
) -> None:
    async def produce(message: Message, ctx: Any) -> Any:
        await ctx.emit_chunk(parent=message, text="\ud800", done=False)
        gates.entered("after").set()
        try:
            await gates.gate("after").wait()
        except asyncio.CancelledError:
            gates.cancelled("after").set()
            raise
        return {"never": "sent"}

    node = Node(produce, name="produce", policy=NodePolicy(validate="none"))
    adapter = A2AServerAdapter(create(node.to()), agent_card=make_card(), agent_url=AGENT_URL)
    client = await make_client(adapter, sse_heartbeat_s=None)
    try:
        reply = await rpc(client, "SendMessage", {"message": message({"text": "go"})})
        task = reply["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_FAILED"
        assert task["status"]["message"]["parts"] == [{"text": NOT_JSON_CHUNK}]
        assert "artifacts" not in task  # nothing of the bad chunk was stored
        async with asyncio.timeout(5):
            await gates.cancelled("after").wait()
    finally:
        await adapter.stop()


# -- slow bodies: the body read timeout ----------------------------------------------------------


async def _open_raw(client: TestClient[Any, Any], head: bytes) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head)
    await writer.drain()
    return reader, writer


def _head(path: str, *, chunked: bool) -> bytes:
    length = "Transfer-Encoding: chunked" if chunked else "Content-Length: 100"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\n{length}\r\n\r\n"
    ).encode()


async def _reply_after_timeout(clock: FakeClock, reader: Any, writer: Any) -> tuple[bytes, Any]:
    """Fire the body timeout; the reply arrives and the server closes the connection."""
    try:
        async with asyncio.timeout(5):
            clock.advance(30)
            raw = await reader.read()  # to EOF: the server closed its side
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower(), head
    return head.split(b"\r\n", 1)[0], strict_json(body)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/message/send", b"408"),
        ("/message/stream", b"408"),
        ("/", b"200"),
        ("/message:send", b"408"),
    ],
)
async def test_a_body_trickling_past_the_timeout_is_refused_and_the_connection_closed(
    make_adapter: Any, make_client: Any, path: str, status: bytes
) -> None:
    clock = FakeClock()
    client = await make_client(make_adapter(), clock=clock, sse_heartbeat_s=None)
    reader, writer = await _open_raw(client, _head(path, chunked=False) + b'{"payload"')
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)  # the handler is reading the body
    status_line, reply = await _reply_after_timeout(clock, reader, writer)
    assert status in status_line
    message = "request body not received within 30 s"
    if path == "/":
        assert reply["error"] == {**reply["error"], "code": -32600, "message": message}
        assert reply["id"] is None
    elif path == "/message:send":
        assert reply["error"]["code"] == 408
        assert reply["error"]["message"] == message
    else:
        assert reply == {"detail": message}
    assert await assert_every_task_settled(client) == []


async def test_a_bad_chunk_size_after_a_valid_chunk_does_not_hold_the_handler(
    make_adapter: Any, make_client: Any
) -> None:
    # aiohttp queues the chunk-size error as the next request and never fails
    # the body being read: without the body timeout this handler waits forever.
    clock = FakeClock()
    client = await make_client(make_adapter(), clock=clock, sse_heartbeat_s=None)
    reader, writer = await _open_raw(
        client, _head("/message/send", chunked=True) + b'5\r\n{"pay\r\n'
    )
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
    writer.write(b"ZZ\r\nxx\r\n")
    await writer.drain()
    status_line, reply = await _reply_after_timeout(clock, reader, writer)
    assert b"408" in status_line
    assert reply == {"detail": "request body not received within 30 s"}
    # The server is unharmed.
    status, _ = await post(client, "/message/send", LEGACY_OK % b"1")
    assert status == 200


async def test_body_timeout_is_an_app_option_and_none_disables_it(make_adapter: Any) -> None:
    assert create_a2a_app(make_adapter())[BODY_TIMEOUT_KEY][0] == 30.0
    assert create_a2a_app(make_adapter(), body_timeout_s=None)[BODY_TIMEOUT_KEY][0] is None
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="body_timeout_s"):
            create_a2a_app(make_adapter(), body_timeout_s=bad)


async def test_without_a_body_timeout_no_timer_is_armed(
    make_adapter: Any, make_client: Any
) -> None:
    clock = FakeClock()
    client = await make_client(make_adapter(), clock=clock, body_timeout_s=None)
    status, _ = await post(client, "/message/send", LEGACY_OK % b"1")
    assert status == 200
    assert clock.pending_timers == 0
