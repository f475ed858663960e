"""Tools added or removed after the server started: seen at once, announced to clients."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App, MCPClient, MCPError
from iccm_network.testing import LocalConnection

TIMEOUT = 10.0
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def make_app() -> App:
    app = App("changing")

    @app.tool
    def first() -> str:
        """The tool there from the start."""
        return "1"

    return app


def second() -> str:
    """A tool added later."""
    return "2"


async def rpc(ws: ClientConnection, id: int, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    await ws.send(json.dumps(message))
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if frame.get("id") == id:
            return frame


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def test_adding_and_removing_a_tool_notifies_handshake_clients_and_shows_at_once() -> None:
    app = make_app()
    async with app.serving(host="127.0.0.1", port=0) as server, connect(server.url) as ws:
        reply = await rpc(ws, 1, "initialize", {"protocolVersion": "2025-11-25"})
        assert reply["result"]["capabilities"]["tools"] == {"listChanged": True}
        app.add_tool(second)
        assert await next_frame(ws) == {
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
        }
        listed = await rpc(ws, 2, "tools/list")
        assert [tool["name"] for tool in listed["result"]["tools"]] == ["first", "second"]
        called = await rpc(ws, 3, "tools/call", {"name": "second"})
        assert called["result"]["content"] == [{"type": "text", "text": "2"}]
        app.remove_tool("first")
        assert (await next_frame(ws))["method"] == "notifications/tools/list_changed"
        listed = await rpc(ws, 4, "tools/list")
        assert [tool["name"] for tool in listed["result"]["tools"]] == ["second"]
        gone = await rpc(ws, 5, "tools/call", {"name": "first"})
        assert gone["error"]["code"] == -32602


async def test_a_modern_or_uninitialized_connection_gets_no_notification() -> None:
    app = make_app()
    async with app.serving(host="127.0.0.1", port=0) as server, connect(server.url) as ws:
        app.add_tool(second)
        # The next frame is the reply to this request: nothing was pushed first.
        listed = await rpc(ws, 1, "tools/list", {"_meta": MODERN_META})
        assert [tool["name"] for tool in listed["result"]["tools"]] == ["first", "second"]
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        assert (await next_frame(ws))["id"] == 2


async def test_a_tool_added_from_another_thread_reaches_the_server() -> None:
    app = make_app()
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:
            assert [tool["name"] for tool in await client.list_tools()] == ["first"]
            worker = threading.Thread(target=app.add_tool, args=(second,))
            worker.start()
            await asyncio.to_thread(worker.join)
            # The change was queued on the server's loop before join() returned,
            # so it is applied before the next request is even read.
            assert [tool["name"] for tool in await client.list_tools()] == ["first", "second"]
            assert await asyncio.wait_for(client.call("second"), TIMEOUT) == 2


def test_removing_an_unknown_tool_is_a_key_error() -> None:
    app = make_app()
    with pytest.raises(KeyError):
        app.remove_tool("nope")
    assert list(app.tools) == ["first"]


async def test_adding_and_removing_resources_and_prompts_notifies_handshake_clients() -> None:
    app = make_app()
    async with app.serving(host="127.0.0.1", port=0) as server, connect(server.url) as ws:
        await rpc(ws, 1, "initialize", {"protocolVersion": "2025-11-25"})
        app.add_resource(lambda: "on", "config://switch", name="switch")
        assert (await next_frame(ws))["method"] == "notifications/resources/list_changed"
        listed = await rpc(ws, 2, "resources/list")
        assert [r["uri"] for r in listed["result"]["resources"]] == ["config://switch"]
        app.add_prompt(lambda: "hello", name="greet")
        assert (await next_frame(ws))["method"] == "notifications/prompts/list_changed"
        prompts = await rpc(ws, 3, "prompts/list")
        assert [p["name"] for p in prompts["result"]["prompts"]] == ["greet"]
        app.remove_resource("config://switch")
        assert (await next_frame(ws))["method"] == "notifications/resources/list_changed"
        gone = await rpc(ws, 4, "resources/read", {"uri": "config://switch"})
        assert gone["error"]["code"] == -32002
        app.remove_prompt("greet")
        assert (await next_frame(ws))["method"] == "notifications/prompts/list_changed"
        prompts = await rpc(ws, 5, "prompts/list")
        assert prompts["result"]["prompts"] == []


async def test_an_in_memory_client_calls_tools_added_and_removed_after_it_connected() -> None:
    app = make_app()
    async with MCPClient(app) as client:
        assert [tool["name"] for tool in await client.list_tools()] == ["first"]
        app.add_tool(second)
        assert [tool["name"] for tool in await client.list_tools()] == ["first", "second"]
        assert await client.call("second") == 2
        app.remove_tool("second")
        assert [tool["name"] for tool in await client.list_tools()] == ["first"]
        with pytest.raises(MCPError, match="second"):
            await client.call("second")


async def test_a_tool_added_from_another_thread_reaches_an_in_memory_client() -> None:
    app = make_app()
    async with MCPClient(app) as client:
        assert [tool["name"] for tool in await client.list_tools()] == ["first"]
        worker = threading.Thread(target=app.add_tool, args=(second,))
        worker.start()
        await asyncio.to_thread(worker.join)
        # Queued on the client's loop by then, so applied before the next request.
        assert await asyncio.wait_for(client.call("second"), TIMEOUT) == 2


async def test_an_in_memory_handshake_connection_is_told_of_list_changes() -> None:
    app = make_app()
    connection = LocalConnection(app, protocol_version="2025-11-25")
    app.add_tool(second)  # before the first message: served from the start, nobody to tell
    listed = await connection.request("tools/list")
    assert [tool["name"] for tool in listed["result"]["tools"]] == ["first", "second"]
    app.remove_tool("second")
    app.add_resource(lambda: "on", "config://switch", name="switch")
    app.add_prompt(lambda: "hello", name="greet")
    await asyncio.sleep(0)  # the notices are sent by tasks of their own, as on a socket
    listed = await connection.request("tools/list")
    assert [tool["name"] for tool in listed["result"]["tools"]] == ["first"]
    assert [notice["method"] for notice in connection.notifications] == [
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    ]


async def test_an_in_memory_connection_with_fixed_tools_keeps_them() -> None:
    app = make_app()
    connection = LocalConnection(app, tools=dict(app.tools))
    await connection.request("tools/list")
    app.add_tool(second)
    listed = await connection.request("tools/list")
    assert [tool["name"] for tool in listed["result"]["tools"]] == ["first"]
