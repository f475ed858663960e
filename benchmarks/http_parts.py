"""Server CPU of one Streamable HTTP call, without sockets, and h11's share of it.

``python -m benchmarks http-parts`` feeds the bytes of the ``http`` load's
request (``tools/call`` of ``echo``) to an ``HttpConnection`` of a real
server, whose writes go to a list instead of a socket, and times each
request until its reply is written; then it times ``h11`` alone doing what
the connection asks of it for that request (parse it, write a JSON reply,
start the next cycle). Process CPU time, best of several rounds, so that
other jobs on the machine count as little as they can.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, cast

import h11
from websockets.protocol import State

from benchmarks.payloads import TOOL_ARGUMENTS
from benchmarks.servers.iccm_app import build_app
from iccm_network.transport.http import HttpConnection, Transport

__all__ = ["h11_cycle_us", "http_parts", "server_request_us"]

_REPLY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}'


def _request_bytes() -> bytes:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": TOOL_ARGUMENTS["echo"]},
        }
    ).encode()
    client = h11.Connection(h11.CLIENT)
    head = h11.Request(
        method="POST",
        target="/mcp",
        headers=[
            ("Host", "127.0.0.1:8000"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Content-Length", str(len(body))),
        ],
    )
    return (
        (client.send(head) or b"")
        + (client.send(h11.Data(data=body)) or b"")
        + (client.send(h11.EndOfMessage()) or b"")
    )


def _best(rounds: int, count: int, one: Callable[[], None]) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(count):
            one()
        times.append(time.process_time() - started)
    return min(times) / count * 1e6


def h11_cycle_us(rounds: int = 7, count: int = 2000) -> dict[str, float]:
    """Microseconds of CPU ``h11`` takes per request, in parts.

    Args:
        rounds: Timed rounds; the best counts.
        count: Requests per round.
    """
    data = _request_bytes()
    server = h11.Connection(h11.SERVER)

    def cycle() -> None:
        server.receive_data(data)
        while type(server.next_event()) is not h11.EndOfMessage:
            pass
        fields = [("Content-Type", "application/json"), ("Content-Length", str(len(_REPLY)))]
        server.send(h11.Response(status_code=200, headers=fields))
        server.send(h11.Data(data=_REPLY))
        server.send(h11.EndOfMessage())
        server.start_next_cycle()

    def parse() -> None:
        fresh = h11.Connection(h11.SERVER)
        fresh.receive_data(data)
        while type(fresh.next_event()) is not h11.EndOfMessage:
            pass

    _best(1, count // 4, cycle)
    full = _best(rounds, count, cycle)
    parsing = _best(rounds, count, parse)
    return {"h11 whole cycle": full, "h11 parsing (fresh connection)": parsing}


class _Sink:
    """The socket side: keeps what is written, wakes whoever waits for a reply."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reply: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(None)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Connection:
    """The server's connection object, as far as the HTTP side uses it."""

    state = State.OPEN

    def __init__(self) -> None:
        self.sink = _Sink()
        self.transport = cast(Any, self.sink)

    async def drain(self) -> None:
        pass


async def server_request_us(rounds: int = 7, count: int = 1000) -> float:
    """Microseconds of CPU the server spends per request, sockets aside.

    Args:
        rounds: Timed rounds; the best counts.
        count: Requests per round.
    """
    data = _request_bytes()
    app = build_app()
    async with app.serving(host="127.0.0.1", port=0) as server:
        connection = _Connection()
        server.tcp_opened(cast(Any, connection))
        http = HttpConnection(cast(Transport, connection), server, "127.0.0.1:1")
        loop = asyncio.get_running_loop()
        times = []
        try:
            for round_ in range(rounds + 1):
                started = time.process_time()
                for _ in range(count):
                    reply = connection.sink.reply = loop.create_future()
                    http.feed(data)
                    await reply
                if round_:  # the first round warms up
                    times.append(time.process_time() - started)
            if b'"isError":false' not in connection.sink.written[-1]:
                raise RuntimeError(f"unexpected reply: {connection.sink.written[-1]!r}")
        finally:
            http.connection_lost()
            await http.task
    return min(times) / count * 1e6


def http_parts() -> dict[str, float]:
    """Both measurements: the server's per-request CPU, then h11's parts of it."""
    return {
        "server, one request (no sockets)": asyncio.run(server_request_us()),
        **h11_cycle_us(),
    }
