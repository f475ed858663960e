"""Peers that misbehave on purpose, over real sockets: each crosses one limit.

Every limit of the README's "What the server promises against hostile peers"
is crossed here with a small setting, so the tests stay fast; the figures at
the issue's scale (RSS, other clients' stalls) come from
``benchmarks/hostile.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
import zlib
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from iccm_network import App, Context, ToolError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.transport.websocket import Server

MiB = 1024 * 1024
TIMEOUT = 20.0
"""Seconds any one test may take; each needs a few at most."""

app = App("hostile", version="1.0.0")

runs: list[str] = []
"""Tags of the calls whose tool ran."""
progress_state: dict[str, Any] = {}
"""What the progress tools saw."""
probe_tasks: list[int] = []
"""How many tasks existed when each ``probe`` call ran."""


@app.tool
async def big(tag: str, size: int) -> str:
    """Return ``size`` fresh characters.

    Args:
        tag: Recorded when the call runs.
        size: Characters to return.
    """
    runs.append(tag)
    return tag[:1] * size


@app.tool
async def noise(size: int) -> str:
    """Return ``size`` hex digits that do not compress much.

    Args:
        size: Digits to return.
    """
    return os.urandom(size // 2).hex()


@app.tool
async def hang() -> str:
    """Wait until cancelled."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        runs.append("hang:cancelled")
        raise
    return "never"


@app.tool
async def returns(kind: str) -> Any:
    """Return (not raise) an exception object.

    Args:
        kind: ``cancelled``, ``runtime`` or ``tool``.
    """
    if kind == "cancelled":
        return asyncio.CancelledError()
    if kind == "runtime":
        return RuntimeError("a value, not a failure")
    return ToolError("also a value")


@dataclasses.dataclass
class Node:
    """A record that can point at itself."""

    name: str
    next: Any = None


@app.tool
async def loop(kind: str) -> Any:
    """Return a value that refers to itself.

    Args:
        kind: ``list`` or ``record``.
    """
    if kind == "list":
        items: list[Any] = []
        items.append(items)
        return items
    node = Node("a")
    node.next = node
    return node


@app.tool
async def chatty(limit: int, ctx: Context) -> int:
    """Report progress up to ``limit`` times, or until told to stop.

    Args:
        limit: The most reports to send.
        ctx: The call's context.
    """
    count = 0
    try:
        while count < limit and not progress_state.get("stop"):
            count += 1
            progress_state["count"] = count
            await ctx.report_progress(count)
    except asyncio.CancelledError:
        progress_state["cancelled_at"] = count
        raise
    progress_state["finished_at"] = count
    return count


@app.tool
async def probe() -> int:
    """Record how many tasks exist while this call runs."""
    probe_tasks.append(len(asyncio.all_tasks()))
    return len(probe_tasks)


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call(request_id: Any, name: str, arguments: dict[str, Any], **params: Any) -> str:
    return json.dumps(
        request(request_id, "tools/call", {"name": name, "arguments": arguments, **params})
    )


async def reply_to(ws: ClientConnection, request_id: Any) -> dict[str, Any]:
    """Read until the reply to ``request_id`` arrives, and return it."""
    while True:
        message = json.loads(await ws.recv())
        if isinstance(message, dict) and message.get("id") == request_id:
            return message


async def until(predicate: Any, seconds: float = 10.0) -> None:
    """Wait until ``predicate()`` is true, polling; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


def server_side(server: Server) -> Any:
    """The server's one open connection."""
    (connection,) = server._connections
    return connection


# -- 1. replies a client does not read --------------------------------------


async def test_a_client_that_does_not_read_stops_being_read_until_it_catches_up() -> None:
    runs.clear()
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, max_unsent_bytes=64 * 1024) as server,
    ):
        async with connect(server.url, max_size=None) as ws:
            ws.transport.pause_reading()
            for n in range(60):
                await ws.send(call(n, "big", {"tag": f"b{n}", "size": MiB}))
            # Replies fill the kernel's buffers, then the budget: the server
            # stops reading requests, so most calls have not even started.
            await until(lambda: len(runs) > 0)
            await asyncio.sleep(1.0)
            ran_while_stalled = len(runs)
            assert ran_while_stalled < 30, f"{ran_while_stalled} of 60 calls ran unread"
            ws.transport.resume_reading()
            replies = [json.loads(await ws.recv()) for _ in range(60)]
    assert sorted(reply["id"] for reply in replies) == list(range(60))
    assert all(len(reply["result"]["content"][0]["text"]) == MiB for reply in replies)
    print(f"\nunread 1 MiB replies, 64 KiB budget: {ran_while_stalled} of 60 calls ran")


# -- 2. compression -----------------------------------------------------------


async def test_compression_is_off_unless_asked_for() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url, compression="deflate") as ws:
            assert ws.protocol.extensions == []
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, compression="deflate") as server,
    ):
        async with connect(server.url, compression="deflate") as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]


async def test_a_compressed_bomb_over_the_limit_is_closed_with_1009() -> None:
    frame = json.dumps(request(1, "ping", {"pad": " " * (2 * MiB)}))
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, compression="deflate", max_message_size=MiB) as s,
    ):
        ws = await connect(s.url, compression="deflate", max_size=None)
        with pytest.raises(ConnectionClosed):
            await ws.send(frame)
            await ws.recv()
        assert ws.close_code == 1009


async def test_compressed_messages_are_inflated_only_as_fast_as_they_are_handled() -> None:
    size = MiB // 2
    async with (
        async_timeout(TIMEOUT),
        app.serving(
            host="127.0.0.1",
            port=0,
            compression="deflate",
            max_message_size=MiB,
            max_unsent_bytes=16 * 1024,
        ) as server,
    ):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        async with connect(server.url, sock=sock, compression="deflate", max_size=None) as ws:
            # Replies the client does not read hold the server's read loop.
            ws.transport.pause_reading()
            for n in range(-4, 1):
                await ws.send(call(n, "noise", {"size": 4 * MiB}))
            connection = server_side(server)
            # More than the kernel's buffers take: the rest waits in the server.
            await until(lambda: connection.transport.get_write_buffer_size() > 0)
            # Forty messages that inflate to half a MiB each, about 20 MiB
            # in all, sent in well under 100 KiB.
            for n in range(1, 41):
                await ws.send(json.dumps(request(n, "ping", {"pad": " " * size})))
            await asyncio.sleep(1.0)
            queued = sum(len(frame.data) for frame in connection.recv_messages.frames.queue)
            held = len(connection._held)
            # At most the queue's two messages and what one slice inflates to.
            assert queued <= 3 * MiB, f"{queued / MiB:.1f} MiB of inflated messages wait"
            ws.transport.resume_reading()
            replies = [json.loads(await ws.recv()) for _ in range(45)]
    assert sorted(reply["id"] for reply in replies) == list(range(-4, 41))
    print(f"\n40 deflated 0.5 MiB pings, stalled reader: {queued} B inflated, {held} B held")


# -- 3. a returned exception object is a value ------------------------------


@pytest.mark.parametrize("kind", ["cancelled", "runtime", "tool"])
async def test_an_exception_object_a_tool_returns_is_its_result(kind: str) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(call(1, "returns", {"kind": kind}))
            reply = await asyncio.wait_for(reply_to(ws, 1), 5)
    result = reply["result"]
    assert result["isError"] is False
    expected = {"cancelled": "CancelledError", "runtime": "a value, not a failure"}
    assert expected.get(kind, "also a value") in result["content"][0]["text"]


# -- 4. progress ----------------------------------------------------------------


# The client runs on the server's loop here: a budget far above what the
# test sends keeps backpressure from lending the tool the yields it must make.
ROOMY = {"max_unsent_bytes": 256 * MiB}


async def test_a_tool_reporting_progress_in_a_loop_lets_other_clients_in() -> None:
    progress_state.clear()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0, **ROOMY) as server:
        async with connect(server.url) as busy, connect(server.url) as bystander:
            await busy.send(call(1, "chatty", {"limit": 10_000_000}, _meta={"progressToken": "t"}))

            async def drain() -> dict[str, Any]:
                return await reply_to(busy, 1)

            reading = asyncio.create_task(drain())
            await until(lambda: progress_state.get("count", 0) > 0)
            await bystander.send(json.dumps(request(2, "ping")))
            assert (await reply_to(bystander, 2))["result"] == {}
            answered_at = progress_state["count"]
            progress_state["stop"] = True
            reply = await reading
    assert reply["result"]["isError"] is False
    assert answered_at < 10_000, f"a ping waited for {answered_at} progress reports"
    print(f"\nbystander answered after {answered_at} progress reports")


async def test_a_tool_reporting_progress_is_cancelled_when_its_client_leaves() -> None:
    progress_state.clear()
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0, **ROOMY) as server:
        ws = await connect(server.url)
        await ws.send(call(1, "chatty", {"limit": 10_000_000}, _meta={"progressToken": "t"}))
        await until(lambda: progress_state.get("count", 0) > 0)
        ws.transport.abort()  # the client vanishes
        await until(lambda: "cancelled_at" in progress_state)
        await until(lambda: server.connections == 0)
    assert "finished_at" not in progress_state
    assert progress_state["cancelled_at"] < 10_000
    print(f"\ncancelled after {progress_state['cancelled_at']} reports")


# -- 5. batches -----------------------------------------------------------------


async def test_a_batch_over_max_batch_is_refused_whole_with_one_error() -> None:
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, max_batch=10) as server,
    ):
        async with connect(server.url) as ws:
            await ws.send(json.dumps([request(n, "ping") for n in range(11)]))
            refused = json.loads(await ws.recv())
            await ws.send(json.dumps([request(n, "ping") for n in range(10)]))
            accepted = json.loads(await ws.recv())
    assert refused["id"] is None
    assert refused["error"]["code"] == -32600
    assert "max_batch" in refused["error"]["message"]
    assert "10" in refused["error"]["message"]
    assert sorted(reply["id"] for reply in accepted) == list(range(10))


async def test_subscriptions_beyond_max_subscriptions_are_refused() -> None:
    notes = App("notes")

    @notes.resource("note://{name}")
    def note(name: str) -> str:
        """A note."""
        return name

    modern = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    async with (
        async_timeout(TIMEOUT),
        notes.serving(host="127.0.0.1", port=0, max_subscriptions=3) as server,
    ):
        async with connect(server.url) as ws:
            await ws.send(json.dumps(request(1, "initialize", {"protocolVersion": "2025-11-25"})))
            await ws.recv()
            replies = []
            for n, name in enumerate(["a", "b", "c", "d"], start=2):
                await ws.send(
                    json.dumps(request(n, "resources/subscribe", {"uri": f"note://{name}"}))
                )
                replies.append(json.loads(await ws.recv()))
        async with connect(server.url) as ws:
            # A 2026-07-28 listen stream takes one, and one per URI it names.
            uris = ["note://a", "note://b", "note://c"]
            listen = {"_meta": modern, "notifications": {"resourceSubscriptions": uris}}
            await ws.send(json.dumps(request(9, "subscriptions/listen", listen)))
            too_many = json.loads(await ws.recv())
    assert [reply.get("result") for reply in replies[:3]] == [{}, {}, {}]
    refused = replies[3]["error"]
    assert (refused["code"], refused["data"]) == (-32000, {"maxSubscriptions": 3})
    assert "max_subscriptions" in refused["message"]
    assert (too_many["id"], too_many["error"]["code"]) == (9, -32000)


async def test_a_batch_is_handled_in_slices_that_let_its_calls_run() -> None:
    probe_tasks.clear()
    batch = [request(n, "tools/call", {"name": "probe", "arguments": {}}) for n in range(1000)]
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, max_batch=1000, max_in_flight=1000) as server,
    ):
        async with connect(server.url, max_size=None) as ws:
            await ws.send(json.dumps(batch))
            replies = json.loads(await ws.recv())
    assert len(replies) == 1000
    # Whole, the batch would start its 1,000 calls before the first ran.
    assert max(probe_tasks) < 300, f"a call ran beside {max(probe_tasks)} tasks"
    print(f"\ncalls of a 1,000-call batch ran beside at most {max(probe_tasks)} tasks")


# -- 6. unfinished handshakes and open files --------------------------------


async def test_the_oldest_unfinished_handshakes_are_dropped_beyond_max_handshakes() -> None:
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, max_handshakes=5) as server,
    ):
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        await until(lambda: len(server._handshaking) == 5)
        newer = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        for reader, _ in idle:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        async with connect(server.url) as ws:
            await ws.send(json.dumps(request(1, "ping")))
            assert (await reply_to(ws, 1))["result"] == {}
        for _, writer in idle + newer:
            writer.close()


async def test_failed_accepts_are_one_log_line_a_second_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0):
        loop = asyncio.get_running_loop()
        for _ in range(3):
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                }
            )
    lines = [r for r in caplog.records if "Too many open files" in r.getMessage()]
    assert len(lines) == 1  # three failures in a row, one line
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in lines)


def test_startup_raises_the_open_files_limit_and_warns_when_it_stays_short() -> None:
    script = textwrap.dedent(
        """
        import asyncio, logging, resource
        logging.basicConfig(level=logging.WARNING)
        from iccm_network import App
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        async def main() -> None:
            async with App("fd").serving(host="127.0.0.1", port=0, max_connections=300,
                                         max_handshakes=100):
                print("raised", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
            async with App("fd").serving(host="127.0.0.1", port=0, max_connections=300,
                                         max_handshakes=100):
                pass
        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOGGING_ENABLED": "false"},
    )
    assert done.returncode == 0, done.stderr
    assert "raised 464" in done.stdout
    assert done.stderr.count("open-files limit is 256") == 1


# -- 7. dead peers and closing ----------------------------------------------


async def test_a_dead_peer_is_dropped_with_its_calls_as_soon_as_keepalive_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs.clear()
    caplog.set_level(logging.INFO, logger="iccm_network.server")
    async with (
        async_timeout(TIMEOUT),
        app.serving(
            host="127.0.0.1", port=0, ping_interval=0.5, ping_timeout=0.5, close_timeout=10.0
        ) as server,
    ):
        async with connect(server.url, ping_interval=None) as ws:
            await ws.send(call(1, "hang", {}))
            await until(lambda: server.connections == 1)
            await asyncio.sleep(0.2)
            ws.transport.pause_reading()  # no more pongs, as from a dead host
            started = time.monotonic()
            await until(lambda: server.connections == 0, seconds=8.0)
            freed_after = time.monotonic() - started
            assert "hang:cancelled" in runs
            ws.transport.abort()
    assert freed_after < 5.0, f"freed after {freed_after:.1f} s"
    (closed,) = [r for r in caplog.records if r.getMessage().startswith("connection closed")]
    assert closed.close_code == 1011  # type: ignore[attr-defined]
    print(f"\ndead peer freed {freed_after:.2f} s after it stopped answering")


async def test_a_peer_that_never_answers_the_close_is_dropped_after_close_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network.server")
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, close_timeout=0.5) as server,
    ):
        async with connect(server.url) as ws:
            ws.transport.pause_reading()
            started = time.monotonic()
            await ws.send(b"binary frames are refused with 1003")
            await until(lambda: server.connections == 0, seconds=8.0)
            freed_after = time.monotonic() - started
            ws.transport.abort()
    assert freed_after < 5.0, f"freed after {freed_after:.1f} s"
    (closed,) = [r for r in caplog.records if r.getMessage().startswith("connection closed")]
    assert closed.close_code == 1003  # type: ignore[attr-defined]


# -- 8. smaller ones ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "record"])
async def test_a_result_that_refers_to_itself_logs_one_line(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(call(1, "loop", {"kind": kind}))
            reply = await reply_to(ws, 1)
    assert reply["result"]["isError"] is True
    (line,) = [r for r in caplog.records if "cannot be sent as JSON" in r.getMessage()]
    assert line.exc_info is None
    assert len(caplog.text.splitlines()) < 20


async def test_healthz_applies_the_host_allowlist() -> None:
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, allowed_hosts=("good.example",)) as server,
    ):
        statuses = []
        for host in ("evil.example", "good.example"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            statuses.append((await reader.readline()).split()[1])
            writer.close()
    assert statuses == [b"403", b"200"]


def test_zlib_inflates_a_page_of_spaces_about_a_thousand_times() -> None:
    # The slice size of compressed input rests on this ratio.
    deflate = zlib.compressobj(wbits=-15)
    page = deflate.compress(b" " * MiB) + deflate.flush()
    assert MiB / len(page) < 1100


async def test_the_kernel_queues_a_burst_of_connections_beyond_one_accept_batch() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        # Blocking connects from the loop's own thread: nothing is accepted
        # meanwhile, so each waits in the kernel's queue, which must hold
        # more than the 64 connections asyncio accepts at a time.
        burst = [
            socket.create_connection(("127.0.0.1", server.port), timeout=3) for _ in range(200)
        ]
        for sock in burst:
            sock.close()
        async with connect(server.url) as ws:
            await ws.send(json.dumps(request(1, "ping")))
            assert (await reply_to(ws, 1))["result"] == {}
