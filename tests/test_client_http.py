"""``MCPClient("http://...")``, ``iccm-network tools/call/doctor`` over Streamable HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from helpers_client import run_main
from sample_tools import add, fail, free_port

from iccm_network import App, Context, MCPClient, MCPConnectionError, MCPError, ToolError
from iccm_network.cli.doctor import doctor
from iccm_network.transport.websocket import Server

TIMEOUT = 10.0

app = App("client-http", version="3.0")
app.add_tool(add)
app.add_tool(fail)


@app.tool
async def count(to: int, ctx: Context) -> int:
    """Count with progress.

    Args:
        to: Where to stop.
        ctx: The call's context.
    """
    for step in range(to):
        await ctx.report_progress(step + 1, to)
    return to


WAITING: list[str] = []
"""What ``wait`` saw: ``started``, then ``cancelled``."""


@app.tool
async def wait() -> str:
    """Wait until cancelled."""
    WAITING.append("started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        WAITING.append("cancelled")
        raise
    return "never"


@asynccontextmanager
async def serving(**overrides: object) -> AsyncIterator[Server]:
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0, **overrides) as server:
            yield server


def http_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/mcp"


@pytest.mark.parametrize("version", ["2024-11-05", "2025-11-25", "2026-07-28"])
async def test_the_client_calls_over_http_in_each_era(version: str) -> None:
    async with serving() as server, MCPClient(http_url(server), protocol_version=version) as client:
        assert await client.call("add", {"a": 2, "b": 3}) == 5
        assert [tool["name"] for tool in await client.list_tools()] == [
            "add",
            "fail",
            "count",
            "wait",
        ]
        results = await asyncio.gather(*(client.call("add", {"a": n, "b": 1}) for n in range(6)))
        with pytest.raises(ToolError) as tool_error:
            await client.call("fail", {"reason": "disk full"})
        with pytest.raises(MCPError) as rpc_error:
            await client.call("nope", {})
    assert results == [1, 2, 3, 4, 5, 6]
    assert tool_error.value.message == "disk full"
    assert rpc_error.value.code == -32602


async def test_progress_reaches_the_callback_over_http() -> None:
    seen: list[float] = []
    async with serving() as server, MCPClient(http_url(server)) as client:
        result = await client.call(
            "count", {"to": 3}, on_progress=lambda progress, total, message: seen.append(progress)
        )
    assert (result, seen) == (3, [1, 2, 3])


async def test_a_missing_token_is_a_typed_connection_error() -> None:
    async with serving(auth_token="s3cret") as server:
        with pytest.raises(MCPConnectionError) as refused:
            await MCPClient(http_url(server), retries=0).connect()
        async with MCPClient(http_url(server), auth_token="s3cret") as client:
            assert await client.call("add", {"a": 1, "b": 1}) == 2
    assert (refused.value.step, refused.value.reason) == ("handshake", "unauthorized")


async def test_a_closed_port_is_a_typed_connection_error() -> None:
    with anyio.fail_after(TIMEOUT), pytest.raises(MCPConnectionError) as refused:
        await MCPClient(f"http://127.0.0.1:{free_port()}/mcp", retries=0).connect()
    assert refused.value.step == "tcp"


async def test_doctor_walks_http_and_names_the_failing_step() -> None:
    async with serving(auth_token="s3cret") as server:
        good = await doctor(http_url(server), auth_token="s3cret")
        bad = await doctor(http_url(server))
    assert good.ok
    assert [step.name for step in good.steps][2] == "http"
    failure = bad.failure
    assert failure is not None
    assert (failure.name, failure.reason) == ("http", "unauthorized")


async def test_the_cli_takes_http_urls(capsys: pytest.CaptureFixture[str]) -> None:
    async with serving() as server:
        assert await run_main(["call", http_url(server), "add", '{"a": 40, "b": 2}']) == 0
        assert json.loads(capsys.readouterr().out) == 42
        assert await run_main(["tools", http_url(server)]) == 0
        assert "count" in capsys.readouterr().out
        assert await run_main(["doctor", http_url(server)]) == 0


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_a_call_the_client_gives_up_on_is_cancelled_on_the_server(version: str) -> None:
    # Nothing on the server relates a cancellation POSTed apart to the call:
    # the client closes the call's own response instead, and the server
    # cancels a call whose client hung up.
    WAITING.clear()
    async with serving() as server, MCPClient(http_url(server), protocol_version=version) as client:
        with pytest.raises(TimeoutError):
            await client.call("wait", timeout=0.3)
        while len(WAITING) < 2:
            await asyncio.sleep(0.01)
        assert WAITING == ["started", "cancelled"]
        assert await client.call("add", {"a": 1, "b": 2}) == 3
