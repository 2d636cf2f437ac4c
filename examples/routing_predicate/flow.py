"""Branch messages with ``predicate_router``, then re-route at runtime with a policy.

Run: ``python -m examples.routing_predicate.flow``

A router sends each query to ``metrics`` or ``general`` depending on its text.
The second half attaches a ``DictRoutingPolicy`` keyed by tenant: tenant ``vip``
always goes to ``general`` (say, a premium path) while other tenants keep the
router's choice, and ``update_mapping`` changes the rule while the flow runs.
"""

from __future__ import annotations

import asyncio

from penguiflow import (
    DictRoutingPolicy,
    Headers,
    Message,
    Node,
    NodePolicy,
    PenguiFlow,
    create,
    predicate_router,
)
from penguiflow.policies import PolicyLike, RoutingDecisionType, RoutingRequest

NO_VALIDATION = NodePolicy(validate="none")


def choose_branch(message: Message) -> list[str]:
    return ["metrics"] if "metric" in message.payload else ["general"]


async def metrics(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": f"[metrics] {message.payload}"})


async def general(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": f"[general] {message.payload}"})


def build_flow(policy: PolicyLike | None = None) -> PenguiFlow:
    router = predicate_router("router", choose_branch, policy=policy)
    metrics_node = Node(metrics, name="metrics", policy=NO_VALIDATION)
    general_node = Node(general, name="general", policy=NO_VALIDATION)
    return create(router.to(metrics_node, general_node), metrics_node.to(), general_node.to())


async def ask(flow: PenguiFlow, text: str, tenant: str = "acme") -> str:
    await flow.emit(Message(payload=text, headers=Headers(tenant=tenant)))
    async with asyncio.timeout(5):
        result: Message = await flow.fetch()
    return str(result.payload)


def by_tenant(request: RoutingRequest) -> str:
    return str(request.message.headers.tenant)


# Per-tenant overrides from configuration (a mapping here; ``from_json_file`` or
# ``from_env`` in a deployment). Tenants not listed keep the router's proposal.
OVERRIDES = DictRoutingPolicy({"vip": "general"}, key_getter=by_tenant)


def tenant_policy(request: RoutingRequest) -> RoutingDecisionType:
    return OVERRIDES.select(request) or request.proposed


async def main() -> None:
    flow = build_flow()
    flow.run()
    try:
        print(await ask(flow, "show marketing metrics"))
        print(await ask(flow, "tell me a joke"))
    finally:
        await flow.stop()

    flow = build_flow(tenant_policy)
    flow.run()
    try:
        print(await ask(flow, "show marketing metrics", tenant="vip"))
        print(await ask(flow, "show marketing metrics", tenant="acme"))
        OVERRIDES.update_mapping({"vip": "metrics"})  # takes effect for the next message
        print(await ask(flow, "tell me a joke", tenant="vip"))
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
