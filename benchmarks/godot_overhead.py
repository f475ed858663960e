"""What Godot log shipping costs a request: p99 call latency with and without it.

Two workloads: ``quiet`` (successful calls, which are not shipped: the
normal case) and ``noisy`` (the tool logs one line per call, so every call
queues one Godot entry: the worst case). Scenarios, each against a fresh
server process:

- ``none``: no shipping at all (the baseline);
- ``up``: shipping to a stand-in Godot (an iccm-network App, its own process);
- ``down``: ``GODOT_URL`` points at a closed port;
- ``hang-tcp``: Godot accepts the TCP connection and never answers;
- ``hang-ws``: Godot completes the WebSocket handshake and never answers.

The load generator (this process) makes sequential calls on one connection
and records each call's latency. Scenarios are interleaved in rounds (order
rotating) and each ratio is taken within a round, where the machine's load
was about the same; the table shows the median ratio over rounds. Target:
every ratio of p99 within 1.10.

Run from the repository root: ``python benchmarks/godot_overhead.py``
(``--calls``, ``--rounds`` to change the size).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from iccm_network import App, Context
from iccm_network.godot import shipping_logs

__all__ = ["main"]

SCENARIOS: Final = ("none", "up", "down", "hang-tcp", "hang-ws")
WORKLOADS: Final = {"quiet": "quiet", "noisy": "noisy"}
"""Workload name -> the tool each call runs."""
WORKLOAD_TEXT: Final = {
    "quiet": "successful calls only (what Godot gets in normal operation: nothing per call)",
    "noisy": "every call logs one INFO line through ctx.logger (one Godot entry per call)",
}
STARTUP_TIMEOUT: Final = 30.0


# -- child processes ------------------------------------------------------------------


async def _wait_for_stdin_eof() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _role_server(godot_url: str | None) -> None:
    # Records are made in every scenario (INFO enabled) but printed nowhere,
    # so that the only difference between scenarios is the Godot handler.
    logging.basicConfig(level=logging.INFO, handlers=[logging.NullHandler()])
    app = App("bench")

    @app.tool
    async def quiet(n: int) -> int:
        """Answer; only the transport logs (a successful call: nothing shipped).

        Args:
            n: A number to echo.
        """
        return n

    @app.tool
    async def noisy(n: int, ctx: Context) -> int:
        """Log one line that is shipped, and answer.

        Args:
            n: A number to echo.
        """
        ctx.logger.info("handled request %d", n)
        return n

    async with app.serving(host="127.0.0.1", port=0) as server:
        async with shipping_logs(godot_url, "bench", connect_timeout=2, reply_timeout=2) as shipper:
            print(server.port, flush=True)
            await _wait_for_stdin_eof()
            if shipper is not None:
                stats = {
                    "queued": shipper.handler.queued,
                    "delivered": shipper.delivered,
                    "lost": shipper.lost,
                    "dropped": shipper.handler.take_dropped(),
                    "connections": shipper.connections,
                }
                print(json.dumps(stats), flush=True)


async def _role_godot() -> None:
    godot = App("godot")
    received = 0

    @godot.tool
    async def logger_log(
        component: str,
        level: str,
        message: str,
        trace_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Count one entry.

        Args:
            component: The component.
            level: The level.
            message: The message.
            trace_id: The trace id.
            data: Structured detail.
        """
        nonlocal received
        received += 1
        return {"status": "ok"}

    async with godot.serving(host="127.0.0.1", port=0) as server:
        print(server.port, flush=True)
        await _wait_for_stdin_eof()
        print(json.dumps({"received": received}), flush=True)


async def _role_hang_tcp() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await _wait_for_stdin_eof()


async def _role_hang_ws() -> None:
    async def hold(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(hold, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await _wait_for_stdin_eof()


# -- orchestration --------------------------------------------------------------------


@contextmanager
def _child(role: str, *extra: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"{role} did not start: {line!r}")
        yield int(line), process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(input="", timeout=STARTUP_TIMEOUT)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(port: int, tool: str, calls: int, warmup: int) -> list[float]:
    async with connect(f"ws://127.0.0.1:{port}", max_size=None) as client:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b"}}
        await client.send(
            json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        )
        await client.recv()
        latencies = []
        for n in range(warmup + calls):
            request = {
                "jsonrpc": "2.0",
                "id": n + 1,
                "method": "tools/call",
                "params": {"name": tool, "arguments": {"n": n}},
            }
            started = time.perf_counter()
            await client.send(json.dumps(request))
            await client.recv()
            if n >= warmup:
                latencies.append(time.perf_counter() - started)
        return latencies


def _p(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _run_scenario(scenario: str, tool: str, calls: int, warmup: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        godot: subprocess.Popen[str] | None = None
        url: str | None
        if scenario == "none":
            url = None
        elif scenario == "down":
            url = f"ws://127.0.0.1:{_closed_port()}"
        else:
            role = {"up": "godot", "hang-tcp": "hang-tcp", "hang-ws": "hang-ws"}[scenario]
            port, godot = stack.enter_context(_child(role))
            url = f"ws://127.0.0.1:{port}"
        extra = ("--godot-url", url) if url else ()
        port, server = stack.enter_context(_child("server", *extra))
        cpu_before = _cpu_seconds(server.pid)
        latencies = asyncio.run(_measure(port, tool, calls, warmup))
        cpu = _cpu_seconds(server.pid) - cpu_before
        result: dict[str, Any] = {
            "p50": _p(latencies, 0.50),
            "p99": _p(latencies, 0.99),
            "mean": statistics.fmean(latencies),
            "cpu_per_call": cpu / (calls + warmup),
        }
        result["shipper"] = _finish(server)
        if godot is not None:
            result["godot"] = _finish(godot)
        return result


def _report(workload: str, tool: str, calls: int, warmup: int, rounds: int) -> None:
    ratios: dict[str, list[float]] = {s: [] for s in SCENARIOS if s != "none"}
    p99s: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    p50s: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    cpus: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    last: dict[str, dict[str, Any]] = {}
    for round_ in range(rounds):
        order = SCENARIOS[round_ % len(SCENARIOS) :] + SCENARIOS[: round_ % len(SCENARIOS)]
        results = {s: _run_scenario(s, tool, calls, warmup) for s in order}
        for scenario, result in results.items():
            p99s[scenario].append(result["p99"])
            p50s[scenario].append(result["p50"])
            cpus[scenario].append(result["cpu_per_call"])
            last[scenario] = result
            if scenario != "none":
                ratios[scenario].append(result["p99"] / results["none"]["p99"])
        print(
            f"{workload} round {round_ + 1}: "
            + ", ".join(f"{s} p99 {results[s]['p99'] * 1e3:.3f} ms" for s in SCENARIOS),
            file=sys.stderr,
        )

    print(f"\nworkload {workload!r}: {WORKLOAD_TEXT[workload]}")
    print(f"{calls} sequential calls per scenario, {rounds} rounds, medians over rounds")
    print(
        f"{'scenario':<10} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/call':>19}"
        f" {'p99 ratio':>10}  range"
    )
    for scenario in SCENARIOS:
        p50 = statistics.median(p50s[scenario]) * 1e3
        p99 = statistics.median(p99s[scenario]) * 1e3
        cpu = statistics.median(cpus[scenario]) * 1e6
        head = f"{scenario:<10} {p50:>8.3f} {p99:>8.3f} {cpu:>19.0f}"
        if scenario == "none":
            print(f"{head} {'1.00':>10}")
            continue
        values = ratios[scenario]
        print(f"{head} {statistics.median(values):>10.2f}  {min(values):.2f}-{max(values):.2f}")
    print("last round's shipping figures:")
    for scenario in SCENARIOS[1:]:
        figures = {**last[scenario].get("shipper", {}), **last[scenario].get("godot", {})}
        print(f"  {scenario:<10} {json.dumps(figures)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles) and print the figures.

    Args:
        argv: Command-line arguments; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=("server", "godot", "hang-tcp", "hang-ws"))
    parser.add_argument("--godot-url")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    args = parser.parse_args(argv)
    if args.role == "server":
        asyncio.run(_role_server(args.godot_url))
        return 0
    if args.role is not None:
        role = {"godot": _role_godot, "hang-tcp": _role_hang_tcp, "hang-ws": _role_hang_ws}
        asyncio.run(role[args.role]())
        return 0

    for workload, tool in WORKLOADS.items():
        if args.workload in (workload, "both"):
            _report(workload, tool, args.calls, args.warmup, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
