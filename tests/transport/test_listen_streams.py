"""2026-07-28 ``subscriptions/listen`` streams on a real server, over HTTP and WebSocket.

A listen request is answered only when its stream ends: over Streamable HTTP
it is an SSE response that stays open, over WebSocket a request left
pending. The server ends each stream with its result when it shuts down.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from http_helpers import JSON_HEADERS, rpc
from websockets.asyncio.client import connect

from iccm_network import App
from iccm_network._timeout import timeout as async_timeout

TIMEOUT = 10.0
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
MODERN_HEADERS = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"}


def make_app() -> App:
    app = App("listening")

    @app.resource("config://switch")
    def switch() -> str:
        """A switch."""
        return "on"

    return app


def listen(request_id: Any, uris: list[str]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "subscriptions/listen",
        "params": {"_meta": ENVELOPE, "notifications": {"resourceSubscriptions": uris}},
    }


class SseStream:
    """A raw ``subscriptions/listen`` POST whose SSE events are read as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = b""
        self._buffer = b""

    @classmethod
    async def open(cls, port: int, message: dict[str, Any]) -> SseStream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps(message).encode()
        fields = {**JSON_HEADERS, **MODERN_HEADERS, "Content-Length": str(len(body))}
        head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        writer.write(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + body)
        stream = cls(reader, writer)
        stream.head = await reader.readuntil(b"\r\n\r\n")
        return stream

    async def event(self) -> Any:
        """The next event's JSON, or ``None`` at the end of the response."""
        while b"\r\n\r\n" not in self._buffer.partition(b"data: ")[2]:
            size = int(await self.reader.readline(), 16)  # chunked transfer coding
            if size == 0:
                return None
            self._buffer += (await self.reader.readexactly(size + 2))[:-2]
        _, _, rest = self._buffer.partition(b"data: ")
        data, _, self._buffer = rest.partition(b"\r\n\r\n")
        return json.loads(data)

    def close(self) -> None:
        self.writer.close()


async def test_an_http_listen_stream_carries_updates_and_ends_with_its_result_at_shutdown() -> None:
    app = make_app()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        stream = await SseStream.open(server.port, listen("l-1", ["config://switch"]))
        assert stream.head.startswith(b"HTTP/1.1 200 ")
        assert b"content-type: text/event-stream" in stream.head.lower()
        ack = await stream.event()
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        assert ack["params"]["notifications"] == {"resourceSubscriptions": ["config://switch"]}
        await app.notify_resource_updated("config://switch")
        update = await stream.event()
        assert update["params"] == {"_meta": {SUBSCRIPTION_ID: "l-1"}, "uri": "config://switch"}
        started = time.perf_counter()
        await server.shutdown()  # the default grace is 10 s: the stream must not hold it
        elapsed = time.perf_counter() - started
        closing = await stream.event()
        assert await stream.event() is None  # the response ended
        stream.close()
    assert closing == {
        "jsonrpc": "2.0",
        "id": "l-1",
        "result": {"_meta": {SUBSCRIPTION_ID: "l-1"}, "resultType": "complete"},
    }
    assert elapsed < 5.0


async def test_a_listen_request_that_cannot_take_a_stream_is_refused() -> None:
    app = make_app()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        headers = {**MODERN_HEADERS, "Accept": "application/json"}
        answer = await rpc(server.port, listen(9, ["config://switch"]), headers)
    assert answer.status == 406
    error = answer.json()
    assert error["id"] == 9
    assert error["error"]["code"] == -32600
    assert "text/event-stream" in error["error"]["message"]


async def test_a_client_that_hangs_up_on_its_http_listen_stream_leaves_nothing_behind() -> None:
    app = make_app()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        stream = await SseStream.open(server.port, listen(1, ["config://switch"]))
        await stream.event()
        assert len(app.catalog.listeners) == 1
        stream.close()
        while len(app.catalog.listeners) or server.health()[1].count(b'"connections": 0') == 0:
            await asyncio.sleep(0.01)
        await app.notify_resource_updated("config://switch")  # nobody left to tell
        app.add_tool(lambda: "x", name="later")


async def test_a_websocket_listen_stream_ends_with_its_result_before_the_close() -> None:
    app = make_app()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(json.dumps(listen(5, ["config://switch"])))
            ack = json.loads(await ws.recv())
            assert ack["params"]["_meta"] == {SUBSCRIPTION_ID: 5}
            shutting_down = asyncio.create_task(server.shutdown())
            closing = json.loads(await ws.recv())
            await ws.wait_closed()
            await shutting_down
    assert closing == {
        "jsonrpc": "2.0",
        "id": 5,
        "result": {"_meta": {SUBSCRIPTION_ID: 5}, "resultType": "complete"},
    }
    assert ws.close_code == 1001
