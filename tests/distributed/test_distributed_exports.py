"""The public surface of ``penguiflow.distributed``, pinned."""

from __future__ import annotations

import subprocess
import sys

import penguiflow.distributed as distributed
from penguiflow.errors import PenguiFlowError, SerializationError


def test_package_exports_exactly_these_names() -> None:
    assert distributed.__all__ == [
        "BusRecord",
        "RedisDeployment",
        "RedisMessageBus",
        "RedisRateLimiter",
        "RedisStateStore",
        "SerializationError",
        "WireEnvelope",
    ]


def test_serialization_error_is_part_of_the_one_hierarchy() -> None:
    assert distributed.SerializationError is SerializationError
    assert issubclass(SerializationError, PenguiFlowError)


def test_importing_the_package_does_not_import_the_redis_client() -> None:
    code = "import sys, penguiflow.distributed; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
