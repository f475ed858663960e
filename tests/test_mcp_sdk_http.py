"""The official MCP Python SDK reaches an App over Streamable HTTP, in every mode it offers.

No adapter here: the SDK's own HTTP client (``mcp.Client("http://...")`` and
``streamable_http_client`` under a ``ClientSession``) against ``app.serving()``:

- ``session``: ``ClientSession`` over ``streamable_http_client`` and its ``initialize()``;
- ``legacy``: ``Client(url, mode="legacy")``;
- ``auto``: ``Client(url, mode="auto")`` (probes ``server/discover``, adopts 2026-07-28);
- ``2026-07-28``: ``Client(url, mode="2026-07-28")``, every request self-contained.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from sample_tools import add, echo, fail

from iccm_network import App, Context

TIMEOUT = 10.0

app = App("interop-http", version="2.0.0")
for tool in (add, echo, fail):
    app.add_tool(tool)


@app.tool
def stats(values: list[float]) -> dict[str, float]:
    """Summarize some numbers.

    Args:
        values: The numbers.
    """
    return {"min": min(values), "max": max(values)}


@app.tool
async def count(to: int, ctx: Context) -> int:
    """Count, reporting each step as progress.

    Args:
        to: Where to stop.
        ctx: The call's context.
    """
    for step in range(to):
        await ctx.report_progress(step + 1, to, f"step {step + 1}")
    return to


class ToolApi(Protocol):
    """What ``ClientSession`` and ``Client`` have in common."""

    async def list_tools(self) -> types.ListToolsResult: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult: ...


MODES = ["session", "legacy", "auto", "2026-07-28"]
NEGOTIATED = {
    "session": "2025-11-25",
    "legacy": "2025-11-25",
    "auto": "2026-07-28",
    "2026-07-28": "2026-07-28",
}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each of the SDK's ways to connect."""
    value: str = request.param
    return value


@asynccontextmanager
async def connected(mode: str) -> AsyncIterator[tuple[ToolApi, ClientSession]]:
    """Serve ``app`` on loopback and connect the SDK over HTTP in ``mode``."""
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            url = f"http://127.0.0.1:{server.port}/mcp"
            if mode == "session":
                async with streamable_http_client(url) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        yield session, session
            else:
                async with Client(url, mode=mode) as client:
                    yield client, client.session


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_connects_and_negotiates(mode: str) -> None:
    async with connected(mode) as (_, session):
        assert session.protocol_version == NEGOTIATED[mode]


async def test_lists_tools(mode: str) -> None:
    async with connected(mode) as (api, _):
        tools = {tool.name: tool for tool in (await api.list_tools()).tools}
    assert set(tools) == {"add", "echo", "fail", "stats", "count"}
    assert tools["add"].input_schema["required"] == ["a", "b"]


async def test_calls_a_tool_with_structured_content(mode: str) -> None:
    async with connected(mode) as (api, _):
        result = await api.call_tool("stats", {"values": [3, 1, 2]})
        summed = await api.call_tool("add", {"a": 2, "b": 3})
    assert result.structured_content == {"min": 1, "max": 3}
    assert not result.is_error
    assert text_of(summed) == "5"


async def test_concurrent_calls(mode: str) -> None:
    results: list[str] = []
    async with connected(mode) as (api, _):

        async def one(n: int) -> None:
            results.append(text_of(await api.call_tool("echo", {"text": f"m{n}"})))

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(one, n)
    assert sorted(results) == sorted(f"m{n}" for n in range(8))


async def test_tool_errors_are_is_error(mode: str) -> None:
    async with connected(mode) as (api, _):
        result = await api.call_tool("fail", {"reason": "disk full"})
    assert result.is_error
    assert "disk full" in text_of(result)


async def test_unknown_tool_is_invalid_params(mode: str) -> None:
    async with connected(mode) as (api, _):
        with pytest.raises(MCPError) as caught:
            await api.call_tool("nope", {})
    assert caught.value.error.code == INVALID_PARAMS


async def test_progress_arrives_over_sse_before_the_result(mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connected(mode) as (_, session):
        result = await session.call_tool("count", {"to": 3}, progress_callback=on_progress)
    assert text_of(result) == "3"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
