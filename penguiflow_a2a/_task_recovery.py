"""Bringing a durable A2A server's tasks back after a restart.

``recover_tasks`` runs once at startup, after ``adapter.start()`` (the flow
runs, the dispatcher drains Rookery): it reads the stored tasks, attaches a
session to the trace of each unfinished one (items of those traces are routed
to it from the first fetch on), calls ``flow.recover()``, reads each trace's
journal status and hands every task to ``TaskManager.restore``, which ends or
continues it. For a parked trace the interrupt is the one ``recover()`` brought back from
the journal (``penguiflow.hosting.parked_interrupts``: its token and payload),
not the task record's: the process that died may have fetched an
``Interrupt`` without writing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow.hosting import parked_interrupts
from penguiflow.interrupts import Interrupt
from penguiflow.journal import journal_of

from .task_record import TERMINAL_STATES

if TYPE_CHECKING:
    from ._session import TraceSession
    from .adapter import A2AServerAdapter
    from .tasks import TaskManager

__all__ = ["recover_tasks"]

_log = get_logger("penguiflow_a2a.recovery")


async def recover_tasks(tasks: TaskManager, adapter: A2AServerAdapter) -> list[str]:
    """Restore ``tasks`` from their store and recover the adapter's durable flow.

    Returns:
        The ids of the tasks that were unfinished when read back.

    Raises:
        penguiflow.errors.DurabilityError: ``flow.recover()`` was already called.
        Exception: what the store or the journal raised.
    """
    flow: Any = adapter.flow
    stored = await tasks.load()
    sessions: dict[str, TraceSession] = {}
    for task in stored:
        if task.state in TERMINAL_STATES or task.message is None:
            continue  # without its request a task cannot go on (restore fails it)
        sessions[task.id] = adapter.attach_session(
            task.message,
            task_id=task.id,
            context_id=task.context_id,
            principal=task.principal,
        )
    await flow.recover()
    journal = journal_of(flow.state_store)
    statuses = {t.trace_id: t.status for t in await journal.traces(include_finished=True)}
    # Parked traces wait with the interrupt the journal holds (recover() brought
    # it back), whatever the task record says.
    interrupts = {
        parked.trace_id: Interrupt(
            trace_id=parked.trace_id, node=parked.node, payload=parked.payload, token=parked.token
        )
        for parked in parked_interrupts(flow)
        if parked.trace_id is not None
    }
    for task in stored:
        await tasks.restore(
            task,
            sessions.get(task.id),
            status=statuses.get(task.trace_id),
            interrupt=interrupts.get(task.trace_id),
        )
    _log.info("a2a_tasks_recovered", tasks=len(stored), unfinished=len(sessions))
    return list(sessions)
