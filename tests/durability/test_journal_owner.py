"""One durable flow per journal at a time: a second one is refused, never run twice.

Two flows working one journal would both put its entries back and handle them
twice. ``run()`` claims the journal (an OS file lock beside a SQLite file; a
flag on the testkit's journal) and ``stop()`` lets go; a process that dies lets
go with it, a kill -9 included.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durable_support import WAIT_S, fetch, memory_store, message

from penguiflow import Node, NodePolicy, create
from penguiflow.errors import JournalError, JournalInUse
from penguiflow.stores import SQLiteStateStore
from penguiflow.testkit import InMemoryJournal

REPO = Path(__file__).resolve().parents[2]


async def ident(msg: Any, ctx: Any) -> Any:
    return msg


def durable_flow(store: Any) -> Any:
    work = Node(ident, name="work", policy=NodePolicy(validate="none"))
    return create(work.to(), state_store=store, durable=True)


@pytest.fixture(params=["memory", "sqlite"])
def same_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    """Stores on one journal: the testkit's journal shared, or one SQLite file."""
    if request.param == "memory":
        journal = InMemoryJournal()
        return lambda: memory_store(journal)
    return lambda: SQLiteStateStore(tmp_path / "runs.db")


async def test_a_second_flow_on_a_running_flows_journal_is_refused(
    same_journal: Callable[[], Any],
) -> None:
    first = durable_flow(same_journal())
    second = durable_flow(same_journal())
    first.run()
    try:
        with pytest.raises(JournalInUse, match="owned by"):
            second.run()
        assert not second.running
    finally:
        await first.stop()


async def test_the_journal_can_be_claimed_again_once_its_flow_stopped(
    same_journal: Callable[[], Any],
) -> None:
    first = durable_flow(same_journal())
    first.run()
    await first.emit(message("before"))
    await first.stop()
    second = durable_flow(same_journal())
    second.run()
    try:
        assert await second.recover() != []
        assert (await fetch(second)).payload == "before"
    finally:
        await second.stop()


async def test_two_flows_on_one_store_object_are_refused(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "runs.db")
    first, second = durable_flow(store), durable_flow(store)
    first.run()
    try:
        with pytest.raises(JournalInUse):
            second.run()
    finally:
        await first.stop()
        await store.close()


async def test_a_run_that_fails_to_start_lets_go_of_the_journal(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "runs.db")
    validated = Node(ident, name="work")  # validates: needs a registry entry
    failing = create(validated.to(), state_store=store, durable=True)

    class EmptyRegistry:
        def adapters(self, name: str) -> Any:
            raise KeyError(name)

    with pytest.raises(RuntimeError):
        failing.run(registry=EmptyRegistry())
    other = durable_flow(SQLiteStateStore(tmp_path / "runs.db"))
    other.run()  # not refused: the failed run did not keep the claim
    await other.stop()


def test_journal_in_use_is_a_journal_error() -> None:
    error = JournalInUse("x", owner="pid 1", path="runs.db")
    assert isinstance(error, JournalError)
    assert (error.owner, error.path) == ("pid 1", "runs.db")


_HOLDER = """
import asyncio, sys
from penguiflow import Node, NodePolicy, create
from penguiflow.stores import SQLiteStateStore

async def ident(msg, ctx):
    return msg

async def main():
    flow = create(Node(ident, name="work", policy=NodePolicy(validate="none")).to(),
                  state_store=SQLiteStateStore(sys.argv[1]), durable=True)
    flow.run()
    print("running", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_another_process_owns_the_file_until_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(path), stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), WAIT_S * 3)
        assert line.strip() == b"running"
        flow = durable_flow(SQLiteStateStore(path))
        with pytest.raises(JournalInUse, match=f"pid {holder.pid}") as caught:
            flow.run()
        assert caught.value.owner == f"pid {holder.pid}"
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), WAIT_S)
        flow.run()  # the dead process's lock went with it
        await flow.stop()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
