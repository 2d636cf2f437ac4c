"""The standard A2A agent card (1.0 fields plus the 0.3 mirror) from an ``A2AAgentCard``."""

from __future__ import annotations

from typing import Any

from .models import A2AAgentCard

__all__ = ["standard_agent_card"]

_MODES = ["text/plain", "application/json"]


def standard_agent_card(
    card: A2AAgentCard,
    *,
    base_url: str,
    rest: bool = False,
    streaming: bool = True,
    push_notifications: bool = True,
) -> dict[str, Any]:
    """Build ``/.well-known/agent-card.json`` for the agent served at ``base_url``.

    The card advertises JSON-RPC for 1.0 and 0.3 on ``base_url`` (and the
    HTTP+JSON binding when ``rest``), and mirrors ``url``,
    ``preferredTransport`` and ``protocolVersion`` for 0.3 clients. The 2.2.5
    card has skills without ids or tags and capabilities as a list of words;
    the skill name becomes its id and the card's tags (or ``"penguiflow"``)
    its tags.

    Args:
        card: the 2.2.5 card of the adapter.
        base_url: absolute URL of the JSON-RPC endpoint, ending in ``/``.
        rest: whether the HTTP+JSON routes are served.
        streaming: whether streaming methods are advertised.
        push_notifications: whether the push-notification methods are advertised.
    """
    interfaces: list[dict[str, str]] = [
        {"url": base_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": base_url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    if rest:
        interfaces.append(
            {"url": base_url.rstrip("/"), "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
        )
    tags = list(card.tags) or ["penguiflow"]
    skills: list[dict[str, Any]] = []
    for skill in card.skills:
        entry: dict[str, Any] = {
            "id": skill.name,
            "name": skill.name,
            "description": skill.description,
            "tags": tags,
        }
        if skill.mode in ("send", "stream"):
            entry["tags"] = [*tags, skill.mode]
        skills.append(entry)
    if not skills:
        skills.append(
            {"id": card.name, "name": card.name, "description": card.description, "tags": tags}
        )
    standard: dict[str, Any] = {
        "name": card.name,
        "description": card.description,
        "version": card.version,
        "supportedInterfaces": interfaces,
        "capabilities": {"streaming": streaming, "pushNotifications": push_notifications},
        "defaultInputModes": list(_MODES),
        "defaultOutputModes": list(_MODES),
        "skills": skills,
        # 0.3 mirror (ignored by 1.0 clients when supportedInterfaces is present)
        "protocolVersion": "0.3.0",
        "url": base_url,
        "preferredTransport": "JSONRPC",
    }
    if rest:
        standard["additionalInterfaces"] = [
            {"url": base_url, "transport": "JSONRPC"},
            {"url": base_url.rstrip("/"), "transport": "HTTP+JSON"},
        ]
    if card.documentation_url:
        standard["documentationUrl"] = card.documentation_url
    if card.contact_url:
        standard["provider"] = {"organization": card.name, "url": card.contact_url}
    return standard
