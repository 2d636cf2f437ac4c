"""Export ``FlowEvent`` metrics to MLflow, or print them when MLflow is not installed.

Run: ``python -m examples.mlflow_metrics.flow``

``FlowEvent.metric_samples()`` turns an event into numeric samples (queue
depths, attempt, latency) and ``tag_values()`` into string tags. The
middleware below logs them to an MLflow run when ``mlflow`` is importable and
otherwise prints one line per event, so the example runs anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from typing import Any

from penguiflow import FlowEvent, Headers, Message, Node, NodePolicy, create

INTERESTING = {"node_success", "node_error", "node_failed"}


class MetricsMiddleware:
    """Send per-node metrics to MLflow when available, else to stdout."""

    def __init__(self) -> None:
        self.mlflow: Any = None
        if importlib.util.find_spec("mlflow") is not None:
            self.mlflow = importlib.import_module("mlflow")
            print("MLflow found: logging metrics to the active run")
        else:
            print("MLflow not installed; printing metrics to stdout")
        self.step = 0

    async def __call__(self, event: FlowEvent) -> None:
        if event.event_type not in INTERESTING:
            return
        self.step += 1
        samples = event.metric_samples()
        tags = event.tag_values()
        if self.mlflow is not None:
            prefix = f"{event.node_name}.{event.event_type}"
            self.mlflow.log_metrics(
                {f"{prefix}.{k}": v for k, v in samples.items()}, step=self.step
            )
            return
        # Latency and queue depths vary from run to run; print the stable facts.
        print(
            f"[metrics] event={tags['event_type']} node={tags['node_name']} "
            f"attempt={samples['attempt']} samples={len(samples)} "
            f"has_latency={'latency_ms' in samples}"
        )


async def tokenize(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": message.payload.split()})


async def count(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": len(message.payload)})


async def main() -> None:
    metrics = MetricsMiddleware()
    policy = NodePolicy(validate="none")
    tokenize_node = Node(tokenize, name="tokenize", policy=policy)
    count_node = Node(count, name="count", policy=policy)
    flow = create(tokenize_node.to(count_node), count_node.to(), middlewares=[metrics])
    if metrics.mlflow is not None:
        metrics.mlflow.start_run(run_name="penguiflow-example")
    flow.run()
    try:
        await flow.emit(Message(payload="emperor king adelie", headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            result = await flow.fetch()
    finally:
        await flow.stop()
        if metrics.mlflow is not None:
            metrics.mlflow.end_run()
    print(f"Word count: {result.payload}")


if __name__ == "__main__":
    asyncio.run(main())
