"""Attack a real iccm-network server process as a hostile peer would, and print the cost.

Run ``python -m benchmarks.hostile`` (all attacks, about two minutes) or name
some: ``python -m benchmarks.hostile unread deflate``. Each attack starts a
fresh server subprocess (``python -m benchmarks.hostile serve``), measures
its resident memory growth (peak, sampled every 20 ms) and the echo round
trips of a well-behaved bystander connection meanwhile (p99 and max), and
prints one line of figures.

Attacks: ``unread`` (200 calls of a 1 MB result, replies never read),
``deflate`` (80 deflated pings of 15 MiB of spaces, about 1.2 MiB on the
wire, with ``MCP_COMPRESSION=deflate``), ``progress`` (100,000 progress
reports; then a client that leaves mid-way), ``batch`` (one frame of 200,000
pings: refused by ``max_batch``, and handled in slices when allowed, plain
and deflated), ``handshakes`` (1,100 half-sent handshakes against open-files
limits of 1,024), ``deadpeer`` (keepalive 1 s + 1 s against a peer that
stops answering) and ``cycle`` (a self-referencing result).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks.launcher import ROOT
from benchmarks.procstat import rss_bytes
from iccm_network import App, Context

__all__ = ["main"]

MiB = 1024 * 1024


# -- the server under attack ---------------------------------------------------


async def echo(text: str) -> str:
    """Send the text back.

    Args:
        text: Any text.
    """
    return text


async def big(size: int) -> str:
    """Return ``size`` fresh characters.

    Args:
        size: How many.
    """
    return "x" * size


async def hang() -> str:
    """Wait for ever."""
    await asyncio.Event().wait()
    return "never"


async def chatty(limit: int, ctx: Context) -> int:
    """Report progress ``limit`` times.

    Args:
        limit: Reports to send.
        ctx: The call's context.
    """
    for count in range(limit):
        await ctx.report_progress(count)
    return limit


async def loop() -> list[Any]:
    """Return a list that holds itself."""
    items: list[Any] = []
    items.append(items)
    return items


def _serve(nofile: int | None) -> None:
    if nofile is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    app = App("hostile-bench", version="1.0.0")
    for fn in (echo, big, hang, chatty, loop):
        app.add_tool(fn)
    logging.basicConfig(level=app.settings().log_level, stream=sys.stderr)

    async def run() -> None:
        async with app.serving(host="127.0.0.1", port=0) as server:
            sys.stdout.write(f"PORT {server.port}\n")
            sys.stdout.flush()
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())


@dataclass
class _Server:
    process: asyncio.subprocess.Process
    port: int
    log: Path
    samples: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def rss(self) -> int:
        return rss_bytes(self.process.pid)


@contextlib.asynccontextmanager
async def _server(env: dict[str, str], nofile: int | None = None) -> AsyncIterator[_Server]:
    log = Path(tempfile.mkstemp(prefix="hostile-", suffix=".log")[1])
    command = [sys.executable, "-m", "benchmarks.hostile", "serve"]
    if nofile is not None:
        command += ["--nofile", str(nofile)]
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MCP_LOG_LEVEL": "WARNING",
        "LOGGING_ENABLED": "false",
        **env,
    }
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=environment,
            cwd=str(ROOT),
        )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        server = _Server(process, int(line.split()[1]), log)
        sampling = asyncio.create_task(_sample(server))
        try:
            yield server
        finally:
            sampling.cancel()
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _sample(server: _Server) -> None:
    while True:
        with contextlib.suppress(OSError):
            server.samples.append(server.rss())
        await asyncio.sleep(0.02)


# -- the bystander -------------------------------------------------------------


class _Bystander:
    """A well-behaved client echoing a short text in a loop, timing each round trip."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Bystander:
        ws = await connect(self.url, compression=None)
        self._task = asyncio.create_task(self._run(ws))
        await asyncio.sleep(0.3)
        self.times.clear()  # from here on, the attack
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self, ws: ClientConnection) -> None:
        n = 0
        try:
            while True:
                n += 1
                started = time.perf_counter()
                await ws.send(_call(n, "echo", {"text": "hello"}))
                while json.loads(await ws.recv()).get("id") != n:
                    pass
                self.times.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)
        finally:
            await ws.close()

    def figures(self) -> str:
        if not self.times:
            return "bystander: no round trip finished"
        ordered = sorted(self.times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return f"bystander echo p99 {p99 * 1e3:.1f} ms, max {ordered[-1] * 1e3:.1f} ms"


def _call(request_id: Any, name: str, arguments: dict[str, Any], **params: Any) -> str:
    body = {"name": name, "arguments": arguments, **params}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": body})


def _growth(server: _Server, before: int) -> str:
    peak = max(server.samples, default=before)
    return f"RSS +{(peak - before) / MiB:.1f} MiB (peak)"


async def _healthz(port: int) -> tuple[int, float]:
    started = time.perf_counter()

    def get() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                return int(r.status)
        except OSError as exc:
            return int(getattr(exc, "code", 0) or 0)

    status = await asyncio.to_thread(get)
    return status, time.perf_counter() - started


# -- the attacks ---------------------------------------------------------------


async def unread() -> str:
    """200 calls of a 1 MB result whose replies are never read."""
    async with _server({}) as server:
        before = server.rss()
        async with _Bystander(server.url) as bystander:
            ws = await connect(server.url, max_size=None, compression=None)
            ws.transport.pause_reading()
            for n in range(200):
                await ws.send(_call(n, "big", {"size": 1_000_000}))
            await asyncio.sleep(4.0)
            ws.transport.abort()
        return f"unread: {_growth(server, before)}; {bystander.figures()}"


async def deflate() -> str:
    """80 deflated pings padded with 15 MiB of spaces each, as fast as they go."""
    lines = []
    async with _server({}) as server:
        async with connect(server.url, compression="deflate") as ws:
            offered = ", ".join(e.name for e in ws.protocol.extensions) or "none"
        lines.append(f"default: deflate negotiated: {offered}")
    async with _server({"MCP_COMPRESSION": "deflate"}) as server:
        before = server.rss()
        ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}})
        padded = ping[:-1] + " " * (15 * MiB) + "}"
        squeeze = zlib.compressobj(wbits=-12)
        wire = len(squeeze.compress(padded.encode()) + squeeze.flush()) * 80
        async with _Bystander(server.url) as bystander:
            ws = await connect(server.url, compression="deflate", max_size=None)
            for _ in range(80):
                await ws.send(padded)
            await asyncio.sleep(4.0)
            ws.transport.abort()
        lines.append(
            f"deflate on: 80 pings ({wire / MiB:.2f} MiB deflated): {_growth(server, before)};"
            f" {bystander.figures()}"
        )
        async with connect(server.url, compression="deflate", max_size=None) as ws:
            await ws.send(ping[:-1] + " " * (17 * MiB) + "}")
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
        lines.append(f"deflate on: a 17 MiB bomb closed with {ws.close_code}")
    return "\n".join(lines)


async def progress() -> str:
    """100,000 progress reports; then a client that leaves after 1,000 of them."""
    lines = []
    async with _server({"MCP_LOG_LEVEL": "INFO"}) as server:
        async with _Bystander(server.url) as bystander:
            async with connect(server.url, max_size=None) as ws:
                started = time.perf_counter()
                await ws.send(_call(1, "chatty", {"limit": 100_000}, _meta={"progressToken": 1}))
                while "result" not in json.loads(await ws.recv()):
                    pass
                took = time.perf_counter() - started
        lines.append(f"progress x100,000 in {took:.2f} s: {bystander.figures()}")
        ws = await connect(server.url, max_size=None)
        await ws.send(_call(2, "chatty", {"limit": 10_000_000}, _meta={"progressToken": 2}))
        for _ in range(1000):
            await ws.recv()
        ws.transport.abort()
        status, waited = await _healthz(server.port)
        await asyncio.sleep(1.0)
    log = server.log.read_text(errors="replace")
    outcome = [line for line in log.splitlines() if "tool=chatty id=2" in line]
    lines.append(
        f"progress, client gone after 1,000: /healthz {status} in {waited * 1e3:.0f} ms;"
        f" {outcome[0].split('outcome=')[-1] if outcome else 'call never ended'}"
    )
    return "\n".join(lines)


async def batch() -> str:
    """One frame of 200,000 pings: over max_batch, then allowed, plain and deflated."""
    frame = json.dumps([{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in range(200_000)])
    lines = []
    for label, env, compression in (
        ("default max_batch", {}, None),
        ("max_batch 200000", {"MCP_MAX_BATCH": "200000"}, None),
        (
            "max_batch 200000, deflate",
            {"MCP_MAX_BATCH": "200000", "MCP_COMPRESSION": "deflate"},
            "deflate",
        ),
    ):
        async with _server(env) as server:
            async with _Bystander(server.url) as bystander:
                async with connect(server.url, max_size=None, compression=compression) as ws:
                    started = time.perf_counter()
                    await ws.send(frame)
                    reply = json.loads(await ws.recv())
                    took = time.perf_counter() - started
                    await asyncio.sleep(0.3)
            answer = (
                f"refused ({reply['error']['code']})"
                if isinstance(reply, dict)
                else f"{len(reply)} replies"
            )
            lines.append(
                f"batch of 200,000 pings ({len(frame) / MiB:.1f} MiB), {label}: {answer}"
                f" in {took:.2f} s; {bystander.figures()}"
            )
    return "\n".join(lines)


async def handshakes() -> str:
    """1,100 half-sent handshakes against open-files limits of 1,024 (soft and hard)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    async with _server({}, nofile=1024) as server:
        writers = []
        for _ in range(1100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
                writers.append(writer)
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        try:
            async with connect(server.url, open_timeout=10) as ws:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
                await ws.recv()
            outcome = "connected and pinged"
        except InvalidStatus as exc:
            outcome = f"HTTP {exc.response.status_code}"
        except (OSError, TimeoutError) as exc:
            outcome = f"failed: {exc!r}"
        took = time.perf_counter() - started
        status, waited = await _healthz(server.port)
        for writer in writers:
            writer.close()
    log = server.log.read_text(errors="replace")
    tracebacks = log.count("Traceback")
    return (
        f"1,100 half-sent handshakes, nofile 1024/1024: a client {outcome} in {took:.2f} s;"
        f" /healthz {status} in {waited:.2f} s; server log {len(log) / 1024:.1f} KiB,"
        f" {tracebacks} tracebacks"
    )


async def deadpeer() -> str:
    """A peer that stops answering keepalive pings (interval 1 s, timeout 1 s)."""
    env = {"MCP_PING_INTERVAL": "1", "MCP_PING_TIMEOUT": "1", "MCP_LOG_LEVEL": "INFO"}
    async with _server(env) as server:
        ws = await connect(server.url, ping_interval=None)
        await ws.send(_call(1, "hang", {}))
        await asyncio.sleep(0.2)
        ws.transport.pause_reading()
        started = time.perf_counter()
        freed = None
        while time.perf_counter() - started < 15:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz") as r:
                if json.loads(r.read())["connections"] == 0:
                    freed = time.perf_counter() - started
                    break
            await asyncio.sleep(0.05)
        ws.transport.abort()
    log = server.log.read_text(errors="replace")
    closed = [line for line in log.splitlines() if "connection closed" in line]
    code = closed[0].split("code=")[1].split()[0] if closed else "?"
    when = f"{freed:.2f} s" if freed is not None else "not within 15 s"
    return f"dead peer: connection and calls freed after {when}; close logged with code={code}"


async def cycle() -> str:
    """A tool returning a list that holds itself."""
    async with _server({"MCP_LOG_LEVEL": "INFO"}) as server:
        before = len(server.log.read_text(errors="replace").splitlines())
        async with connect(server.url) as ws:
            await ws.send(_call(1, "loop", {}))
            await ws.recv()
        await asyncio.sleep(0.3)
        lines = server.log.read_text(errors="replace").splitlines()[before:]
    return f"self-referencing result: {len(lines)} log lines for the call"


ATTACKS: dict[str, Callable[[], Coroutine[Any, Any, str]]] = {
    "unread": unread,
    "deflate": deflate,
    "progress": progress,
    "batch": batch,
    "handshakes": handshakes,
    "deadpeer": deadpeer,
    "cycle": cycle,
}


def main(argv: list[str] | None = None) -> None:
    """Run the attacks named on the command line (all by default) and print their figures.

    Args:
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__)
    parser.add_argument("attacks", nargs="*", help=f"any of: {', '.join(ATTACKS)}")
    parser.add_argument("--nofile", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.attacks) - {*ATTACKS, "serve"}
    if unknown:
        parser.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    if args.attacks == ["serve"]:
        _serve(args.nofile)
        return
    for name in args.attacks or list(ATTACKS):
        print(asyncio.run(ATTACKS[name]()), flush=True)


if __name__ == "__main__":
    main()
