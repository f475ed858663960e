"""What Godot log shipping costs a request: p99 call latency with and without it.

Two workloads: ``quiet`` (successful calls, which are not shipped: the
normal case) and ``noisy`` (the tool logs one line per call, so every call
queues one Godot entry: the worst case). Scenarios:

- ``none``: no shipping at all (the baseline);
- ``control``: no shipping either, a second server: its ratio is this
  machine's noise floor, what a server doing the very same work measures;
- ``up``: shipping to a stand-in Godot (an iccm-network App, its own process)
  that runs at idle CPU priority (``SCHED_IDLE``): it gets the CPU time the
  server and the load generator leave, which is the nearest this machine
  comes to a Godot on a host of its own;
- ``up-shared``: the same Godot at the same priority as the server, on the
  same cores: on a two-core machine its own work on the entries then
  competes with the server and the load generator for CPU;
- ``down``: ``GODOT_URL`` points at a closed port;
- ``hang-tcp``: Godot accepts the TCP connection and never answers;
- ``hang-ws``: Godot completes the WebSocket handshake and never answers.

Each round starts a fresh server process for every scenario (and a Godot
where the scenario has one), all at once. The load generator (this process)
makes sequential calls, one connection per server, in blocks: 20 unrecorded
warm-up calls and 500 recorded ones against one server, a pause long enough
for the entries still gathering to be shipped (their cost counted to that
server), then the next server, the order rotating. Every scenario thus sees
the machine in the same states, and server processes are new each round,
because two servers doing the very same work differ by several percent
(see ``control``). p99 is taken over all of a scenario's calls; the range is
the ratio within each round. Server CPU comes from the scheduler's own
count (``benchmarks.procstat.cpu_seconds``). Target: every ratio of p99 within
1.10.

Run from the repository root: ``python -m benchmarks.godot_overhead``
(``--rounds``, ``--blocks``, ``--block``, ``--workload`` and ``--linger``
change it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.procstat import cpu_seconds
from iccm_network import App, Context
from iccm_network.godot import shipping_logs

__all__ = ["main"]

SCENARIOS: Final = ("none", "control", "up", "up-shared", "down", "hang-tcp", "hang-ws")
WORKLOADS: Final = {"quiet": "quiet", "noisy": "noisy"}
"""Workload name -> the tool each call runs."""
WORKLOAD_TEXT: Final = {
    "quiet": "successful calls only (what Godot gets in normal operation: nothing per call)",
    "noisy": "every call logs one INFO line through ctx.logger (one Godot entry per call)",
}
STARTUP_TIMEOUT: Final = 30.0
PAUSE: Final = 0.15
"""Seconds after each block: longer than the shipper's linger, so a block's
entries are shipped before the next block starts."""
FLUSH_TIMEOUT: Final = 20.0
"""Seconds a server's shipper may spend flushing at the end (the library's
default is 2): the ``up`` scenario's Godot runs at idle priority, and on a
busy machine it can take seconds to answer the last entries. Within
``STARTUP_TIMEOUT``, which bounds waiting for the server to end."""
BLOCK_WARMUP: Final = 20
INITIALIZE: Final = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b"}},
}


# -- child processes ------------------------------------------------------------------


async def _wait_for_stdin_eof() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _role_server(godot_url: str | None, linger: float | None) -> None:
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
        options: dict[str, Any] = {"connect_timeout": 2, "reply_timeout": 2}
        if linger is not None:
            options["linger"] = linger
        async with shipping_logs(
            godot_url, "bench", flush_timeout=FLUSH_TIMEOUT, **options
        ) as shipper:
            print(server.port, flush=True)
            await _wait_for_stdin_eof()
            # Read now: the flush at the end reports drops, and so resets their count.
            dropped = shipper.handler.take_dropped() if shipper is not None else 0
        if shipper is not None:
            # Counted after the flush, so that an entry still on its way at the
            # end is delivered or lost, not missing from both.
            stats = {
                "queued": shipper.handler.queued,
                "delivered": shipper.delivered,
                "lost": shipper.lost,
                "dropped": dropped,
                "connections": shipper.connections,
            }
            print(json.dumps(stats), flush=True)


async def _role_godot(idle: bool) -> None:
    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
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
        cpu = time.process_time()
        print(json.dumps({"received": received, "cpu_s": round(cpu, 3)}), flush=True)


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
        [sys.executable, "-m", "benchmarks.godot_overhead", "--role", role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # The same hash seed everywhere: dict and set layouts, and so their
        # speed, then do not differ from one server process to the next.
        env={**os.environ, "PYTHONHASHSEED": "0"},
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


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Server:
    """One scenario's server process (and its Godot) in one round."""

    scenario: str
    port: int
    process: subprocess.Popen[str]
    godot: subprocess.Popen[str] | None


@dataclass
class _Results:
    """What was measured for one scenario, over all rounds."""

    rounds: list[list[float]] = field(default_factory=list)
    """Each round's call latencies, in seconds."""
    cpu: float = 0.0
    """Server CPU seconds spent on the calls and the pauses after them."""
    calls: int = 0
    """Calls made, warm-up calls included (what ``cpu`` was spent on)."""
    figures: dict[str, Any] = field(default_factory=dict)
    """The last round's shipping figures."""

    def latencies(self) -> list[float]:
        return [latency for round_ in self.rounds for latency in round_]


def _start(stack: contextlib.ExitStack, scenario: str, linger: float | None) -> _Server:
    godot: subprocess.Popen[str] | None = None
    url: str | None = None
    if scenario == "down":
        url = f"ws://127.0.0.1:{_closed_port()}"
    elif scenario not in ("none", "control"):
        role = {"up": "godot-idle", "up-shared": "godot"}.get(scenario, scenario)
        godot_port, godot = stack.enter_context(_child(role))
        url = f"ws://127.0.0.1:{godot_port}"
    extra: list[str] = ["--godot-url", url] if url else []
    if linger is not None:
        extra += ["--linger", str(linger)]
    port, process = stack.enter_context(_child("server", *extra))
    return _Server(scenario, port, process, godot)


async def _calls(client: ClientConnection, tool: str, count: int) -> list[float]:
    latencies = []
    for n in range(count):
        request = {
            "jsonrpc": "2.0",
            "id": n + 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {"n": n}},
        }
        started = time.perf_counter()
        await client.send(json.dumps(request))
        await client.recv()
        latencies.append(time.perf_counter() - started)
    return latencies


async def _round(
    servers: list[_Server],
    results: dict[str, _Results],
    tool: str,
    blocks: int,
    block: int,
    warmup: int,
) -> None:
    """Call every server in turn, a block at a time; add what was measured to ``results``."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for server in servers:
            url = f"ws://127.0.0.1:{server.port}"
            client = await stack.enter_async_context(connect(url, max_size=None))
            await client.send(json.dumps(INITIALIZE))
            await client.recv()
            await _calls(client, tool, warmup)
            clients.append(client)
        measured: list[list[float]] = [[] for _ in servers]
        await asyncio.sleep(PAUSE)
        for number in range(blocks):
            turn = number % len(servers)
            for index in [*range(turn, len(servers)), *range(turn)]:
                server, client = servers[index], clients[index]
                before = cpu_seconds(server.process.pid)
                # The first calls after a pause find cold caches: warm up, unrecorded.
                await _calls(client, tool, BLOCK_WARMUP)
                measured[index] += await _calls(client, tool, block)
                # Entries still gathering are shipped now, before the next block
                # starts, and their cost is counted to this scenario.
                await asyncio.sleep(PAUSE)
                results[server.scenario].cpu += cpu_seconds(server.process.pid) - before
                results[server.scenario].calls += BLOCK_WARMUP + block
        for server, latencies in zip(servers, measured, strict=True):
            results[server.scenario].rounds.append(latencies)


def _p(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _report(
    workload: str,
    tool: str,
    rounds: int,
    blocks: int,
    block: int,
    warmup: int,
    linger: float | None,
) -> None:
    results = {scenario: _Results() for scenario in SCENARIOS}
    for number in range(rounds):
        with contextlib.ExitStack() as stack:
            servers = [_start(stack, scenario, linger) for scenario in SCENARIOS]
            asyncio.run(_round(servers, results, tool, blocks, block, warmup))
            for server in servers:
                figures = _finish(server.process)
                if server.godot is not None:
                    figures.update(_finish(server.godot))
                results[server.scenario].figures = figures
        print(
            f"{workload} round {number + 1}: "
            + ", ".join(
                f"{s} p99 {_p(r.rounds[-1], 0.99) * 1e3:.3f} ms" for s, r in results.items()
            ),
            file=sys.stderr,
        )

    baseline = results["none"]
    calls = rounds * blocks * block
    print(f"\nworkload {workload!r}: {WORKLOAD_TEXT[workload]}")
    print(
        f"{calls} sequential calls per scenario: {rounds} rounds, each with fresh server"
        f" processes and {blocks} blocks of {block} calls per scenario, interleaved."
        " p99 over all rounds; range: the ratio within each round."
    )
    print(
        f"{'scenario':<10} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/call':>19}"
        f" {'p99 ratio':>10}  range"
    )
    for scenario, result in results.items():
        latencies = result.latencies()
        p50, p99 = _p(latencies, 0.5), _p(latencies, 0.99)
        cpu = result.cpu / result.calls * 1e6
        head = f"{scenario:<10} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {cpu:>19.0f}"
        if result is baseline:
            print(f"{head} {'1.00':>10}")
            continue
        ratios = [
            _p(mine, 0.99) / _p(base, 0.99)
            for mine, base in zip(result.rounds, baseline.rounds, strict=True)
        ]
        ratio = p99 / _p(baseline.latencies(), 0.99)
        print(f"{head} {ratio:>10.2f}  {min(ratios):.2f}-{max(ratios):.2f}")
    print("last round's shipping figures (entries, connections, Godot's CPU seconds):")
    for scenario in SCENARIOS[2:]:
        print(f"  {scenario:<10} {json.dumps(results[scenario].figures)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles) and print the figures.

    Args:
        argv: Command-line arguments; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=("server", "godot", "godot-idle", "hang-tcp", "hang-ws"))
    parser.add_argument("--godot-url")
    parser.add_argument(
        "--linger", type=float, help="the shipper's linger in seconds (default: the library's)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of fresh servers")
    parser.add_argument("--blocks", type=int, default=6, help="blocks per scenario and round")
    parser.add_argument("--block", type=int, default=500, help="calls in a row per scenario")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    args = parser.parse_args(argv)
    if args.role == "server":
        asyncio.run(_role_server(args.godot_url, args.linger))
        return 0
    if args.role in ("godot", "godot-idle"):
        asyncio.run(_role_godot(idle=args.role == "godot-idle"))
        return 0
    if args.role is not None:
        role = {"hang-tcp": _role_hang_tcp, "hang-ws": _role_hang_ws}
        asyncio.run(role[args.role]())
        return 0

    for workload, tool in WORKLOADS.items():
        if args.workload in (workload, "both"):
            _report(workload, tool, args.rounds, args.blocks, args.block, args.warmup, args.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
