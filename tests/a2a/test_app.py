"""The application: agent cards, docs, authentication, lifecycle, error containment."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Request

from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, A2ASkill, create_a2a_app
from penguiflow_a2a.card import standard_agent_card

RPC_GET = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
SEND = {"payload": 1, "headers": {"tenant": "a"}}


# -- agent cards ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/.well-known/agent.json"])
async def test_well_known_card_has_the_required_a2a_fields(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "application/json"
    card = await response.json()
    base = f"http://127.0.0.1:{client.port}/"
    assert card["supportedInterfaces"][:2] == [
        {"url": base, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": base, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    assert (card["name"], card["version"], card["url"]) == ("Penguin Agent", "2.0.0", base)
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True}
    assert card["skills"] == [
        {"id": "echo", "name": "echo", "description": "Echo the payload", "tags": ["penguins"]}
    ]
    assert card["defaultInputModes"] == ["text/plain", "application/json"]
    assert card["defaultOutputModes"] == ["text/plain", "application/json"]
    assert card["protocolVersion"] == "0.3.0"


def test_standard_card_without_skills_or_tags_gets_fallbacks() -> None:
    card = A2AAgentCard(name="n", description="d", documentation_url="https://docs")
    standard = standard_agent_card(card, base_url="http://h/")
    assert standard["skills"] == [
        {"id": "n", "name": "n", "description": "d", "tags": ["penguiflow"]}
    ]
    assert standard["documentationUrl"] == "https://docs"
    assert "additionalInterfaces" not in standard


def test_standard_card_maps_skill_mode_contact_and_rest() -> None:
    card = A2AAgentCard(
        name="n",
        description="d",
        contact_url="https://contact",
        skills=[A2ASkill(name="s", description="x", mode="stream")],
    )
    standard = standard_agent_card(card, base_url="http://h/", rest=True)
    assert standard["skills"][0]["tags"] == ["penguiflow", "stream"]
    assert standard["provider"] == {"organization": "n", "url": "https://contact"}
    assert standard["supportedInterfaces"][2]["protocolBinding"] == "HTTP+JSON"
    assert standard["additionalInterfaces"][1] == {"url": "http://h", "transport": "HTTP+JSON"}


# -- docs -----------------------------------------------------------------------------------


async def test_docs_and_schema_are_served_by_default(client: TestClient[Any, Any]) -> None:
    schema = await (await client.get("/openapi.json")).json()
    assert schema["info"]["title"] == "Penguin Agent"
    assert "/message/send" in schema["paths"]
    docs = await client.get("/docs")
    assert docs.status == 200
    assert "Penguin Agent" in await docs.text()


async def test_docs_are_absent_without_include_docs(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), include_docs=False, rest=False)
    assert (await client.get("/openapi.json")).status == 404
    assert (await client.get("/docs")).status == 404
    assert (await client.get("/tasks/x")).status == 404


# -- authentication -------------------------------------------------------------------------


@pytest.fixture
async def guarded(make_adapter: Any, make_client: Any) -> TestClient[Any, Any]:
    return await make_client(make_adapter(), bearer_token="s3cret")  # type: ignore[no-any-return]


async def test_agent_cards_need_no_token(guarded: TestClient[Any, Any]) -> None:
    for path in ("/agent", "/.well-known/agent-card.json", "/.well-known/agent.json"):
        assert (await guarded.get(path)).status == 200


async def test_legacy_route_without_token_is_401(guarded: TestClient[Any, Any]) -> None:
    response = await guarded.post("/message/send", json=SEND)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await response.json() == {"detail": "Not authenticated"}


async def test_wrong_token_is_401(guarded: TestClient[Any, Any]) -> None:
    response = await guarded.post(
        "/message/send", json=SEND, headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401


async def test_right_token_passes(guarded: TestClient[Any, Any]) -> None:
    response = await guarded.post(
        "/message/send", json=SEND, headers={"Authorization": "Bearer s3cret"}
    )
    assert response.status == 200


async def test_jsonrpc_without_token_is_401_with_jsonrpc_body(
    guarded: TestClient[Any, Any],
) -> None:
    response = await guarded.post("/", json=RPC_GET)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == -32600


async def test_rest_without_token_is_401_with_status_body(guarded: TestClient[Any, Any]) -> None:
    response = await guarded.get("/tasks/x")
    assert response.status == 401
    assert (await response.json())["error"]["status"] == "UNAUTHENTICATED"


async def test_async_auth_hook_decides(make_adapter: Any, make_client: Any) -> None:
    seen: list[str] = []

    async def hook(request: Request) -> bool:
        seen.append(request.path)
        return request.headers.get("X-Key") == "k"

    client = await make_client(make_adapter(), auth=hook)
    assert (await client.post("/", json=RPC_GET)).status == 401
    allowed = await client.post("/", json=RPC_GET, headers={"X-Key": "k"})
    assert (await allowed.json())["error"]["code"] == -32001
    assert seen == ["/", "/"]


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        pytest.param(
            "post", "/message/send", 500, {"detail": "Internal Server Error"}, id="legacy"
        ),
        pytest.param("get", "/tasks/x", 500, None, id="rest"),
        pytest.param("post", "/", 200, None, id="jsonrpc"),
    ],
)
async def test_unexpected_errors_answer_without_internals(
    make_adapter: Any, make_client: Any, method: str, path: str, status: int, body: Any
) -> None:
    def hook(request: Request) -> bool:
        raise RuntimeError("secret internals")

    client = await make_client(make_adapter(), auth=hook)
    response = await getattr(client, method)(path, json=RPC_GET)
    assert response.status == status
    text = await response.text()
    assert "secret internals" not in text
    assert "Traceback" not in text
    if body is not None:
        assert await response.json() == body


# -- lifecycle -------------------------------------------------------------------------------


class CountingFlow:
    """A duck-typed flow that counts run/stop calls."""

    def __init__(self) -> None:
        self.runs = 0
        self.stops = 0
        self._never = asyncio.Event()

    def run(self, *, registry: Any = None) -> None:
        self.runs += 1

    async def stop(self) -> None:
        self.stops += 1

    async def fetch(self) -> Any:
        await self._never.wait()


async def test_app_startup_and_shutdown_run_the_adapter_once() -> None:
    flow = CountingFlow()
    adapter = A2AServerAdapter(flow, agent_card={"name": "n", "description": "d"}, agent_url="u")
    client: TestClient[Any, Any] = TestClient(TestServer(create_a2a_app(adapter)))
    async with asyncio.timeout(5):
        await client.start_server()
        assert (flow.runs, flow.stops, adapter.started) == (1, 0, True)
        await client.close()
    assert (flow.runs, flow.stops, adapter.started) == (1, 1, False)


async def test_lifespan_context_shim_runs_start_and_stop() -> None:
    flow = CountingFlow()
    adapter = A2AServerAdapter(flow, agent_card={"name": "n", "description": "d"}, agent_url="u")
    app = create_a2a_app(adapter)
    async with asyncio.timeout(5), app.router.lifespan_context(app):  # type: ignore[attr-defined]
        assert adapter.started
    assert (flow.runs, flow.stops, adapter.started) == (1, 1, False)
