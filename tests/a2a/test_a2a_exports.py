"""The public surface: exported names and imports without the server stack."""

from __future__ import annotations

import subprocess
import sys

import penguiflow_a2a
import penguiflow_a2a.server

EXPORTS = [
    "A2AAgentCard",
    "A2ASkill",
    "A2AMessagePayload",
    "A2ATaskCancelRequest",
    "A2AServerAdapter",
    "create_a2a_app",
]


def test_package_exports_the_2_2_5_names_in_order() -> None:
    assert penguiflow_a2a.__all__ == EXPORTS
    assert penguiflow_a2a.server.__all__ == EXPORTS


def test_names_are_the_same_objects_in_package_and_server() -> None:
    for name in EXPORTS:
        assert getattr(penguiflow_a2a, name) is getattr(penguiflow_a2a.server, name)


def test_request_error_is_importable_from_server() -> None:
    from penguiflow_a2a.server import A2ARequestError

    assert issubclass(A2ARequestError, Exception)


_WITHOUT_AIOHTTP = """
import sys
sys.modules["aiohttp"] = None  # any import of aiohttp now fails
import penguiflow_a2a
from penguiflow_a2a import A2AServerAdapter, create_a2a_app
from penguiflow_a2a.client import A2AHttpTransport
assert "aiohttp" not in {m for m in sys.modules if sys.modules[m] is not None}
try:
    card = {"name": "n", "description": "d"}
    create_a2a_app(A2AServerAdapter(object(), agent_card=card, agent_url="u"))
except RuntimeError as exc:
    assert "penguiflow[a2a-server]" in str(exc), exc
else:
    raise AssertionError("create_a2a_app worked without aiohttp")
print("ok")
"""


def test_package_imports_without_aiohttp() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AIOHTTP], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_auth_hook_lives_in_auth_and_keeps_its_app_path() -> None:
    import penguiflow_a2a.app
    import penguiflow_a2a.auth

    assert penguiflow_a2a.auth.__all__ == ["AuthHook"]
    assert penguiflow_a2a.app.AuthHook is penguiflow_a2a.auth.AuthHook
