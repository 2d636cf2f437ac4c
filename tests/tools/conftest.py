"""Fixtures for the MCP tests: real SDK servers started as child processes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp_support import HttpServer

SERVER = Path(__file__).with_name("mcp_arith_server.py")


@pytest.fixture
def arith_argv() -> list[str]:
    """argv of the test server over stdio."""
    return [sys.executable, str(SERVER)]


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    """The test server over streamable HTTP on 127.0.0.1 (any free port)."""
    server = HttpServer([sys.executable, str(SERVER)])
    async with asyncio.timeout(30):
        await server.start()
    try:
        yield server
    finally:
        await server.stop()
