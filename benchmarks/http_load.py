"""Streamable HTTP load: iccm-network against the official SDK's own HTTP server.

``python -m benchmarks http`` starts, in turn and for several rounds, an
iccm-network App (Streamable HTTP on its WebSocket port) and the SDK's
``MCPServer`` on uvicorn in its stateless JSON and SSE modes, all serving the
same ``echo`` tool, and keeps ``connections`` keep-alive HTTP/1.1 connections
POSTing ``tools/call`` one request at a time each. The figure that matters is
server CPU per call (from ``/proc``), which does not depend on how fast this
load generator is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any, Final, TextIO

import h11

from benchmarks.launcher import SERVERS, ServerSpec, launch
from benchmarks.payloads import TOOL_ARGUMENTS
from benchmarks.procstat import cpu_seconds

__all__ = [
    "HTTP_SERVERS",
    "HttpResult",
    "compare_http",
    "on_loop",
    "print_http_table",
    "run_http_load",
]

HTTP_SERVERS: Final = {
    "iccm": SERVERS["iccm"],
    "sdk-json": ServerSpec("sdk-json", "benchmarks.servers.sdk_http", args=("--mode", "json")),
    "sdk-sse": ServerSpec("sdk-sse", "benchmarks.servers.sdk_http", args=("--mode", "sse")),
}
"""The servers compared: iccm-network and the SDK's two stateless reply modes."""


def on_loop(spec: ServerSpec, loop: str) -> ServerSpec:
    """The same server on ``asyncio``'s own loop or on ``uvloop``.

    Args:
        spec: One of ``HTTP_SERVERS``.
        loop: ``asyncio`` or ``uvloop``.
    """
    if spec.module == "benchmarks.servers.sdk_http":
        return dataclasses.replace(spec, args=(*spec.args, "--loop", loop))
    return dataclasses.replace(spec, env={**spec.env, "MCP_EVENT_LOOP": loop})


@dataclass
class HttpResult:
    """What one load run measured.

    Args:
        calls: Calls answered in the window.
        errors: Answers that were not 200.
        seconds: The window's length.
        server_cpu: Server CPU seconds in the window.
        reconnects: Connections the server ended (0 when keep-alive holds).
    """

    calls: int
    errors: int
    seconds: float
    server_cpu: float
    reconnects: int = 0

    def summary(self) -> dict[str, Any]:
        """The figures as a flat dict."""
        return {
            "calls_per_second": self.calls / self.seconds,
            "server_cpu_us_per_call": self.server_cpu / self.calls * 1e6 if self.calls else None,
            "errors": self.errors,
            "reconnects": self.reconnects,
        }


def _request_body(request_id: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": TOOL_ARGUMENTS["echo"]},
        }
    ).encode()


async def _drive(port: int, state: dict[str, Any], window: tuple[float, float]) -> None:
    request_id = 0
    headers = [
        ("Host", f"127.0.0.1:{port}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-11-25"),
    ]
    while time.perf_counter() < window[1]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = h11.Connection(h11.CLIENT)
        try:
            while time.perf_counter() < window[1]:
                request_id += 1
                body = _request_body(request_id)
                writer.write(
                    conn.send(
                        h11.Request(
                            method="POST",
                            target="/mcp",
                            headers=[*headers, ("Content-Length", str(len(body)))],
                        )
                    )
                    + conn.send(h11.Data(data=body))
                    + conn.send(h11.EndOfMessage())
                )
                status = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        break
                now = time.perf_counter()
                if window[0] <= now < window[1]:
                    if status == 200:
                        state["calls"] += 1
                    else:
                        state["errors"] += 1
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    # Keep-alive is the point of the comparison: count any
                    # connection the server ends, and open another.
                    state["reconnects"] += 1
                    break
                conn.start_next_cycle()
        finally:
            writer.close()


async def run_http_load(
    port: int, pid: int, *, connections: int = 16, seconds: float = 2.0, warmup: float = 0.5
) -> HttpResult:
    """Keep ``connections`` keep-alive connections POSTing and measure.

    Args:
        port: The server's port on 127.0.0.1.
        pid: The server's process id.
        connections: Connections, one request in flight each.
        seconds: The measured window.
        warmup: Seconds of load before it.
    """
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)
    state: dict[str, Any] = {"calls": 0, "errors": 0, "reconnects": 0}

    async def watch() -> float:
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        before = cpu_seconds(pid)
        await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
        return cpu_seconds(pid) - before

    watching = asyncio.ensure_future(watch())
    await asyncio.gather(*(_drive(port, state, window) for _ in range(connections)))
    return HttpResult(state["calls"], state["errors"], seconds, await watching, state["reconnects"])


async def compare_http(
    rounds: int = 3,
    seconds: float = 2.0,
    warmup: float = 0.5,
    progress: TextIO | None = None,
    loop: str = "asyncio",
) -> dict[str, list[dict[str, Any]]]:
    """Run the HTTP load against each server in turn, ``rounds`` times.

    Args:
        rounds: How many times to run each server.
        seconds: Measured seconds per run.
        warmup: Seconds of load before measuring.
        progress: Where to print a line per run.
        loop: The event loop every server runs on: ``asyncio`` or ``uvloop``.

    Returns:
        Each server's figures, one dict per round.
    """
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in HTTP_SERVERS}
    names = list(HTTP_SERVERS)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            async with launch(on_loop(HTTP_SERVERS[name], loop)) as server:
                result = await run_http_load(
                    server.port, server.pid, seconds=seconds, warmup=warmup
                )
            summary = result.summary()
            figures[name].append(summary)
            if progress is not None:
                print(f"round {round_ + 1} http {name}: {summary}", file=progress)
    return figures


def print_http_table(figures: dict[str, list[dict[str, Any]]], out: TextIO) -> None:
    """Print medians and the SDK-to-iccm ratio of server CPU per call.

    Args:
        figures: What ``compare_http`` measured.
        out: Where to print.
    """

    def median(name: str, key: str) -> float:
        return float(statistics.median(f[key] for f in figures[name] if f[key] is not None))

    ours = median("iccm", "server_cpu_us_per_call")
    print("| server | calls/s | server CPU us/call | CPU per call vs iccm |", file=out)
    print("|---|---|---|---|", file=out)
    for name in figures:
        cpu = median(name, "server_cpu_us_per_call")
        print(
            f"| {name} | {median(name, 'calls_per_second'):.0f} | {cpu:.1f} | {cpu / ours:.1f}x |",
            file=out,
        )
