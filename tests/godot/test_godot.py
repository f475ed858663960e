"""Log shipping to Godot: bounded, non-blocking, and never feeding itself.

The stand-in Godot is a real iccm-network App on loopback whose
``logger_log`` tool has the seed Godot's hand-written ``inputSchema`` and
records what it receives (it answers JSON-RPC batches); a bare
``websockets`` server stands in for a legacy Godot that takes single
messages only; "down" is a closed port; "hanging" is a TCP server that
accepts and never answers, and a WebSocket server that completes the
handshake and never answers a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from iccm_network import App, Context, ToolError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.godot import (
    GodotHandler,
    GodotShipper,
    godot_level,
    shipping_logs,
)
from iccm_network.godot import shipper as godot_shipper
from iccm_network.godot.shipper import _decode
from iccm_network.logs import SHIPPER_HEADER, TRACE, mark_shipper_connection

WAIT = 5.0
"""Seconds any one wait may take; each takes milliseconds when all is well."""

QUICK: dict[str, Any] = {
    "connect_timeout": 0.3,
    "reply_timeout": 0.3,
    "backoff_initial": 0.02,
    "backoff_max": 0.1,
}
"""Shipper options that make failures and reconnects fast in tests."""

SEED_SCHEMA = {
    "type": "object",
    "properties": {
        "component": {"type": "string", "description": "Component name"},
        "level": {"type": "string", "enum": ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]},
        "message": {"type": "string", "description": "Log message"},
        "trace_id": {"type": "string", "description": "Optional trace ID for correlation"},
        "data": {"type": "object", "description": "Optional structured data"},
    },
    "required": ["component", "level", "message"],
}
"""The seed Godot's ``logger_log`` schema, as published today."""

log = logging.getLogger("iccm_network.test")


@pytest.fixture(autouse=True)
def info_logging(caplog: pytest.LogCaptureFixture) -> None:
    # The library configures no levels; a service does (App.run at MCP_LOG_LEVEL).
    caplog.set_level(logging.INFO, logger="iccm_network")


def stand_in_godot(*, log_each: bool = False, reject: bool = False) -> tuple[App, list[Any]]:
    """An App named godot whose ``logger_log`` records every entry it gets."""
    received: list[dict[str, Any]] = []
    godot = App("godot", version="1.0.0")

    async def logger_log(
        component: str,
        level: str,
        message: str,
        ctx: Context,
        trace_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        entry = {"component": component, "level": level, "message": message, "data": data}
        if trace_id is not None:
            entry["trace_id"] = trace_id
        received.append(entry)
        if log_each:  # a Godot that logs what it receives must not loop either
            ctx.logger.warning("stored an entry from %s", component)
        if reject:
            raise ToolError("the log store is full")
        return {"status": "ok"}

    godot.add_tool(logger_log, input_schema=SEED_SCHEMA)

    @godot.tool
    def boom() -> None:
        """Fail with an unexpected error."""
        raise RuntimeError("disk on fire")

    @godot.tool
    def fine() -> str:
        """Succeed."""
        return "fine"

    return godot, received


async def eventually(predicate: Callable[[], bool]) -> None:
    async with async_timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    async with connect(url) as client:
        request = {"name": tool, "arguments": arguments or {}}
        await client.send(
            json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": request})
        )
        async with async_timeout(WAIT):
            return json.loads(await client.recv())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def tcp_server_that_never_answers() -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # until the shipper gives up and closes

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@asynccontextmanager
async def websocket_server_that_never_answers() -> AsyncIterator[str]:
    async def hold(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(hold, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def raw_godot(
    *, batches: bool, close_on_batch: bool = False
) -> AsyncIterator[tuple[str, list[Any]]]:
    """A bare ``websockets`` MCP server recording every message it receives.

    With ``batches`` false it is a legacy Godot: it answers a batch frame
    with one ``Invalid Request`` error whose id is null, or with
    ``close_on_batch`` it closes the connection instead.
    """
    received: list[Any] = []

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if request["method"] == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "legacy godot", "version": "0"},
            }
        else:
            result = {"content": [{"type": "text", "text": "stored"}]}
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}

    async def handle(connection: ServerConnection) -> None:
        async for frame in connection:
            message = json.loads(frame)
            received.append(message)
            if isinstance(message, list) and close_on_batch:
                await connection.close()
                return
            if isinstance(message, list):
                refusal = {"code": -32600, "message": "Invalid Request"}
                reply: Any = (
                    [answer(request) for request in message]
                    if batches
                    else {"jsonrpc": "2.0", "id": None, "error": refusal}
                )
                await connection.send(json.dumps(reply))
            elif "id" in message:
                await connection.send(json.dumps(answer(message)))

    async with serve(handle, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", received


def shipped(received: list[Any]) -> list[str]:
    """The messages of the ``logger_log`` calls in ``received``, batches opened."""
    requests = [m for item in received for m in (item if isinstance(item, list) else [item])]
    return [
        request["params"]["arguments"]["message"]
        for request in requests
        if request.get("method") == "tools/call"
    ]


def record(
    message: str = "hello", level: int = logging.INFO, name: str = "iccm_network.test", **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


# -- the handler: no sockets ------------------------------------------------------


def test_levels_map_to_godot_level_names() -> None:
    assert [
        godot_level(level)
        for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO)
    ] == ["ERROR", "ERROR", "WARN", "INFO"]
    assert godot_level(logging.DEBUG) == "DEBUG"
    assert godot_level(TRACE) == "TRACE"


def test_an_entry_has_component_level_message_trace_id_and_data() -> None:
    handler = GodotHandler("horace")
    try:
        raise ValueError("bad file id")
    except ValueError:
        failing = logging.LogRecord(
            "iccm_network.results",
            logging.ERROR,
            __file__,
            1,
            "tool %r failed",
            ("get",),
            exc_info=__import__("sys").exc_info(),
        )
    failing.__dict__.update(tool="get", trace_id="abc123", peer=("10.0.0.1", 5), detail=object())
    entry = handler.entry(failing)
    assert entry["component"] == "horace"
    assert entry["level"] == "ERROR"
    assert entry["message"] == "tool 'get' failed"
    assert entry["trace_id"] == "abc123"
    data = entry["data"]
    assert data["logger"] == "iccm_network.results"
    assert data["tool"] == "get"
    assert data["peer"] == "('10.0.0.1', 5)"
    assert data["detail"].startswith("<object object")
    assert data["exception"] == "ValueError: bad file id"
    assert "Traceback" in data["traceback"]
    assert data["time"].endswith("Z")
    json.dumps(entry)  # always JSON-able


def test_a_request_id_serves_as_trace_id_when_there_is_no_correlation_id() -> None:
    entry = GodotHandler("horace").entry(record(request_id=42))
    assert entry["trace_id"] == "42"
    assert "trace_id" not in GodotHandler("horace").entry(record())


def test_long_messages_are_clipped_so_entries_stay_small() -> None:
    entry = GodotHandler("horace").entry(record("x" * 100_000))
    assert len(entry["message"]) < 5000


def test_successful_calls_and_logger_log_calls_are_not_queued() -> None:
    handler = GodotHandler("godot")
    for made in (
        record(tool="get", outcome="ok"),
        record(tool="logger_log", outcome="error:RuntimeError"),
        record(level=logging.ERROR, tool="logger_log", trace_id="x"),
        record(log_shipper=True),
        record(name="iccm_network.godot"),
        record(name="iccm_network.godot.websockets"),
    ):
        handler.handle(made)
    assert len(handler) == 0
    handler.handle(record(tool="get", outcome="timeout"))
    handler.handle(record(name="iccm_network.godotlike"))
    assert len(handler) == 2


def test_records_logged_while_serving_a_shipper_are_not_queued() -> None:
    handler = GodotHandler("godot")

    def serve_shipper() -> None:
        assert mark_shipper_connection({SHIPPER_HEADER: "godot"})
        handler.handle(record("connection open"))

    contextvars.copy_context().run(serve_shipper)
    assert len(handler) == 0
    assert not mark_shipper_connection({})
    handler.handle(record("connection open"))  # the mark stayed in its own context
    assert len(handler) == 1


def test_a_full_queue_drops_the_oldest_entries_and_counts_them() -> None:
    handler = GodotHandler("horace", capacity=3)
    for number in range(5):
        handler.handle(record(f"entry {number}"))
    assert [entry["message"] for entry in handler.take(10)] == ["entry 2", "entry 3", "entry 4"]
    assert handler.take_dropped() == 2
    assert handler.take_dropped() == 0
    assert handler.queued == 5


def test_many_threads_logging_at_once_keep_the_bound_and_the_count() -> None:
    handler = GodotHandler("horace", capacity=100)
    threads = [
        threading.Thread(target=lambda: [handler.handle(record()) for _ in range(500)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(handler) == 100
    assert handler.queued == 4000
    assert handler.take_dropped() == 3900


def test_a_shipper_refuses_a_url_that_is_not_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        GodotShipper("http://godot:9060", GodotHandler("horace"))


async def test_an_invalid_godot_url_is_logged_and_shipping_stays_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with shipping_logs("godot-mcp:9060", "horace") as shipper:
        assert shipper is None
    assert "log shipping is off" in caplog.text


async def test_no_url_means_no_handler_and_no_task() -> None:
    before = list(logging.getLogger("iccm_network").handlers)
    async with shipping_logs(None, "horace") as shipper:
        assert shipper is None
        assert logging.getLogger("iccm_network").handlers == before


# -- against a stand-in Godot ------------------------------------------------------


async def test_entries_reach_godot_through_logger_log() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            log.warning("cache %s is cold", "files", extra={"trace_id": "t-1", "size": 3})
            await eventually(lambda: len(received) == 1)
            assert shipper.connected
    assert received == [
        {
            "component": "horace",
            "level": "WARN",
            "message": "cache files is cold",
            "trace_id": "t-1",
            "data": {
                "logger": "iccm_network.test",
                "time": received[0]["data"]["time"],
                "size": 3,
            },
        }
    ]
    assert shipper.delivered == 1
    assert shipper.connections == 1


async def test_the_handler_is_attached_only_while_shipping() -> None:
    godot, _ = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            assert shipper.handler in logging.getLogger("iccm_network").handlers
        assert shipper.handler not in logging.getLogger("iccm_network").handlers


async def test_a_failing_tool_call_is_shipped_with_its_correlation_id() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "godot"):
            reply = await call(server.url, "boom")
            incident = reply["result"]["_meta"]
            incident_id = next(iter(incident.values()))["correlationId"]
            await eventually(lambda: any(e.get("trace_id") == incident_id for e in received))
    error = next(e for e in received if e.get("trace_id") == incident_id)
    assert error["level"] == "ERROR"
    assert error["data"]["tool"] == "boom"
    assert error["data"]["exception"] == "RuntimeError: disk on fire"


async def test_successful_calls_are_not_shipped_but_connection_events_are() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "godot") as shipper:
            assert shipper is not None
            await call(server.url, "fine")
            await eventually(lambda: any("connection closed" in e["message"] for e in received))
    messages = [entry["message"] for entry in received]
    assert not any(message.startswith("call ") for message in messages)
    assert any("connection open" in message for message in messages)


@pytest.mark.parametrize("ignore_tools", [("logger_log",), ()])
async def test_a_godot_shipping_to_itself_receives_only_the_entries_it_queued(
    ignore_tools: tuple[str, ...],
) -> None:
    # With no tool ignored by name, the shipper's connection mark alone must
    # keep its own traffic out, even from a logger_log that logs every entry.
    godot, received = stand_in_godot(log_each=True)
    async with godot.serving(host="127.0.0.1", port=0) as server:
        handler = GodotHandler("godot", ignore_tools=ignore_tools)
        shipper = GodotShipper(server.url, handler, **QUICK)
        logging.getLogger("iccm_network").addHandler(handler)
        shipper.start()
        try:
            await call(server.url, "fine")
            await call(server.url, "boom")
            # The server logs a closed connection just after the client sees it close.
            await eventually(
                lambda: (
                    sum("connection closed" in entry["message"] for entry in received) == 2
                    and len(received) == handler.queued
                    and not len(handler)
                )
            )
            settled = len(received)
            await asyncio.sleep(0.3)  # a feedback loop would keep adding entries
            assert len(received) == settled == handler.queued == shipper.delivered
        finally:
            logging.getLogger("iccm_network").removeHandler(handler)
            await shipper.aclose()
    messages = [entry["message"] for entry in received]
    assert sum("connection open" in m for m in messages) == 2  # the two client connections
    assert sum("connection closed" in m for m in messages) == 2
    assert not any("logger_log" in json.dumps(entry) for entry in received)
    assert not any(entry["data"].get("log_shipper") for entry in received)
    assert any(entry["data"].get("tool") == "boom" for entry in received)


async def test_rejected_entries_are_counted_and_reported_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    godot, received = stand_in_godot(reject=True)
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            for number in range(3):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.rejected == 3)
    assert len(received) == 3
    assert shipper.delivered == 0
    assert "Godot rejected 3 log entries; the last said: the log store is full" in caplog.text


async def test_a_godot_without_logger_log_rejects_entries_without_harm() -> None:
    elsewhere = App("not-godot")
    elsewhere.add_tool(lambda: None, name="other")
    async with elsewhere.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            log.error("nobody stores this")
            await eventually(lambda: shipper.rejected == 1)
            assert shipper.connected


async def test_the_shipper_reconnects_when_godot_comes_back() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        port = server.port
        async with shipping_logs(server.url, "horace", **QUICK) as shipper:
            assert shipper is not None
            log.warning("before")
            await eventually(lambda: len(received) == 1)
            await server.shutdown(grace=0)
            log.warning("while away")
            await eventually(lambda: not shipper.connected)
            async with godot.serving(host="127.0.0.1", port=port):
                await eventually(lambda: any(e["message"] == "while away" for e in received))
                log.warning("after")
                await eventually(lambda: any(e["message"] == "after" for e in received))
    assert shipper.connections == 2


async def test_entries_queued_together_reach_an_iccm_network_godot_in_order() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            for number in range(10):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.delivered == 10)
    assert [entry["message"] for entry in received] == [f"entry {n}" for n in range(10)]
    assert shipper.lost == shipper.rejected == 0


async def test_entries_queued_together_go_as_one_batch_frame() -> None:
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace") as shipper:
            assert shipper is not None
            for number in range(10):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.delivered == 10)
    batches = [item for item in received if isinstance(item, list)]
    assert len(batches) == 1
    assert len(batches[0]) == 10
    assert shipped(received) == [f"entry {n}" for n in range(10)]


async def test_entries_gather_for_the_linger_and_closing_cuts_it_short() -> None:
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=60) as shipper:
            assert shipper is not None
            for number in range(5):
                log.warning("entry %d", number)
                await asyncio.sleep(0.01)  # logged apart, still one frame
            assert shipper.delivered == 0
        assert shipper.delivered == 5  # flushed at once on closing, not after 60 s
    (batch,) = [item for item in received if isinstance(item, list)]
    assert shipped([batch]) == shipped(received) == [f"entry {n}" for n in range(5)]


async def test_a_full_window_ends_the_linger_at_once() -> None:
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=60, window=8) as shipper:
            assert shipper is not None
            log.warning("entry 0")
            await eventually(lambda: shipper.connected)
            await asyncio.sleep(0.05)  # lingering now, on one entry
            for number in range(1, 8):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.delivered == 8)  # not after 60 s
    (batch,) = [item for item in received if isinstance(item, list)]
    assert shipped([batch]) == [f"entry {n}" for n in range(8)]


async def test_godot_closing_the_connection_ends_the_linger_at_once() -> None:
    connections = 0

    async def handle(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        async for frame in connection:
            message = json.loads(frame)
            if isinstance(message, dict) and message.get("method") == "initialize":
                result = {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "godot", "version": "0"},
                }
                await connection.send(
                    json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
                )
            elif connections == 1:  # the first connection goes away while the shipper lingers
                await asyncio.sleep(0.05)
                await connection.close()

    async with serve(handle, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with shipping_logs(url, "horace", linger=60, **QUICK) as shipper:
            assert shipper is not None
            log.warning("entry")
            await eventually(lambda: shipper.connections == 2)  # not after 60 s
            assert shipper.lost == 0 and len(shipper.handler) == 1  # kept for the next one


async def test_without_linger_entries_logged_apart_go_in_frames_of_their_own() -> None:
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=0) as shipper:
            assert shipper is not None
            for number in range(3):
                log.warning("entry %d", number)
                async with async_timeout(WAIT):  # delivered before the next is logged
                    while shipper.delivered <= number:
                        await asyncio.sleep(0.01)
    assert not any(isinstance(item, list) for item in received)
    assert shipped(received) == ["entry 0", "entry 1", "entry 2"]


async def test_a_window_of_large_entries_is_cut_to_fit_a_1_mib_message_limit() -> None:
    # The raw Godot has websockets' default 1 MiB limit; 256 entries of 4 KiB
    # in one frame would exceed it and close the connection.
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=60) as shipper:
            assert shipper is not None
            for number in range(300):
                log.warning("%d %s", number, "x" * 5000)  # clipped to 4096 characters
        assert shipper.delivered == 300
        assert shipper.connections == 1 and shipper.lost == 0
    batches = [item for item in received if isinstance(item, list)]
    assert len(batches) > 1
    assert all(len(json.dumps(batch)) < 1024 * 1024 for batch in batches)
    assert [message.split()[0] for message in shipped(received)] == [str(n) for n in range(300)]


async def test_a_large_batch_goes_as_the_fragments_of_one_message() -> None:
    fragments: list[int] = []
    answered: list[int] = []

    async def handle(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                pieces = []
                async for piece in connection.recv_streaming():
                    assert isinstance(piece, str)
                    pieces.append(piece)
                fragments.append(len(pieces))
                assert all(len(piece) <= 8 * 1024 for piece in pieces)
                message = json.loads("".join(pieces))
                requests = message if isinstance(message, list) else [message]
                replies = [
                    {"jsonrpc": "2.0", "id": r["id"], "result": {"content": []}}
                    for r in requests
                    if "id" in r
                ]
                if replies and requests[0]["method"] == "initialize":
                    replies[0]["result"] = {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "godot", "version": "0"},
                    }
                if replies:
                    answered.append(len(replies))
                    await connection.send(json.dumps(replies if len(requests) > 1 else replies[0]))

    async with serve(handle, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with shipping_logs(url, "horace", linger=60) as shipper:
            assert shipper is not None
            for number in range(100):
                log.warning("%d %s", number, "y" * 1000)
        assert shipper.delivered == 100
    assert answered[-1] == 100  # one batch, answered as one
    assert fragments[-1] > 10  # about 110 KB in pieces of at most 8 KiB


async def test_a_window_is_built_in_short_stretches() -> None:
    # Between two stretches of the shipper's work, other tasks (requests) run:
    # a task that yields in a loop sees the queue drained step by step.
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=0, window=256) as shipper:
            assert shipper is not None
            for number in range(256):
                log.warning("entry %d", number)
            seen = []
            while len(shipper.handler):
                seen.append(len(shipper.handler))
                await asyncio.sleep(0)
            await eventually(lambda: shipper.delivered == 256)
    assert any(0 < queued < 256 for queued in seen), seen
    assert [len(item) for item in received if isinstance(item, list)] == [256]


async def test_replies_in_hand_are_all_counted_when_a_flush_runs_out_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Replies are counted a stretch at a time; a stretch is one reply here,
    # so closing with no time to flush lands in the middle of the counting.
    monkeypatch.setattr(godot_shipper, "_STRETCH", 0.0)
    async with raw_godot(batches=True) as (url, received):
        async with shipping_logs(url, "horace", linger=0, window=256) as shipper:
            assert shipper is not None
            for number in range(256):
                log.warning("entry %d", number)
            async with async_timeout(10):
                while shipper.delivered == 0:
                    await asyncio.sleep(0)
            counted_before_closing = shipper.delivered
            await shipper.aclose(flush_timeout=0)
            assert 0 < counted_before_closing < 256
            assert (shipper.delivered, shipper.lost) == (256, 0)
    assert len(shipped(received)) == 256


async def test_an_entry_that_reached_godot_is_counted_wherever_a_flush_runs_out() -> None:
    # Close with no time to flush after 0, 1, 2, ... turns of the event loop,
    # so that the cancellation lands on every await of the shipping in turn.
    async with raw_godot(batches=True) as (url, received):
        finished_in_time = 0
        turns = 0
        while finished_in_time < 5:
            before = len(shipped(received))
            async with shipping_logs(url, "horace", linger=0) as shipper:
                assert shipper is not None
                log.warning("entry after %d turns", turns)
                for _ in range(turns):
                    await asyncio.sleep(0)
                await shipper.aclose(flush_timeout=0)
            await asyncio.sleep(0.01)  # Godot reads what reached it
            reached = len(shipped(received)) - before
            assert shipper.delivered <= reached <= shipper.delivered + shipper.lost, turns
            finished_in_time += shipper.delivered
            turns += 1


async def test_replies_to_a_batch_are_decoded_in_short_stretches() -> None:
    replies = json.dumps([{"jsonrpc": "2.0", "id": n, "result": {}} for n in range(1000)])
    decoding = asyncio.create_task(_decode(replies))
    turns = 0
    while not decoding.done():
        turns += 1
        await asyncio.sleep(0)
    assert decoding.result() == json.loads(replies)
    assert turns > 10


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=30,
)


def outcome(decode: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "value", decode()
    except ValueError:
        return "error", None


@given(
    value=json_values,
    indent=st.sampled_from([None, 0, 2, "\t"]),
    pad=st.sampled_from(["", " ", "\n", " \r\n\t"]),
)
def test_decoding_in_slices_reads_any_json_text_as_json_loads_does(
    value: Any, indent: Any, pad: str
) -> None:
    text = pad + json.dumps(value, indent=indent) + pad
    assert asyncio.run(_decode(text)) == json.loads(text)
    assert asyncio.run(_decode(text.encode())) == json.loads(text)


@given(
    items=st.lists(json_values, max_size=8),
    position=st.integers(min_value=0),
    change=st.sampled_from(["", ",", "]", "[", " ", "}", "x", '"']),
    remove=st.booleans(),
)
def test_decoding_in_slices_refuses_what_json_loads_refuses(
    items: list[Any], position: int, change: str, remove: bool
) -> None:
    text = json.dumps(items)
    at = position % (len(text) + 1)
    damaged = text[:at] + change + text[at + remove :]
    assert outcome(lambda: asyncio.run(_decode(damaged))) == outcome(lambda: json.loads(damaged))


async def test_a_godot_that_refuses_batches_gets_the_entries_one_by_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with raw_godot(batches=False) as (url, received):
        async with shipping_logs(url, "horace") as shipper:
            assert shipper is not None
            for number in range(10):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.delivered == 10)
            for number in range(5):
                log.warning("more %d", number)
            await eventually(lambda: shipper.delivered == 15)
            assert shipper.connections == 1
    # The refused batch was sent again one entry at a time; no batch after it.
    batches = [index for index, item in enumerate(received) if isinstance(item, list)]
    assert len(batches) == 1
    after = received[batches[0] + 1 :]
    assert shipped(after) == [f"entry {n}" for n in range(10)] + [f"more {n}" for n in range(5)]
    assert shipper.lost == shipper.rejected == 0
    assert "does not take batches" in caplog.text


async def test_a_connection_lost_on_its_first_batch_makes_the_next_one_send_singles() -> None:
    async with raw_godot(batches=False, close_on_batch=True) as (url, received):
        async with shipping_logs(url, "horace", **QUICK) as shipper:
            assert shipper is not None
            for number in range(10):
                log.warning("entry %d", number)
            await eventually(lambda: shipper.lost == 10)
            for number in range(3):
                log.warning("more %d", number)
            await eventually(lambda: shipper.delivered == 3)
            assert shipper.connections == 2
    batches = [index for index, item in enumerate(received) if isinstance(item, list)]
    assert len(batches) == 1
    assert shipped(received[batches[0] + 1 :]) == ["more 0", "more 1", "more 2"]


# -- Godot down or hanging: it costs dropped entries, nothing else ----------------


async def test_godot_down_costs_only_dropped_entries_and_they_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"ws://127.0.0.1:{closed_port()}"
    async with shipping_logs(url, "horace", capacity=10, report_interval=0.2, **QUICK) as shipper:
        assert shipper is not None
        for number in range(25):
            log.warning("entry %d", number)
        assert len(shipper.handler) == 10
        await eventually(lambda: "dropped 15 entries" in caplog.text)
        await asyncio.sleep(0.5)  # no new drops: no new report
        for number in range(3):
            log.warning("more %d", number)
        await eventually(lambda: "dropped 3 entries" in caplog.text)
    reports = [r for r in caplog.records if "Godot log shipping dropped" in r.getMessage()]
    assert [r.getMessage().split(" (")[0] for r in reports] == [
        "Godot log shipping dropped 15 entries",
        "Godot log shipping dropped 3 entries",
        "Godot log shipping dropped 10 entries",  # still queued at shutdown
    ]
    warnings = [r for r in caplog.records if "cannot ship logs to Godot" in r.getMessage()]
    assert len(warnings) == 1  # retries after the first failure are quiet


@pytest.mark.parametrize(
    "hanging", [tcp_server_that_never_answers, websocket_server_that_never_answers]
)
async def test_a_godot_that_never_answers_blocks_nothing_and_holds_bounded_memory(
    hanging: Callable[[], Any],
) -> None:
    async with hanging() as url:
        async with shipping_logs(url, "horace", capacity=50, window=4, **QUICK) as shipper:
            assert shipper is not None
            for round_ in range(5):
                for number in range(100):
                    log.warning("entry %d.%d", round_, number)
                assert len(shipper.handler) <= 50
                await asyncio.sleep(0.1)
            # No handshake ever completed, so nothing was taken off the queue.
            assert shipper.delivered == shipper.lost == 0
        assert not shipper.connected


@pytest.mark.parametrize(
    "hanging", [tcp_server_that_never_answers, websocket_server_that_never_answers]
)
async def test_logging_a_thousand_records_into_a_full_queue_returns_at_once(
    hanging: Callable[[], Any],
) -> None:
    # SPEC 7: a log call never waits for Godot. With the queue already full,
    # each record only replaces the oldest; a handler that waited even 2 ms
    # per record would take 2 s here, where a few milliseconds are normal.
    async with hanging() as url:
        async with shipping_logs(url, "horace", capacity=10, **QUICK) as shipper:
            assert shipper is not None
            for number in range(10):
                log.warning("filler %d", number)
            assert len(shipper.handler) == 10
            started = time.perf_counter()
            for number in range(1000):
                log.warning("entry %d", number)
            elapsed = time.perf_counter() - started
            print(f"1,000 records into a full queue: {elapsed * 1e3:.1f} ms")
            assert len(shipper.handler) == 10
            assert shipper.handler.take_dropped() == 1000
            assert elapsed < 2.0


async def test_closing_a_shipper_facing_a_hanging_godot_is_bounded() -> None:
    async with websocket_server_that_never_answers() as url:
        handler = GodotHandler("horace")
        shipper = GodotShipper(url, handler, connect_timeout=30, reply_timeout=30)
        shipper.start()
        handler.handle(record())
        await asyncio.sleep(0.1)  # initialize sent, no answer coming
        async with async_timeout(WAIT):
            await shipper.aclose(flush_timeout=0.2)


async def test_logging_from_worker_threads_wakes_the_shipper() -> None:
    godot, received = stand_in_godot()
    async with godot.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(server.url, "horace") as shipper:
            assert shipper is not None
            await asyncio.to_thread(log.warning, "from a thread")
            await eventually(lambda: len(received) == 1)


# -- App.serve wires it up ----------------------------------------------------------


async def test_app_serve_ships_start_and_stop_when_godot_url_is_set() -> None:
    godot, received = stand_in_godot()
    app = App("horace")
    async with godot.serving(host="127.0.0.1", port=0) as server:
        serving = asyncio.create_task(app.serve(host="127.0.0.1", port=0, godot_url=server.url))
        try:
            await eventually(lambda: any("listening on" in e["message"] for e in received))
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
        assert any(e["message"] == "server stopped" for e in received)
    assert {entry["component"] for entry in received} == {"horace"}
    assert not any(isinstance(h, GodotHandler) for h in logging.getLogger("iccm_network").handlers)


async def test_app_serve_ships_nothing_when_logging_is_disabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    godot, received = stand_in_godot()
    app = App("horace")
    async with godot.serving(host="127.0.0.1", port=0) as server:
        caplog.clear()  # forget godot's own startup lines
        serving = asyncio.create_task(
            app.serve(host="127.0.0.1", port=0, godot_url=server.url, logging_enabled=False)
        )
        try:
            await eventually(lambda: "listening on" in caplog.text)
            handlers = logging.getLogger("iccm_network").handlers
            assert not any(isinstance(h, GodotHandler) for h in handlers)
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
    assert received == []
