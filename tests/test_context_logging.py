"""Log messages to the caller (``ctx.info`` ...), capabilities, and the revision rules.

The protocol core decides which log messages go out; a real server on a
loopback socket and the library's client (WebSocket and in memory) show the
messages arrive, in order, before the call's reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App, Context, MCPClient
from iccm_network.protocol.capabilities import server_capabilities
from iccm_network.protocol.server import ServerInfo, ServerProtocol, ToolCall
from iccm_network.tools.routes import RouteTable

TIMEOUT = 10.0
MODERN = "2026-07-28"
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"

app = App("logs")


@app.tool
async def chatty(ctx: Context, n: int = 1) -> str:
    """Log at every level, then answer.

    Args:
        ctx: Filled in by the framework.
        n: A number echoed in the details.
    """
    await ctx.debug("looking")
    await ctx.info("found", n=n)
    await ctx.warning("odd")
    await ctx.error("bad", where={"line": 3})
    return "done"


def protocol() -> ServerProtocol:
    return ServerProtocol(RouteTable(app.tools), ServerInfo("logs", "1"))


def send(server: ServerProtocol, method: str, params: Any = None, id: int = 1) -> list[Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    server.receive_text(json.dumps(message))
    return [json.loads(frame) for frame in server.data_to_send()]


def started_call(server: ServerProtocol, meta: Any = None) -> ToolCall:
    params: dict[str, Any] = {"name": "chatty", "arguments": {}}
    if meta is not None:
        params["_meta"] = meta
    assert send(server, "tools/call", params) == []
    (call,) = server.calls_to_run()
    return call


def sent_levels(server: ServerProtocol, call: ToolCall) -> list[str]:
    levels = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
    frames = [server.log_frame(call, {"level": level, "data": "x"}) for level in levels]
    return [json.loads(frame)["params"]["level"] for frame in frames if frame is not None]


# -- the pure core ---------------------------------------------------------------


def test_handshake_era_sends_every_level_until_set_level_raises_it() -> None:
    server = protocol()
    send(server, "initialize", {"protocolVersion": "2025-11-25"})
    call = started_call(server)
    assert len(sent_levels(server, call)) == 8
    assert send(server, "logging/setLevel", {"level": "warning"}, id=2) == [
        {"jsonrpc": "2.0", "id": 2, "result": {}}
    ]
    # A call already running follows the new minimum too: the client asked now.
    assert sent_levels(server, call) == ["warning", "error", "critical", "alert", "emergency"]


def test_an_unknown_level_is_invalid_params() -> None:
    server = protocol()
    (reply,) = send(server, "logging/setLevel", {"level": "loud"})
    assert reply["error"]["code"] == -32602
    assert "loud" in reply["error"]["message"]
    meta = {**MODERN_META, LOG_LEVEL_KEY: "loud"}
    (reply,) = send(server, "tools/call", {"name": "chatty", "arguments": {}, "_meta": meta})
    assert reply["error"]["code"] == -32602


def test_modern_requests_get_logs_only_when_their_meta_asks() -> None:
    server = protocol()
    assert sent_levels(server, started_call(server, MODERN_META)) == []
    asked = started_call(server, {**MODERN_META, LOG_LEVEL_KEY: "error"})
    assert sent_levels(server, asked) == ["error", "critical", "alert", "emergency"]


def test_a_notification_frame_has_level_logger_and_data() -> None:
    server = protocol()
    call = started_call(server)
    frame = server.log_frame(call, {"level": "info", "logger": "chatty", "data": {"a": 1}})
    assert frame is not None
    assert json.loads(frame) == {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "chatty", "data": {"a": 1}},
    }


def test_modern_revision_has_no_ping_and_no_set_level() -> None:
    server = protocol()
    for method in ("ping", "logging/setLevel"):
        (reply,) = send(server, method, {"_meta": MODERN_META, "level": "info"})
        assert reply["error"]["code"] == -32601, method
    (reply,) = send(server, "ping")
    assert reply["result"] == {}  # the handshake era keeps it


def test_capabilities_name_only_what_the_app_has() -> None:
    assert server_capabilities() == {"logging": {}}
    assert server_capabilities(tools=True, logging=False) == {"tools": {"listChanged": True}}
    assert server_capabilities(resources=True, resource_subscribe=True, prompts=True) == {
        "resources": {"subscribe": True, "listChanged": True},
        "prompts": {"listChanged": True},
        "logging": {},
    }
    empty = ServerProtocol(RouteTable({}), ServerInfo("empty", "1"))
    (reply,) = send(empty, "initialize", {"protocolVersion": "2025-11-25"})
    assert reply["result"]["capabilities"] == {"logging": {}}
    (reply,) = send(protocol(), "server/discover", {"_meta": MODERN_META})
    assert reply["result"]["capabilities"] == {"tools": {"listChanged": True}, "logging": {}}


# -- on a real socket -------------------------------------------------------------


@asynccontextmanager
async def raw(url: str) -> AsyncIterator[ClientConnection]:
    async with connect(url) as ws:
        yield ws


async def frames_until_reply(ws: ClientConnection, id: int) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        frames.append(frame)
        if frame.get("id") == id:
            return frames


async def test_log_messages_arrive_before_the_reply_on_the_wire() -> None:
    async with app.serving(host="127.0.0.1", port=0) as server, raw(server.url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                  "params": {"protocolVersion": "2025-11-25"}}))  # fmt: skip
        await frames_until_reply(ws, 1)
        call = {"name": "chatty", "arguments": {"n": 5}}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        )
        *logs, reply = await frames_until_reply(ws, 2)
        assert reply["result"]["content"] == [{"type": "text", "text": "done"}]
        assert [log["params"] for log in logs] == [
            {"level": "debug", "data": "looking", "logger": "chatty"},
            {"level": "info", "data": {"message": "found", "n": 5}, "logger": "chatty"},
            {"level": "warning", "data": "odd", "logger": "chatty"},
            {
                "level": "error",
                "data": {"message": "bad", "where": {"line": 3}},
                "logger": "chatty",
            },
        ]
        level = {"level": "error"}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": level})
        )
        await frames_until_reply(ws, 3)
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": call})
        )
        *logs, reply = await frames_until_reply(ws, 4)
        assert [log["params"]["level"] for log in logs] == ["error"]


@pytest.mark.parametrize("target", ["socket", "memory"])
@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
async def test_the_client_hands_log_messages_to_on_log(target: str, version: str) -> None:
    received: list[tuple[str, Any, str | None]] = []

    def on_log(level: str, data: Any, logger: str | None) -> None:
        received.append((level, data, logger))

    async with app.serving(host="127.0.0.1", port=0) as server:
        where: Any = server.url if target == "socket" else app
        async with MCPClient(where, protocol_version=version, on_log=on_log) as client:
            assert await asyncio.wait_for(client.call("chatty"), TIMEOUT) == "done"
            everything = len(received)
            await asyncio.wait_for(client.set_log_level("warning"), TIMEOUT)
            received.clear()
            assert await asyncio.wait_for(client.call("chatty", {"n": 2}), TIMEOUT) == "done"
    # A modern client that asked for no level gets none; the handshake era gets all.
    assert everything == (4 if version != MODERN else 0)
    assert received == [
        ("warning", "odd", "chatty"),
        ("error", {"message": "bad", "where": {"line": 3}}, "chatty"),
    ]


async def test_a_new_connection_asks_for_the_log_level_again() -> None:
    received: list[str] = []
    async with app.serving(host="127.0.0.1", port=0) as server:
        client = MCPClient(server.url, on_log=lambda level, data, logger: received.append(level))
        async with client:
            await asyncio.wait_for(client.set_log_level("error"), TIMEOUT)
        # Closed: the next call connects afresh, where the server's default is every level.
        async with client:
            assert await asyncio.wait_for(client.call("chatty"), TIMEOUT) == "done"
    assert received == ["error"]


@app.tool
async def steps(ctx: Context) -> int:
    """Report progress twice."""
    await ctx.report_progress(1, 2)
    await ctx.report_progress(2, 2, "done")
    return 2


async def test_the_client_wide_progress_callback_serves_every_call() -> None:
    seen: list[tuple[float, float | None, str | None]] = []
    async with app.serving(host="127.0.0.1", port=0) as server:
        client = MCPClient(server.url, on_progress=lambda *report: seen.append(report))
        async with client:
            assert await asyncio.wait_for(client.call("steps"), TIMEOUT) == 2
            own: list[float] = []
            await asyncio.wait_for(
                client.call("steps", on_progress=lambda p, t, m: own.append(p)), TIMEOUT
            )
    assert seen == [(1, 2, None), (2, 2, "done")]
    assert own == [1, 2]
