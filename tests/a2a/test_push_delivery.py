"""Push delivery: webhook bodies and headers, order, retries, dedupe ids, bounds and drops."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from a2a_support import Gates, message, message03, rpc, send_running
from aiohttp.test_utils import TestClient
from push_support import Receiver, free_port

from penguiflow.testkit import FakeClock
from penguiflow_a2a.push import PushSender, PushSettings
from penguiflow_a2a.push_config import PushConfig
from penguiflow_a2a.push_guard import WebhookGuard
from penguiflow_a2a.tasks import StatusEvent, TaskRecord

LOCAL = WebhookGuard(["127.0.0.1"])


def kinds(bodies: list[dict[str, Any]]) -> list[str]:
    out = []
    for body in bodies:
        (key,) = body.keys()
        if key == "task":
            out.append(f"task:{body['task']['status']['state']}")
        elif key == "statusUpdate":
            out.append(f"status:{body['statusUpdate']['status']['state']}")
        else:
            out.append(f"artifact:{body['artifactUpdate']['artifact']['name']}")
    return out


# -- end to end through the app --------------------------------------------------------------


async def test_1_0_webhook_receives_every_update_of_the_task_in_order(
    push_client: TestClient[Any, Any], receiver: Receiver
) -> None:
    params = {
        "message": message({"data": {"op": "chunks", "texts": ["a", "b"]}}),
        "configuration": {
            "returnImmediately": True,
            "taskPushNotificationConfig": {
                "url": receiver.url,
                "token": "tok",
                "authentication": {"scheme": "Bearer", "credentials": "secret"},
            },
        },
    }
    reply = await rpc(push_client, "SendMessage", params)
    task_id = reply["result"]["task"]["id"]
    got = await receiver.wait_for(6)
    assert kinds([r.body for r in got]) == [
        "task:TASK_STATE_SUBMITTED",
        "status:TASK_STATE_WORKING",
        "artifact:stream",
        "artifact:stream",
        "artifact:result",
        "status:TASK_STATE_COMPLETED",
    ]
    assert {r.body.get("task", {}).get("id", task_id) for r in got} == {task_id}
    assert all(r.headers["X-A2A-Notification-Token"] == "tok" for r in got)
    assert all(r.headers["Authorization"] == "Bearer secret" for r in got)
    assert [r.headers["X-A2A-Notification-Sequence"] for r in got] == ["1", "2", "3", "4", "5", "6"]
    assert len({r.headers["X-A2A-Notification-Id"] for r in got}) == 6


async def test_0_3_webhook_receives_the_task_at_every_state_change(
    push_client: TestClient[Any, Any], receiver: Receiver
) -> None:
    params = {
        "message": message03({"kind": "data", "data": {"op": "chunks", "texts": ["a"]}}),
        "configuration": {
            "blocking": False,
            "pushNotificationConfig": {
                "url": receiver.url,
                "token": "tok03",
                "authentication": {"schemes": ["Basic"], "credentials": "dXNlcjpwdw=="},
            },
        },
    }
    await rpc(push_client, "message/send", params)
    got = await receiver.wait_for(3)
    assert [r.body["kind"] for r in got] == ["task"] * 3
    assert [r.body["status"]["state"] for r in got] == ["submitted", "working", "completed"]
    assert [a["name"] for a in got[-1].body["artifacts"]] == ["stream", "result"]
    assert got[0].headers["X-A2A-Notification-Token"] == "tok03"
    assert got[0].headers["Authorization"] == "Basic dXNlcjpwdw=="


async def test_a_config_set_on_a_running_task_gets_its_state_then_the_rest(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    await rpc(
        push_client, "CreateTaskPushNotificationConfig", {"taskId": task_id, "url": receiver.url}
    )
    await receiver.wait_for(1)
    gates.open("g")
    got = await receiver.wait_for(3)
    assert kinds([r.body for r in got]) == [
        "task:TASK_STATE_WORKING",
        "artifact:result",
        "status:TASK_STATE_COMPLETED",
    ]
    assert "X-A2A-Notification-Token" not in got[0].headers


async def test_streaming_send_accepts_an_inline_config(
    push_client: TestClient[Any, Any], receiver: Receiver
) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendStreamingMessage",
        "params": {
            "message": message({"data": {"value": 1}}),
            "configuration": {"taskPushNotificationConfig": {"url": receiver.url}},
        },
    }
    async with asyncio.timeout(5):
        await (await push_client.post("/", json=body)).read()
    got = await receiver.wait_for(4)
    assert kinds([r.body for r in got])[-1] == "status:TASK_STATE_COMPLETED"


async def test_a_deleted_config_receives_nothing_more(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    await rpc(
        push_client, "CreateTaskPushNotificationConfig", {"taskId": task_id, "url": receiver.url}
    )
    await receiver.wait_for(1)
    await rpc(push_client, "DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": task_id})
    gates.open("g")
    reply = await rpc(push_client, "GetTask", {"id": task_id})
    while reply["result"]["status"]["state"] != "TASK_STATE_COMPLETED":
        reply = await rpc(push_client, "GetTask", {"id": task_id})
    from penguiflow_a2a._aiohttp_app import SERVICE_KEY

    await push_client.app[SERVICE_KEY].push.idle()
    assert len(receiver.accepted) == 1


# -- the sender on its own (FakeClock backoff, no real waits) --------------------------------


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_sender(clock: FakeClock) -> AsyncIterator[Any]:
    senders: list[PushSender] = []

    async def factory(guard: WebhookGuard = LOCAL, **settings: Any) -> PushSender:
        sender = PushSender(guard, settings=PushSettings(**settings), clock=clock)
        await sender.start()
        senders.append(sender)
        return sender

    yield factory
    for sender in senders:
        async with asyncio.timeout(5):
            await sender.stop()


def record(task_id: str = "t1") -> TaskRecord:
    return TaskRecord(id=task_id, context_id="c1", state="submitted", updated=1_700_000_000.0)


def advance(rec: TaskRecord, sender: PushSender, state: str) -> None:
    rec.state = state
    sender.notify(rec, StatusEvent(rec.id, rec.context_id, rec.status(), rec.terminal))


def config(url: str, task_id: str = "t1", config_id: str = "c", version: str = "1.0") -> Any:
    return PushConfig(id=config_id, task_id=task_id, url=url, version=version)


async def backoff_then(clock: FakeClock, seconds: float) -> None:
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
    clock.advance(seconds)


def test_backoff_doubles_up_to_its_cap() -> None:
    settings = PushSettings(backoff_s=1.0, backoff_cap_s=5.0)
    assert [settings.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    "bad", [{"max_concurrency": 0}, {"queue_size": 0}, {"timeout_s": 0}, {"backoff_s": -1}]
)
def test_settings_refuse_nonsense_limits(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PushSettings"):
        PushSettings(**bad)


async def test_a_failed_post_is_retried_with_the_same_notification_id(
    make_sender: Any, clock: FakeClock, receiver: Receiver
) -> None:
    sender = await make_sender(backoff_s=0.5, backoff_cap_s=0.75)
    receiver.fail_next(2, status=503)
    sender.register(record(), config(receiver.url))
    await backoff_then(clock, 0.5)
    await backoff_then(clock, 0.75)
    async with asyncio.timeout(5):
        await sender.idle()
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert len({r.headers["X-A2A-Notification-Id"] for r in receiver.requests}) == 1
    assert (sender.stats.delivered, sender.stats.retries, sender.stats.dropped) == (1, 2, 0)


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_transient_statuses_are_retried(
    make_sender: Any, clock: FakeClock, receiver: Receiver, status: int
) -> None:
    sender = await make_sender()
    receiver.fail_next(1, status=status)
    sender.register(record(), config(receiver.url))
    await backoff_then(clock, 0.5)
    await receiver.wait_for(1)
    assert sender.stats.retries == 1


async def test_later_updates_wait_behind_a_retried_one(
    make_sender: Any, clock: FakeClock, receiver: Receiver
) -> None:
    sender = await make_sender()
    rec = record()
    receiver.fail_next(1)
    sender.register(rec, config(receiver.url))
    advance(rec, sender, "working")
    advance(rec, sender, "completed")
    await backoff_then(clock, 0.5)
    got = await receiver.wait_for(3)
    assert kinds([r.body for r in got]) == [
        "task:TASK_STATE_SUBMITTED",
        "status:TASK_STATE_WORKING",
        "status:TASK_STATE_COMPLETED",
    ]


async def test_an_update_is_dropped_and_counted_after_the_last_attempt(
    make_sender: Any, clock: FakeClock, receiver: Receiver
) -> None:
    sender = await make_sender(max_attempts=3)
    receiver.fail_next(3)
    sender.register(record(), config(receiver.url))
    await backoff_then(clock, 0.5)
    await backoff_then(clock, 1.0)
    async with asyncio.timeout(5):
        await sender.idle()
    assert len(receiver.requests) == 3
    assert sender.stats.dropped_by_reason == {"retries_exhausted": 1}


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_client_error_status_is_not_retried(
    make_sender: Any, receiver: Receiver, status: int
) -> None:
    sender = await make_sender()
    receiver.fail_next(1, status=status)
    sender.register(record(), config(receiver.url))
    async with asyncio.timeout(5):
        await sender.idle()
    assert len(receiver.requests) == 1
    assert sender.stats.dropped_by_reason == {"rejected": 1}


async def test_redirects_are_not_followed(make_sender: Any, receiver: Receiver) -> None:
    sender = await make_sender()
    sender.register(record(), config(receiver.url.replace("/hook", "/moved")))
    async with asyncio.timeout(5):
        await sender.idle()
    assert receiver.requests == []
    assert sender.stats.dropped_by_reason == {"redirect_refused": 1}


async def test_a_down_receiver_keeps_the_queue_bounded_and_drops_are_counted(
    make_sender: Any, clock: FakeClock
) -> None:
    sender = await make_sender(queue_size=3, max_attempts=100)
    rec = record()
    sender.register(rec, config(f"http://127.0.0.1:{free_port()}/hook"))
    for _ in range(10):
        advance(rec, sender, "working")
    assert sender.pending <= 3 + 1
    assert sender.stats.dropped_by_reason == {"queue_full": 8}
    # The worker is now stuck in its backoff; shutting down drops what is left.
    await backoff_then(clock, 0.0)
    await sender.stop()
    assert sender.stats.dropped_by_reason == {"queue_full": 8, "shutdown": 3}
    assert sender.stats.delivered == 0


async def test_a_full_queue_keeps_the_newest_updates_so_the_final_one_arrives(
    make_sender: Any, clock: FakeClock, receiver: Receiver
) -> None:
    sender = await make_sender(queue_size=2)
    rec = record()
    receiver.fail_next(1)
    sender.register(rec, config(receiver.url))
    # Let the first delivery fail and sit in backoff, then pile up updates.
    await backoff_then(clock, 0.0)
    for _ in range(5):
        advance(rec, sender, "working")
    advance(rec, sender, "completed")
    clock.advance(0.5)
    got = await receiver.wait_for(3)
    assert kinds([r.body for r in got]) == [
        "task:TASK_STATE_SUBMITTED",
        "status:TASK_STATE_WORKING",
        "status:TASK_STATE_COMPLETED",
    ]
    assert [r.headers["X-A2A-Notification-Sequence"] for r in got] == ["1", "6", "7"]
    assert sender.stats.dropped_by_reason == {"queue_full": 4}


async def test_concurrent_deliveries_are_bounded(make_sender: Any, receiver: Receiver) -> None:
    sender = await make_sender(max_concurrency=2)
    receiver.hold = asyncio.Event()
    for index in range(3):
        sender.register(record(f"t{index}"), config(receiver.url, task_id=f"t{index}"))
    async with asyncio.timeout(5):
        while receiver.in_flight < 2:
            receiver.arrived.clear()
            await receiver.arrived.wait()
    assert sender._semaphore.locked()
    receiver.hold.set()
    await receiver.wait_for(3)
    assert receiver.max_in_flight == 2


async def test_deleting_a_config_drops_its_queued_updates(
    make_sender: Any, clock: FakeClock, receiver: Receiver
) -> None:
    sender = await make_sender()
    rec = record()
    receiver.fail_next(1)
    sender.register(rec, config(receiver.url))
    await backoff_then(clock, 0.0)
    advance(rec, sender, "working")
    advance(rec, sender, "completed")
    assert sender.unregister(rec, "c")
    assert not sender.unregister(rec, "c")
    assert sender.stats.dropped_by_reason == {"config_deleted": 2}


async def test_the_guard_is_checked_again_at_delivery_time(
    make_sender: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def rebound(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebound)
    sender = await make_sender(guard=WebhookGuard())
    sender.register(record(), config(f"http://hooks.example.com:{receiver.port}/hook"))
    async with asyncio.timeout(5):
        await sender.idle()
    assert receiver.requests == []
    assert sender.stats.dropped_by_reason == {"refused": 1}


async def test_the_connection_resolver_refuses_what_the_guard_refuses() -> None:
    from penguiflow_a2a._push_http import GuardedResolver

    refusing = GuardedResolver(WebhookGuard())
    with pytest.raises(OSError, match="loopback"):
        await refusing.resolve("localhost", 80)
    await refusing.close()
    allowing = GuardedResolver(WebhookGuard(["localhost"]))
    assert await allowing.resolve("localhost", 80)
    await allowing.close()
    by_address = GuardedResolver(WebhookGuard(["127.0.0.0/8", "::1"]))
    assert await by_address.resolve("localhost", 80)
    await by_address.close()


async def test_a_terminal_task_registered_late_gets_its_final_state(
    make_sender: Any, receiver: Receiver
) -> None:
    sender = await make_sender()
    rec = record()
    rec.state = "completed"
    sender.register(rec, config(receiver.url, version="0.3"))
    got = await receiver.wait_for(1)
    assert got[0].body["status"]["state"] == "completed"
    async with asyncio.timeout(5):
        await sender.idle()
    assert sender.pending == 0
    assert sender._channels == {}


async def test_0_3_configs_skip_artifact_events(make_sender: Any, receiver: Receiver) -> None:
    from penguiflow_a2a.tasks import ArtifactEvent

    sender = await make_sender()
    rec = record()
    sender.register(rec, config(receiver.url, version="0.3"))
    sender.notify(rec, ArtifactEvent("t1", "c1", {"artifactId": "a", "parts": []}, False, True))
    advance(rec, sender, "completed")
    got = await receiver.wait_for(2)
    assert [r.body["status"]["state"] for r in got] == ["submitted", "completed"]


async def test_stopping_the_app_stops_the_sender_and_counts_what_was_pending(
    make_adapter: Any, make_client: Any, gates: Gates
) -> None:
    from penguiflow_a2a._aiohttp_app import SERVICE_KEY

    hold = Receiver()
    hold.hold = asyncio.Event()
    await hold.start()
    try:
        client = await make_client(
            make_adapter(emit_errors_to_rookery=True), push_allow_hosts=["127.0.0.1"]
        )
        task_id = await send_running(client, gates, "g")
        await rpc(client, "CreateTaskPushNotificationConfig", {"taskId": task_id, "url": hold.url})
        async with asyncio.timeout(5):
            await hold.arrived.wait()
        sender = client.app[SERVICE_KEY].push
        async with asyncio.timeout(10):
            await client.close()
        assert sender.pending == 0
        # The in-flight snapshot and the canceled status of the stopped task.
        assert sender.stats.dropped_by_reason.get("shutdown", 0) >= 1
    finally:
        await hold.close()


async def test_deleting_a_config_gives_up_its_update_in_retry(
    make_sender: Any, clock: FakeClock
) -> None:
    sender = await make_sender(max_attempts=100)
    rec = record()
    sender.register(rec, config(f"http://127.0.0.1:{free_port()}/hook"))
    await backoff_then(clock, 0.0)  # the first try failed; the worker is in backoff
    assert sender.unregister(rec, "c")
    assert sender.pending == 1  # still owned while it winds down
    clock.advance(0.5)
    async with asyncio.timeout(5):
        await sender.idle()
    assert sender.pending == 0
    assert sender.stats.dropped_by_reason == {"config_deleted": 1}
    assert sender.stats.retries == 1


async def test_drops_of_one_config_are_logged_at_doubling_counts(
    make_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    sender = await make_sender(queue_size=1)
    rec = record()
    with caplog.at_level(logging.WARNING, logger="penguiflow_a2a.push"):
        sender.register(rec, config(f"http://127.0.0.1:{free_port()}/hook"))
        for _ in range(100):
            advance(rec, sender, "working")
    assert sender.stats.dropped_by_reason == {"queue_full": 100}
    logged = [r for r in caplog.records if "a2a_push_dropped" in r.getMessage()]
    assert len(logged) == 7  # at 1, 2, 4, 8, 16, 32 and 64 drops
