"""The ``penguiflow-worker`` console script and its helpers."""

from __future__ import annotations

import asyncio

import pytest
import redis_flows

from penguiflow.distributed.worker import load_flow_factory, main, run_worker


def test_flow_factory_is_loaded_from_its_spec() -> None:
    assert load_flow_factory("redis_flows:build_echo") is redis_flows.build_echo


@pytest.mark.parametrize(
    ("spec", "error", "text"),
    [
        pytest.param("no_colon", ValueError, "package.module:callable", id="malformed"),
        pytest.param("redis_flows:missing", ValueError, "does not resolve", id="missing"),
        pytest.param("redis_flows:NOT_CALLABLE", TypeError, "not a callable", id="not-callable"),
        pytest.param("nomod_at_all:x", ModuleNotFoundError, "nomod_at_all", id="no-module"),
    ],
)
def test_bad_flow_spec_is_a_clear_error(spec: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        load_flow_factory(spec)


def test_main_reports_errors_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--redis", "redis://127.0.0.1:1/0", "--flow", "bad", "--node", "n"])
    assert code == 1
    assert capsys.readouterr().err == (
        "error: flow spec must be in the form 'package.module:callable'\n"
    )


def test_main_requires_a_node(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--redis", "redis://x", "--flow", "m:f"])
    assert info.value.code == 2
    assert "--node" in capsys.readouterr().err


@pytest.mark.redis
async def test_run_worker_returns_when_stopped(
    redis_url: str, namespace: str, redis_client
) -> None:
    stop = asyncio.Event()
    stop.set()
    async with asyncio.timeout(5):
        await run_worker(
            redis_url,
            flow="redis_flows:build_with_registry",
            nodes=["echo"],
            prefix=namespace,
            block_ms=10,
            stop=stop,
        )
    assert await redis_client.exists(f"{namespace}:redis_flows:build_with_registry:node:echo")
