"""MCPClient against real iccm-network servers on loopback, and its pure parts."""

from __future__ import annotations

import ast
import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers_client import (
    TIMEOUT,
    add,
    fail,
    free_port,
    initialize_result,
    never_answers,
    raw_server,
    tcp_server,
)
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from iccm_network import App, Context, MCPConnectionError, MCPError, ToolError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.client import MCPClient, decode_result
from iccm_network.errors import InvalidParams
from iccm_network.protocol.server import ServerInfo
from iccm_network.tools.routes import RouteTable
from iccm_network.transport.connect import Endpoint, connect_tcp, resolve
from iccm_network.transport.websocket import Server

app = App("client-test", version="3.1.4")
app.add_tool(add)
calls_cancelled: list[str] = []
calls_entered: dict[str, asyncio.Event] = {}


@app.tool
async def echo(text: str) -> str:
    """Return the text unchanged.

    Args:
        text: What to send back.
    """
    return text


@app.tool
def wrapped_lookalike() -> dict[str, int]:
    """Return an object that happens to have a single "result" key."""
    return {"result": 5}


@app.tool
async def wait(seconds: float, tag: str = "") -> str:
    """Sleep, noting a cancellation.

    Args:
        seconds: How long to sleep.
        tag: Recorded when the call is cancelled.
    """
    if tag in calls_entered:
        calls_entered[tag].set()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        calls_cancelled.append(tag)
        raise
    return "done"


app.add_tool(fail)


@app.tool
async def count(ctx: Context, steps: int) -> int:
    """Report progress for each step.

    Args:
        steps: How many steps.
    """
    for step in range(steps):
        await ctx.report_progress(step + 1, total=steps, message=f"step {step + 1}")
    return steps


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with app.serving(host="127.0.0.1", port=0) as running:
        yield running


# -- addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "port", "url"),
    [
        ("horace-mcp", 8070, "ws://horace-mcp:8070/"),
        ("horace-mcp", None, "ws://horace-mcp:8000/"),
        ("horace-mcp:8070", None, "ws://horace-mcp:8070/"),
        ("ws://horace-mcp:8070/mcp", None, "ws://horace-mcp:8070/mcp"),
        ("ws://horace-mcp/mcp?x=1", None, "ws://horace-mcp:80/mcp?x=1"),
        ("ws://horace-mcp", 8070, "ws://horace-mcp:8070/"),
        ("wss://example.org", None, "wss://example.org:443/"),
        ("http://horace-mcp:8070", None, "http://horace-mcp:8070/"),
        ("https://example.org/mcp", None, "https://example.org:443/mcp"),
        ("ws://[::1]:8070", None, "ws://[::1]:8070/"),
    ],
)
def test_endpoint_reads_hosts_and_urls(target: str, port: int | None, url: str) -> None:
    assert Endpoint.parse(target, port).url == url


@pytest.mark.parametrize(
    ("target", "port"),
    [("ftp://host:1", None), ("ws://host:1", 2), ("ws://:1", None), ("ws://host:99999", None)],
)
def test_endpoint_refuses_unusable_addresses(target: str, port: int | None) -> None:
    with pytest.raises(ValueError):
        Endpoint.parse(target, port)


def test_client_takes_a_host_and_port_or_a_url() -> None:
    assert MCPClient("horace-mcp", port=8070).url == "ws://horace-mcp:8070/"
    assert MCPClient("ws://horace-mcp:8070/mcp").url == "ws://horace-mcp:8070/mcp"


# -- decoding (pure) -----------------------------------------------------------


def text_result(text: str, **extra: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False, **extra}


def test_structured_content_is_returned_when_present() -> None:
    assert decode_result(text_result('{"a":1}', structuredContent={"a": 1})) == {"a": 1}


def test_a_wrapped_value_is_unwrapped_when_the_text_carries_it() -> None:
    assert decode_result(text_result("[1,2]", structuredContent={"result": [1, 2]})) == [1, 2]
    assert decode_result(text_result("abc", structuredContent={"result": "abc"})) == "abc"


def test_an_object_with_a_result_key_is_returned_whole() -> None:
    result = text_result('{"result":5}', structuredContent={"result": 5})
    assert decode_result(result) == {"result": 5}


def test_text_is_parsed_as_json_when_it_is_json_else_returned_as_text() -> None:
    assert decode_result(text_result('{"a": [1, 2]}')) == {"a": [1, 2]}
    assert decode_result(text_result("42")) == 42
    assert decode_result(text_result("not json")) == "not json"


def test_other_content_is_returned_as_typed_values() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "image", "data": "", "mimeType": "x"}]
    # Text stays text; a malformed image block (no image MIME type) stays as it came.
    assert decode_result({"content": content, "isError": False}) == ["a", content[1]]
    assert decode_result({"content": [], "isError": False}) is None


def test_an_error_result_raises_tool_error_with_its_data() -> None:
    result = {
        "content": [{"type": "text", "text": "disk full"}],
        "isError": True,
        "_meta": {"iccm-network/errorData": {"free": 0}},
    }
    with pytest.raises(ToolError) as caught:
        decode_result(result)
    assert caught.value.message == "disk full"
    assert caught.value.data == {"free": 0}


CLIENT_MODULES = [
    "client",
    "client_catalog",
    "protocol.client_events",
    "protocol.client",
    "protocol.client_results",
    "transport.client",
    "transport.connect",
    "transport.failures",
    "transport.handshake",
    "transport.http_client",
]


@pytest.mark.parametrize("module", CLIENT_MODULES)
def test_the_client_imports_no_server_module(module: str) -> None:
    # Module-level imports only: the in-memory transport imports the server
    # side inside the function that needs it, and type-only imports are free.
    source = Path(__file__).parents[1] / "iccm_network" / f"{module.replace('.', '/')}.py"
    imported = {
        node.module
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.ImportFrom) and node.module
    }
    ours = {name for name in imported if name.startswith("iccm_network")}
    allowed = {
        "iccm_network",
        "iccm_network.errors",
        "iccm_network.protocol.versions",
        "iccm_network.content",
        *(f"iccm_network.{name}" for name in CLIENT_MODULES),
    }
    assert ours <= allowed


# -- against a server ----------------------------------------------------------


async def test_async_with_connects_and_initializes(server: Server) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        assert client.connected
        info = client.server_info
        assert info is not None
        assert info["protocolVersion"] == "2025-11-25"
        assert info["serverInfo"] == {"name": "client-test", "version": "3.1.4"}
    assert not client.connected


async def test_a_call_connects_lazily_without_async_with(server: Server) -> None:
    client = MCPClient("127.0.0.1", port=server.port)
    try:
        async with async_timeout(TIMEOUT):
            assert not client.connected
            assert await client.call("add", {"a": 2, "b": 3}) == 5
            assert client.connected
    finally:
        await client.close()


async def test_results_decode_to_plain_values(server: Server) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        assert await client.call("add", {"a": 40, "b": 2}) == 42
        assert await client.call("echo", {"text": "héllo"}) == "héllo"
        assert await client.call("wrapped_lookalike") == {"result": 5}


async def test_results_decode_the_same_under_an_older_protocol(server: Server) -> None:
    async with (
        async_timeout(TIMEOUT),
        MCPClient(server.url, protocol_version="2024-11-05") as client,
    ):
        assert client.server_info is not None
        assert client.server_info["protocolVersion"] == "2024-11-05"
        assert await client.call("add", {"a": 40, "b": 2}) == 42
        assert await client.call("wrapped_lookalike") == {"result": 5}


async def test_list_tools_returns_the_definitions_exactly_as_on_the_wire(server: Server) -> None:
    async with async_timeout(TIMEOUT):
        async with connect(server.url) as raw:
            init = {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            }
            await raw.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
            )
            await raw.recv()
            await raw.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            wire = json.loads(await raw.recv())["result"]["tools"]
        async with MCPClient(server.url) as client:
            assert await client.list_tools() == wire
    assert [tool["name"] for tool in wire] == list(app.tools)


async def test_list_tools_follows_next_cursor_across_pages() -> None:
    paged = Server(
        RouteTable(app.tools),
        ServerInfo("paged", "1.0", page_size=2),
        app.settings(host="127.0.0.1", port=0),
    )
    await paged.start()
    try:
        async with async_timeout(TIMEOUT), MCPClient(paged.url) as client:
            tools = await client.list_tools()
        assert [tool["name"] for tool in tools] == list(app.tools)
    finally:
        await paged.shutdown(grace=0)


async def test_concurrent_calls_share_one_connection_and_do_not_wait_for_each_other(
    server: Server,
) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        slow = asyncio.create_task(client.call("wait", {"seconds": 30, "tag": "concurrent"}))
        fast = await asyncio.gather(*(client.call("add", {"a": i, "b": i}) for i in range(50)))
        assert fast == [2 * i for i in range(50)]
        assert not slow.done()
        assert server.connections == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow


async def test_a_tool_error_raises_tool_error_with_message_and_data(server: Server) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        with pytest.raises(ToolError) as caught:
            await client.call("fail", {"reason": "disk full"})
    assert caught.value.message == "disk full"
    assert caught.value.data == {"reason": "disk full"}


async def test_a_json_rpc_error_raises_the_mcp_error_class_for_its_code(server: Server) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        with pytest.raises(InvalidParams) as caught:
            await client.call("no_such_tool")
        assert isinstance(caught.value, MCPError)
        assert caught.value.code == -32602
        assert caught.value.data == {"name": "no_such_tool"}
        with pytest.raises(MCPError) as unknown:
            await client.request("no/such/method")
        assert unknown.value.code == -32601


async def test_a_timed_out_call_raises_and_cancels_the_call_on_the_server(
    server: Server,
) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        with pytest.raises(TimeoutError, match="'wait'.*0.2 s"):
            await client.call("wait", {"seconds": 30, "tag": "timed-out"}, timeout=0.2)
        while "timed-out" not in calls_cancelled:
            await asyncio.sleep(0.01)
        assert await client.call("add", {"a": 1, "b": 1}) == 2


async def test_ping_returns_the_round_trip_in_seconds(server: Server) -> None:
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        assert 0 < await client.ping() < TIMEOUT


async def test_progress_notifications_reach_the_callback(server: Server) -> None:
    seen: list[tuple[float, float | None, str | None]] = []
    async with async_timeout(TIMEOUT), MCPClient(server.url) as client:
        result = await client.call(
            "count", {"steps": 3}, on_progress=lambda p, t, m: seen.append((p, t, m))
        )
    assert result == 3
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_a_bearer_token_is_sent_at_the_handshake() -> None:
    async with async_timeout(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0, auth_token="s3cret") as guarded:
            async with MCPClient(guarded.url, auth_token="s3cret") as client:
                assert await client.call("add", {"a": 1, "b": 2}) == 3
            with pytest.raises(MCPConnectionError) as caught:
                await MCPClient(guarded.url, retries=0).connect()
    assert caught.value.step == "handshake"
    assert "401" in caught.value.message


async def dies_on_tools_call(websocket: ServerConnection) -> None:
    """Answer initialize, then drop the connection (no close frame) on tools/call."""
    async for frame in websocket:
        message = json.loads(frame)
        if message.get("method") == "initialize":
            result = initialize_result("dying")
            await websocket.send(
                json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
            )
        elif message.get("method") == "tools/call":
            websocket.transport.abort()


async def test_a_call_in_flight_when_the_connection_drops_raises_and_the_next_reconnects() -> None:
    port = free_port()
    client = MCPClient("127.0.0.1", port=port, backoff=0.01)
    try:
        async with async_timeout(TIMEOUT):
            async with serve(dies_on_tools_call, "127.0.0.1", port):
                with pytest.raises(MCPConnectionError) as caught:
                    await client.call("add", {"a": 1, "b": 1})
            assert caught.value.step == "closed"
            assert "closed with 1006" in caught.value.message
            assert not client.connected
            async with app.serving(host="127.0.0.1", port=port):
                assert await client.call("add", {"a": 2, "b": 2}) == 4
    finally:
        await client.close()


async def test_after_a_server_restart_the_next_call_reconnects() -> None:
    port = free_port()
    client = MCPClient("127.0.0.1", port=port, backoff=0.01)
    try:
        async with async_timeout(TIMEOUT):
            async with app.serving(host="127.0.0.1", port=port) as first:
                assert await client.call("add", {"a": 1, "b": 1}) == 2
                await first.shutdown(grace=0)
            while client.connected:  # the reader sees the 1001 close
                await asyncio.sleep(0.01)
            async with app.serving(host="127.0.0.1", port=port):
                assert await client.call("add", {"a": 2, "b": 2}) == 4
    finally:
        await client.close()


async def test_connecting_retries_with_backoff_until_the_server_is_up() -> None:
    port = free_port()
    client = MCPClient("127.0.0.1", port=port, retries=20, backoff=0.02, max_backoff=0.1)

    async def serve_later() -> None:
        await asyncio.sleep(0.3)
        async with app.serving(host="127.0.0.1", port=port):
            await asyncio.sleep(TIMEOUT)

    later = asyncio.create_task(serve_later())
    try:
        async with async_timeout(TIMEOUT):
            assert await client.call("add", {"a": 1, "b": 1}) == 2
    finally:
        await client.close()
        later.cancel()
        with pytest.raises(asyncio.CancelledError):
            await later


async def test_retries_are_bounded_and_end_with_the_last_diagnosis() -> None:
    client = MCPClient("127.0.0.1", port=free_port(), retries=2, backoff=0.01)
    async with async_timeout(TIMEOUT):
        with pytest.raises(MCPConnectionError) as caught:
            await client.call("add", {"a": 1, "b": 1})
    assert caught.value.step == "tcp"
    assert "refused" in caught.value.message
    assert "\nCheck: " in caught.value.message


async def test_the_connect_timeout_bounds_a_server_that_never_answers() -> None:
    async with async_timeout(TIMEOUT), tcp_server(never_answers) as url:
        client = MCPClient(url, connect_timeout=0.3, retries=0)
        with pytest.raises(MCPConnectionError) as caught:
            await client.connect()
    assert caught.value.step == "timeout"
    assert "handshake" in caught.value.message


async def test_close_leaves_the_client_usable(server: Server) -> None:
    client = MCPClient(server.url)
    try:
        async with async_timeout(TIMEOUT):
            assert await client.call("add", {"a": 1, "b": 1}) == 2
            await client.close()
            assert not client.connected
            assert await client.call("add", {"a": 2, "b": 2}) == 4
    finally:
        await client.close()


async def test_the_client_answers_the_servers_ping_requests() -> None:
    answers: list[Any] = []

    async def pinging(websocket: ServerConnection) -> None:
        async for frame in websocket:
            message = json.loads(frame)
            if "id" not in message or "method" not in message:
                continue
            # Before each reply, ping the client and wait for its answer.
            await websocket.send(json.dumps({"jsonrpc": "2.0", "id": "srv", "method": "ping"}))
            answers.append(json.loads(await websocket.recv()))
            if message["method"] == "initialize":
                result = initialize_result("pinging")
            else:
                result = {"content": [{"type": "text", "text": "pong"}], "isError": False}
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": result}
            await websocket.send(json.dumps(reply))

    async with async_timeout(TIMEOUT):
        async with raw_server(pinging) as url, MCPClient(url) as client:
            assert await client.call("anything") == "pong"
    assert answers == [{"jsonrpc": "2.0", "id": "srv", "result": {}}] * 2


async def test_close_fails_calls_in_flight_and_says_so(server: Server) -> None:
    client = MCPClient(server.url)
    async with async_timeout(TIMEOUT):
        entered = calls_entered["closing"] = asyncio.Event()
        in_flight = asyncio.create_task(client.call("wait", {"seconds": 30, "tag": "closing"}))
        await entered.wait()
        await client.close()
        with pytest.raises(MCPConnectionError) as caught:
            await in_flight
    assert caught.value.step == "closed"
    assert "MCPClient.close()" in caught.value.message


async def test_the_tcp_socket_disables_nagle(server: Server) -> None:
    # asyncio sets TCP_NODELAY only on sockets it creates; without it small frames
    # sent back to back wait ~40 ms for a delayed ACK.
    endpoint = Endpoint.parse(server.url)
    async with async_timeout(TIMEOUT):
        addresses = await resolve(endpoint, TIMEOUT)
        with await connect_tcp(endpoint, addresses, TIMEOUT) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
