"""Per-caller task isolation: a task is visible only to the principal that created it.

Two principals (``X-User: alice`` and ``X-User: bob``) share one server. For
every task method of A2A 1.0 and 0.3 (JSON-RPC) and of the HTTP+JSON binding,
bob naming alice's task gets exactly the answer he gets for an id that does
not exist, and alice's task is untouched; alice herself is served. The 2.2.5
``/tasks/cancel`` of another principal's request answers ``cancelled: false``
and does not cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from a2a_support import Gates, message, message03
from aiohttp import web
from aiohttp.test_utils import TestClient

from penguiflow_a2a import A2AServerAdapter
from penguiflow_a2a.principals import SHARED_PRINCIPAL, admit

ALICE = {"X-User": "alice"}
BOB = {"X-User": "bob"}
UNKNOWN = "no-such-task-0123456789abcdef"

Client = TestClient[Any, Any]


def by_user(request: web.Request) -> str | None:
    """The auth hook of these tests: the principal is the ``X-User`` header."""
    return request.headers.get("X-User")


@pytest.fixture
async def served(
    make_adapter: Callable[..., A2AServerAdapter], make_client: Callable[..., Any]
) -> Client:
    client: Client = await make_client(make_adapter(emit_errors_to_rookery=True), auth=by_user)
    return client


async def rpc(client: Client, method: str, params: Any, headers: dict[str, str]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body, headers=headers)
        assert response.status == 200
        assert response.content_type == "application/json"
        return await response.json()


async def rest(
    client: Client, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    async with asyncio.timeout(5):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def start_hanging(
    client: Client, gates: Gates, gate: str, headers: dict[str, str], *, lane: str = "work"
) -> Any:
    """Start a task of ``headers``' principal that waits on ``gate``; return its Task JSON.

    Each node serves one message at a time: concurrent hanging tasks take
    different lanes (``work`` or ``slow``).
    """
    data = {"op": "hang", "gate": gate} if lane == "work" else {"lane": "slow", "gate": gate}
    params = {
        "message": message({"data": data}, contextId=f"ctx-{gate}"),
        "configuration": {"returnImmediately": True},
    }
    reply = await rpc(client, "SendMessage", params, headers)
    await gates.wait_entered(gate)
    return reply["result"]["task"]


def masked(body: Any, task_id: str) -> str:
    """The body with the task id replaced, to compare answers for two ids."""
    return json.dumps(body, sort_keys=True).replace(task_id, "<id>")


async def state_of(client: Client, task_id: str) -> str:
    reply = await rpc(client, "GetTask", {"id": task_id}, ALICE)
    return str(reply["result"]["status"]["state"])


def _id(task_id: str) -> dict[str, Any]:
    return {"id": task_id}


#: JSON-RPC method -> params naming a task (1.0 and 0.3 names).
RPC_CASES: dict[str, Callable[[str], Any]] = {
    "GetTask": _id,
    "CancelTask": _id,
    "SubscribeToTask": _id,
    "SendMessage": lambda tid: {"message": message(taskId=tid)},
    "SendStreamingMessage": lambda tid: {"message": message(taskId=tid)},
    "tasks/get": _id,
    "tasks/cancel": _id,
    "tasks/resubscribe": _id,
    "message/send": lambda tid: {"message": message03(taskId=tid)},
    "message/stream": lambda tid: {"message": message03(taskId=tid)},
}


@pytest.mark.parametrize("method", list(RPC_CASES))
async def test_jsonrpc_task_of_another_principal_is_not_found(
    served: Client, gates: Gates, method: str
) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    params = RPC_CASES[method]
    other = await rpc(served, method, params(task["id"]), BOB)
    unknown = await rpc(served, method, params(UNKNOWN), BOB)
    assert other["error"]["code"] == -32001
    assert masked(other, task["id"]) == masked(unknown, UNKNOWN)
    assert await state_of(served, task["id"]) == "TASK_STATE_WORKING"


@pytest.mark.parametrize("method", ["GetTask", "tasks/get", "CancelTask", "tasks/cancel"])
async def test_jsonrpc_owner_is_served(served: Client, gates: Gates, method: str) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    reply = await rpc(served, method, {"id": task["id"]}, ALICE)
    assert reply["result"]["id"] == task["id"]


@pytest.mark.parametrize("method", ["SendMessage", "message/send"])
async def test_jsonrpc_owner_continuing_a_task_is_told_it_is_in_progress(
    served: Client, gates: Gates, method: str
) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    reply = await rpc(served, method, RPC_CASES[method](task["id"]), ALICE)
    assert reply["error"]["code"] == -32004


@pytest.mark.parametrize("method", ["SubscribeToTask", "tasks/resubscribe"])
async def test_jsonrpc_owner_can_resubscribe(served: Client, gates: Gates, method: str) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": task["id"]}}
    async with asyncio.timeout(5):
        response = await served.post("/", json=body, headers=ALICE)
        assert response.content_type == "text/event-stream"
        gates.open("g")
        text = (await response.read()).decode()
    assert task["id"] in text
    assert "completed" in text.lower()


async def test_cancel_by_another_principal_leaves_the_task_running(
    served: Client, gates: Gates
) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    for method in ("CancelTask", "tasks/cancel"):
        await rpc(served, method, {"id": task["id"]}, BOB)
    await rest(served, "POST", f"/tasks/{task['id']}:cancel", BOB)
    assert not gates.cancelled("g").is_set()
    assert await state_of(served, task["id"]) == "TASK_STATE_WORKING"
    reply = await rpc(served, "CancelTask", {"id": task["id"]}, ALICE)
    assert reply["result"]["status"]["state"] == "TASK_STATE_CANCELED"


#: REST (method, path template, body template) naming a task.
REST_CASES: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "get": ("GET", "/tasks/{id}", lambda tid: None),
    "cancel": ("POST", "/tasks/{id}:cancel", lambda tid: None),
    "subscribe-get": ("GET", "/tasks/{id}:subscribe", lambda tid: None),
    "subscribe-post": ("POST", "/tasks/{id}:subscribe", lambda tid: None),
    "send": ("POST", "/message:send", lambda tid: {"message": message(taskId=tid)}),
    "stream": ("POST", "/message:stream", lambda tid: {"message": message(taskId=tid)}),
}


@pytest.mark.parametrize("case", list(REST_CASES))
async def test_rest_task_of_another_principal_is_not_found(
    served: Client, gates: Gates, case: str
) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    method, path, body = REST_CASES[case]
    other = await rest(served, method, path.format(id=task["id"]), BOB, body(task["id"]))
    unknown = await rest(served, method, path.format(id=UNKNOWN), BOB, body(UNKNOWN))
    assert other[0] == 404
    assert other[0] == unknown[0]
    assert masked(other[1], task["id"]) == masked(unknown[1], UNKNOWN)
    assert await state_of(served, task["id"]) == "TASK_STATE_WORKING"


async def test_rest_owner_gets_the_task(served: Client, gates: Gates) -> None:
    task = await start_hanging(served, gates, "g", ALICE)
    status, body = await rest(served, "GET", f"/tasks/{task['id']}", ALICE)
    assert (status, body["id"]) == (200, task["id"])


async def test_list_tasks_shows_only_the_callers_tasks(served: Client, gates: Gates) -> None:
    alice_task = await start_hanging(served, gates, "a", ALICE)
    bob_task = await start_hanging(served, gates, "b", BOB, lane="slow")
    for headers, mine in ((ALICE, alice_task), (BOB, bob_task)):
        reply = await rpc(served, "ListTasks", {}, headers)
        assert [t["id"] for t in reply["result"]["tasks"]] == [mine["id"]]
        assert reply["result"]["totalSize"] == 1
        status, body = await rest(served, "GET", "/tasks", headers)
        assert (status, [t["id"] for t in body["tasks"]]) == (200, [mine["id"]])


async def test_reused_context_id_does_not_leak_across_principals(
    served: Client, gates: Gates
) -> None:
    alice_task = await start_hanging(served, gates, "a", ALICE, lane="slow")
    context = alice_task["contextId"]
    params = {"message": message(contextId=context)}
    bob_reply = await rpc(served, "SendMessage", params, BOB)
    bob_task = bob_reply["result"]["task"]
    assert bob_task["contextId"] == context
    for headers, mine in ((ALICE, alice_task), (BOB, bob_task)):
        reply = await rpc(served, "ListTasks", {"contextId": context}, headers)
        assert [t["id"] for t in reply["result"]["tasks"]] == [mine["id"]]
        status, body = await rest(served, "GET", f"/tasks?contextId={context}", headers)
        assert (status, [t["id"] for t in body["tasks"]]) == (200, [mine["id"]])
    history = (await rpc(served, "GetTask", {"id": bob_task["id"]}, BOB))["result"]["history"]
    assert all(entry["taskId"] == bob_task["id"] for entry in history)


# -- the 2.2.5 routes --------------------------------------------------------------------------


def legacy_body(gate: str, task_id: str) -> dict[str, Any]:
    return {"payload": {"op": "hang", "gate": gate}, "headers": {"tenant": "t"}, "taskId": task_id}


@pytest.mark.parametrize("route", ["/message/send", "/message/stream"])
async def test_legacy_cancel_of_another_principals_request_does_not_cancel_it(
    served: Client, gates: Gates, route: str
) -> None:
    async def alice_request() -> str:
        response = await served.post(route, json=legacy_body("g", "alice-task"), headers=ALICE)
        return (await response.read()).decode()

    request = asyncio.ensure_future(alice_request())
    try:
        await gates.wait_entered("g")
        other = await rest(served, "POST", "/tasks/cancel", BOB, {"taskId": "alice-task"})
        unknown = await rest(served, "POST", "/tasks/cancel", BOB, {"taskId": UNKNOWN})
        assert other == (200, {"taskId": "alice-task", "cancelled": False})
        assert masked(other[1], "alice-task") == masked(unknown[1], UNKNOWN)
        assert not gates.cancelled("g").is_set()
        assert not request.done()
        mine = await rest(served, "POST", "/tasks/cancel", ALICE, {"taskId": "alice-task"})
        assert mine[1]["cancelled"] is True
        async with asyncio.timeout(5):
            text = await request
        assert "cancelled" in text.lower()
    finally:
        if not request.done():
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request


async def test_legacy_send_and_stream_serve_each_principal(served: Client) -> None:
    for headers in (ALICE, BOB):
        body = {"payload": {"value": headers["X-User"]}, "headers": {"tenant": "t"}}
        status, reply = await rest(served, "POST", "/message/send", headers, body)
        assert (status, reply["output"]) == (200, {"echo": headers["X-User"]})
        async with asyncio.timeout(5):
            response = await served.post("/message/stream", json=body, headers=headers)
            text = (await response.read()).decode()
        assert headers["X-User"] in text


# -- what the hook may return ------------------------------------------------------------------


@pytest.mark.parametrize("verdict", [None, False])
async def test_hook_returning_none_or_false_answers_401(
    make_adapter: Any, make_client: Any, verdict: Any
) -> None:
    client = await make_client(make_adapter(), auth=lambda request: verdict)
    status, _ = await rest(client, "POST", "/message:send", {}, {"message": message()})
    assert status == 401


async def test_hook_returning_true_shares_one_principal(
    make_adapter: Any, make_client: Any
) -> None:
    client = await make_client(make_adapter(), auth=lambda request: True)
    reply = await rpc(client, "SendMessage", {"message": message()}, {})
    task_id = reply["result"]["task"]["id"]
    again = await rpc(client, "GetTask", {"id": task_id}, {"X-User": "anyone"})
    assert again["result"]["id"] == task_id


async def test_falsy_principal_other_than_false_or_none_is_admitted(
    make_adapter: Any, make_client: Any
) -> None:
    client = await make_client(make_adapter(), auth=lambda request: 0)
    reply = await rpc(client, "SendMessage", {"message": message()}, {})
    assert reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_unhashable_principal_is_an_internal_error(
    make_adapter: Any, make_client: Any
) -> None:
    client = await make_client(make_adapter(), auth=lambda request: ["not", "hashable"])
    reply = await rpc(client, "SendMessage", {"message": message()}, {})
    assert reply["error"]["code"] == -32603


async def test_bearer_token_with_auth_takes_the_hooks_principal(
    make_adapter: Any, make_client: Any, gates: Gates
) -> None:
    client = await make_client(make_adapter(), bearer_token="s3cret", auth=by_user)
    token = {"Authorization": "Bearer s3cret"}
    task = await start_hanging(client, gates, "g", {**token, **ALICE})
    other = await rpc(client, "GetTask", {"id": task["id"]}, {**token, **BOB})
    assert other["error"]["code"] == -32001
    mine = await rpc(client, "GetTask", {"id": task["id"]}, {**token, **ALICE})
    assert mine["result"]["id"] == task["id"]
    status, _ = await rest(client, "GET", f"/tasks/{task['id']}", ALICE)
    assert status == 401


def test_admit_combines_verdicts() -> None:
    assert admit([]) is SHARED_PRINCIPAL
    assert admit([True, True]) is SHARED_PRINCIPAL
    assert admit([True, "alice"]) == "alice"
    assert admit(["alice", None]) is None
    assert admit([False, "alice"]) is None
    assert repr(SHARED_PRINCIPAL) == "SHARED_PRINCIPAL"
