"""Suite-wide configuration: our own pytest plugin provides the flow fixtures.

``penguiflow.testkit.pytest_plugin`` supplies ``fake_clock``, ``event_recorder``,
``flow_factory`` and ``running_flow`` (flows are always stopped in teardown).
"""

from __future__ import annotations

# pytester: the plugin's own tests run inner pytest sessions.
pytest_plugins = ["penguiflow.testkit.pytest_plugin", "pytester"]
