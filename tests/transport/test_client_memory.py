"""``MCPClient(app)``: the very client, through the app's real server side, in memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from iccm_network import App, Context, MCPClient, ToolError
from iccm_network.errors import InvalidParams, MCPConnectionError

pytestmark = pytest.mark.asyncio

app = App("memory-test", version="2.0")
entered = asyncio.Event()
cancelled: list[str] = []


@app.tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


@app.tool
def refuse(reason: str) -> str:
    """Fail on purpose.

    Args:
        reason: The failure's message.
    """
    raise ToolError(reason, data={"why": reason})


@app.tool
async def count(ctx: Context, steps: int) -> int:
    """Report progress for each step.

    Args:
        ctx: The call's context.
        steps: How many steps.
    """
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
    return steps


@app.tool
async def stall() -> str:
    """Wait until cancelled."""
    entered.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append("stall")
        raise
    return "never"


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any name lookup or socket connect during the test fails it.

    (The event loop's own self-pipe is a socket pair, so sockets themselves
    cannot be forbidden; connecting one can.)
    """

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an in-memory client looked up or connected a socket")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield


async def test_a_tool_is_called_in_memory_through_validation_and_conversion(
    no_sockets: None,
) -> None:
    async with MCPClient(app) as client:
        assert client.url == "memory://memory-test"
        assert await client.call("add", {"a": 2, "b": 3}) == 5
        assert client.server_info is not None
        assert client.server_info["serverInfo"]["name"] == "memory-test"
        with pytest.raises(ToolError, match="/a"):
            await client.call("add", {"a": "two", "b": 3})
        with pytest.raises(InvalidParams) as caught:
            await client.call("nope")
        assert caught.value.code == -32602


async def test_a_tool_error_and_its_data_cross_in_memory(no_sockets: None) -> None:
    async with MCPClient(app, protocol_version="2025-03-26") as client:
        with pytest.raises(ToolError) as caught:
            await client.call("refuse", {"reason": "no"})
    assert (caught.value.message, caught.value.data) == ("no", {"why": "no"})


async def test_list_tools_in_memory_is_the_apps_tool_list(no_sockets: None) -> None:
    async with MCPClient(app) as client:
        tools = await client.list_tools()
    assert [tool["name"] for tool in tools] == list(app.tools)


async def test_progress_reaches_the_callback_in_memory() -> None:
    seen: list[tuple[float, float | None]] = []
    async with MCPClient(app) as client:
        result = await client.call(
            "count", {"steps": 3}, on_progress=lambda p, t, m: seen.append((p, t))
        )
    assert result == 3
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_a_call_past_its_deadline_is_cancelled_on_the_server_side() -> None:
    entered.clear()
    cancelled.clear()
    async with MCPClient(app) as client:
        with pytest.raises(TimeoutError, match="tools/call 'stall'"):
            await client.call("stall", timeout=0.2)
        # The notice is sent after the timeout; the next request follows it in order.
        assert await client.call("add", {"a": 1, "b": 1}) == 2
    assert entered.is_set()
    assert cancelled == ["stall"]


async def test_the_stateless_revision_works_in_memory() -> None:
    async with MCPClient(app, protocol_version="2026-07-28") as client:
        assert await client.call("add", {"a": 4, "b": 5}) == 9


async def test_closing_fails_calls_in_flight_and_the_next_call_reconnects() -> None:
    entered.clear()
    client = MCPClient(app)
    call = asyncio.create_task(client.call("stall"))
    await asyncio.wait_for(entered.wait(), 5)
    await client.close()
    with pytest.raises(MCPConnectionError) as caught:
        await call
    assert caught.value.step == "closed"
    assert caught.value.check == "nothing on the server; the next request reconnects."
    assert await client.call("add", {"a": 1, "b": 2}) == 3
    await client.close()
