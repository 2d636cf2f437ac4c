"""The task runner's stream artifact: appended in linear time, rendered whole."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow._time import SYSTEM_CLOCK
from penguiflow.types import StreamChunk
from penguiflow_a2a.codec import V1_0
from penguiflow_a2a.tasks import StreamText, TaskManager


class ScriptedSession:
    """A stand-in ``TraceSession`` whose trace yields ``items`` in order."""

    def __init__(self, items: list[Any]) -> None:
        self.trace_id = self.task_id = self.context_id = "t"
        self.message = None
        self._items = iter(items)

    async def start(self) -> None:
        return None

    async def next_item(self) -> Any:
        return next(self._items)

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def chunk(seq: int, text: str, *, done: bool = False) -> StreamChunk:
    return StreamChunk(stream_id="s", seq=seq, text=text, done=done)


def test_stream_text_joins_only_when_read() -> None:
    text = StreamText("a")
    for piece in "bcd":
        text.append(piece)
    assert text.pending == 4
    assert text.value() == "abcd"
    assert text.pending == 1
    text.append("e")
    assert text.value() == "abcde"


async def run_task(items: list[Any]) -> Any:
    # The subscriber reads only after the end: the bound must hold every event.
    manager = TaskManager(clock=SYSTEM_CLOCK, max_buffered=len(items) + 2)
    record = await manager.launch(
        ScriptedSession(items),
        user_message={"messageId": "m", "role": "user", "parts": []},
        metadata={},
    )  # type: ignore[arg-type]
    queue = record.subscribe()
    async with asyncio.timeout(30):
        await record.done.wait()
    events = []
    while (event := queue.get_nowait()) is not None:
        events.append(event)
    return record, events


async def test_a_hundred_thousand_chunks_are_appended_without_rebuilding_the_text() -> None:
    texts = [f"{i % 10}" * 7 for i in range(100_000)]
    items = [chunk(i, t, done=i == len(texts) - 1) for i, t in enumerate(texts)]
    record, events = await run_task([*items, {"final": True}])
    # Structural: no join happened while chunks arrived (one piece per chunk).
    assert record.stream_text.pending == 100_000
    stream = record.artifacts[0]
    assert stream["parts"] == [{"text": "".join(texts)}]
    assert record.stream_text.pending == 1
    artifact_events = [e for e in events if hasattr(e, "artifact")]
    assert [e.append for e in artifact_events[:3]] == [False, True, True]
    assert artifact_events[1].artifact["parts"] == [{"text": texts[1]}]
    assert artifact_events[-2].last_chunk is True


async def test_rendered_task_shows_the_stream_so_far_after_each_read() -> None:
    gate: list[Any] = [chunk(0, "ab"), chunk(1, "cd"), {"final": 1}]
    record, _ = await run_task(gate)
    task = V1_0.task(record)
    assert task["artifacts"][0]["parts"] == [{"text": "abcd"}]
    assert task["artifacts"][0]["artifactId"] == "t-stream"
    assert task["artifacts"][1]["name"] == "result"
    # Reading twice gives the same value and joins nothing more.
    assert V1_0.task(record) == task
