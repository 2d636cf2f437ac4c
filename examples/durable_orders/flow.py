"""A durable order flow that SIGKILLs itself mid-run, recovers, and finishes every order once.

Run: ``python -m examples.durable_orders.flow``

The program starts a worker process on a SQLite file. The worker runs
``price`` and ``reserve`` side by side for each order (fan-out), gathers both
with ``join_k`` and writes an invoice, in a flow created with ``durable=True``.
It emits 12 orders, each with its idempotency key, and fetches invoices; after
the fourth it kills itself with SIGKILL, while other orders are in the nodes'
hands and on the edges. A second worker on the same file calls ``recover()``,
re-sends all 12 orders (the journal drops the ones it already has) and fetches
the rest. Every invoice is checked: each order finished exactly once, with the
right total.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, PenguiFlow, create, join_k
from penguiflow.stores import SQLiteStateStore

ORDERS = {f"order-{i}": {"sku": f"sku-{i % 3}", "qty": 1 + i % 4} for i in range(12)}
UNIT_PRICE = {"sku-0": 5, "sku-1": 7, "sku-2": 11}
POLICY = NodePolicy(validate="none")


async def receive(message: Message, _ctx: Any) -> Message:
    return message  # to both successors: price and reserve run side by side


async def price(message: Message, _ctx: Any) -> Message:
    await asyncio.sleep(0.01)  # a call to a pricing service
    order = message.payload
    total = UNIT_PRICE[order["sku"]] * order["qty"]
    return message.model_copy(update={"payload": {"id": order["id"], "total": total}})


async def reserve(message: Message, _ctx: Any) -> Message:
    # A node may run twice for one message after a crash (it was in hand): a real
    # reservation would be keyed by the order id, so doing it again changes nothing.
    await asyncio.sleep(0.01)
    order = message.payload
    return message.model_copy(update={"payload": {"id": order["id"], "reserved": order["qty"]}})


async def invoice(message: Message, _ctx: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in message.payload:  # join_k's list: both parts, in arrival order
        merged.update(part)
    return merged


def build_flow(store: SQLiteStateStore) -> PenguiFlow:
    receive_node = Node(receive, name="receive", policy=POLICY)
    price_node = Node(price, name="price", policy=POLICY)
    reserve_node = Node(reserve, name="reserve", policy=POLICY)
    join = join_k("join", 2)
    invoice_node = Node(invoice, name="invoice", policy=POLICY)
    return create(
        receive_node.to(price_node, reserve_node),
        price_node.to(join),
        reserve_node.to(join),
        join.to(invoice_node),
        invoice_node.to(),
        state_store=store,
        durable=True,
    )


async def worker(db: Path, die_after: int, done: set[str]) -> None:
    """One process of the service: recover, re-send every order, fetch what is due."""
    store = SQLiteStateStore(db)
    flow = build_flow(store)
    flow.run()
    resumed = await flow.recover()
    print(f"recovered {len(resumed)} orders in flight", flush=True)
    for key, order in ORDERS.items():
        message = Message(payload={"id": key, **order}, headers=Headers(tenant="shop"))
        # Returns once the order is in the journal; a key it already has is a no-op.
        await flow.emit(message, idempotency_key=key)
    due = set(ORDERS) - done  # the invoices a previous worker already fetched
    fetched = 0
    async with asyncio.timeout(30):
        while due:
            result = await flow.fetch()
            print(f"invoice {result['id']} total={result['total']}", flush=True)
            due.discard(result["id"])
            fetched += 1
            if fetched == die_after:
                os.kill(os.getpid(), signal.SIGKILL)  # the crash: no cleanup runs
    await flow.stop()
    await store.close()


def run_worker(db: Path, *, die_after: int, done: set[str]) -> list[str]:
    """Start one worker process; return the invoice lines it printed."""
    cmd = [sys.executable, "-m", "examples.durable_orders.flow", "--worker", str(db)]
    cmd += ["--die-after", str(die_after), "--done=" + ",".join(["-", *sorted(done)])]
    done_proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done_proc.returncode not in (0, -signal.SIGKILL):
        raise SystemExit(done_proc.stderr)
    lines = done_proc.stdout.splitlines()
    for line in lines:
        print(f"  {line}")
    if done_proc.returncode == -signal.SIGKILL:
        print("  ... worker killed by SIGKILL")
    return [line for line in lines if line.startswith("invoice ")]


async def unfinished(db: Path) -> int:
    async with SQLiteStateStore(db) as store:
        return len(await store.journal.unfinished_traces())


def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="durable-orders-")) / "orders.db"
    print("worker 1 (kills itself after 4 invoices):")
    invoices = run_worker(db, die_after=4, done=set())
    print(f"orders unfinished in the journal: {asyncio.run(unfinished(db))}")
    print("worker 2 (recovers):")
    done = {line.split()[1] for line in invoices}
    invoices += run_worker(db, die_after=0, done=done)
    counts = Counter(line.split()[1] for line in invoices)
    right = all(
        line == f"invoice {key} total={UNIT_PRICE[o['sku']] * o['qty']}"
        for key, o in ORDERS.items()
        for line in invoices
        if line.split()[1] == key
    )
    exactly_once = set(counts) == set(ORDERS) and set(counts.values()) == {1}
    print(f"invoices: {len(invoices)} for {len(ORDERS)} orders, totals right: {right}")
    print(f"every order finished exactly once: {exactly_once and right}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", type=Path, default=None)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--done", default="-")
    args = parser.parse_args()
    if args.worker is None:
        main()
    else:
        asyncio.run(worker(args.worker, args.die_after, set(args.done.split(",")) - {"-"}))
