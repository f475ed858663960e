"""The WebSocket transport over real loopback sockets: paths, subprotocols,
addresses, and calls that run concurrently without stalling the read loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App, Server
from iccm_network._timeout import timeout as async_timeout

app = App("transport-test", version="0.0.1")
main_thread_ids: list[int] = []


@app.tool
async def fast(text: str) -> str:
    return text


@app.tool
async def slow_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@app.tool
def slow_sync(seconds: float) -> int:
    time.sleep(seconds)  # blocks its worker thread, never the event loop
    return threading.get_ident()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with app.serving(host="127.0.0.1", port=0) as running:
        yield running


async def rpc(ws: ClientConnection, request_id: int, method: str, params: Any = None) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    await ws.send(json.dumps(message))


async def call(ws: ClientConnection, request_id: int, tool: str, **arguments: Any) -> None:
    await rpc(ws, request_id, "tools/call", {"name": tool, "arguments": arguments})


async def replies(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    async with async_timeout(10):
        return [json.loads(await ws.recv()) for _ in range(count)]


@pytest.mark.parametrize("path", ["/", "/mcp", "/some/deep/path?x=1"])
async def test_any_request_path_is_served(server: Server, path: str) -> None:
    async with connect(server.url + path) as ws:
        await rpc(ws, 1, "ping")
        assert await replies(ws, 1) == [{"jsonrpc": "2.0", "id": 1, "result": {}}]


async def test_the_mcp_subprotocol_is_selected_when_offered(server: Server) -> None:
    async with connect(server.url, subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "mcp"
    async with connect(server.url) as ws:
        assert ws.subprotocol is None


async def test_default_host_serves_ipv4_and_ipv6_on_one_port() -> None:
    async with app.serving(port=0) as running:
        for url in (f"ws://127.0.0.1:{running.port}", f"ws://[::1]:{running.port}"):
            async with connect(url) as ws:
                await rpc(ws, 1, "ping")
                assert (await replies(ws, 1))[0]["result"] == {}


async def test_a_slow_call_does_not_delay_a_fast_one_on_the_same_connection(
    server: Server,
) -> None:
    async with connect(server.url) as ws:
        await call(ws, 1, "slow_async", seconds=2)
        await call(ws, 2, "fast", text="hi")
        async with async_timeout(1):  # far less than the slow call takes
            first = json.loads(await ws.recv())
        assert first["id"] == 2
        assert (await replies(ws, 1))[0]["id"] == 1


async def test_sync_tools_run_in_worker_threads_concurrently(server: Server) -> None:
    async with connect(server.url) as ws:
        started = time.monotonic()
        for request_id in range(4):
            await call(ws, request_id, "slow_sync", seconds=0.5)
        answers = await replies(ws, 4)
        elapsed = time.monotonic() - started
    thread_ids = {int(answer["result"]["content"][0]["text"]) for answer in answers}
    assert threading.get_ident() not in thread_ids
    assert elapsed < 1.9  # four 0.5 s sleeps in sequence would take 2 s


async def test_the_loop_answers_pings_while_a_sync_tool_blocks(server: Server) -> None:
    async with connect(server.url) as ws:
        await call(ws, 1, "slow_sync", seconds=1.5)
        await asyncio.sleep(0.1)
        async with async_timeout(1):
            latency = await ws.ping()
            await latency
        assert (await replies(ws, 1))[0]["id"] == 1


async def test_keepalive_survives_pipelined_slow_calls(server: Server) -> None:
    # The old servers awaited each call before reading on, so the client's
    # pings went unanswered and it closed with 1011.
    async with connect(server.url, ping_interval=0.2, ping_timeout=0.3) as ws:
        for request_id in range(20):
            await call(ws, request_id, "slow_async", seconds=1)
        answers = await replies(ws, 20)
        assert sorted(answer["id"] for answer in answers) == list(range(20))
        assert all(answer["result"]["isError"] is False for answer in answers)


async def test_initialize_list_and_call_round_trip(server: Server) -> None:
    async with connect(server.url, subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
        await rpc(ws, 1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
        (init,) = await replies(ws, 1)
        assert init["result"]["serverInfo"] == {"name": "transport-test", "version": "0.0.1"}
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        await rpc(ws, 2, "tools/list")
        (listing,) = await replies(ws, 1)
        assert [tool["name"] for tool in listing["result"]["tools"]] == list(app.tools)
        await call(ws, 3, "fast", text="héllo ✓")
        (answer,) = await replies(ws, 1)
        assert answer["result"]["content"] == [{"type": "text", "text": "héllo ✓"}]


async def test_a_batch_over_the_wire_is_answered_with_one_array(server: Server) -> None:
    async with connect(server.url) as ws:
        await ws.send(
            json.dumps(
                [
                    {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": "slow_async", "arguments": {"seconds": 0.2}},
                    },
                    {"jsonrpc": "2.0", "method": "notifications/initialized"},
                ]
            )
        )
        async with async_timeout(10):
            batch = json.loads(await ws.recv())
        assert sorted(reply["id"] for reply in batch) == [1, 2]
