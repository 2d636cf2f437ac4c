"""InMemoryJournal beyond the contract: told to fail, it fails every write and stores nothing."""

from __future__ import annotations

import pytest

from penguiflow.errors import JournalError
from penguiflow.journal import Input
from penguiflow.testkit import InMemoryJournal


@pytest.fixture
def journal() -> InMemoryJournal:
    return InMemoryJournal()


async def test_fail_with_fails_every_write_and_stores_nothing(journal: InMemoryJournal) -> None:
    (accepted,) = await journal.accept([Input("in", 1, trace_id="t")])
    assert accepted.entry_id is not None
    (rid,) = (await journal.commit_step("t", rookery=["r"])).rookery_ids
    await journal.park("tok", trace_id="t", node="n", payload=1)
    before = await journal.load()
    journal.fail_with = OSError("disk gone")
    writes = [
        journal.accept([Input("in", 2, trace_id="t2")]),
        journal.hold(accepted.entry_id, node="n"),
        journal.commit_step("t", consumed=accepted.entry_id),
        journal.mark_delivered(rid),
        journal.park("tok2", trace_id="t", node="n", payload=1),
        journal.resume("tok", 1),
        journal.cancel("t"),
    ]
    for write in writes:
        with pytest.raises(JournalError, match="disk gone") as caught:
            await write
        assert isinstance(caught.value.__cause__, OSError)
    assert await journal.load() == before  # reads still work, nothing changed


async def test_commits_count_applied_writes(journal: InMemoryJournal) -> None:
    await journal.accept([Input("in", 1)])
    await journal.load()
    assert journal.commits == 1
    assert repr(journal) == "InMemoryJournal(traces=0, entries=1)"
