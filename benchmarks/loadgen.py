"""The load generator: one asyncio process of ``websockets`` clients.

Four modes, each a coroutine that returns its figures:

- ``run_load``: C connections each keep K ``tools/call`` requests in flight
  for S seconds after a warm-up; optionally one slow call in every N.
- ``run_interleaved``: the same load on several servers in turn, in short
  slices, so that they are measured under the same conditions.
- ``run_idle``: hold N initialized connections and read the server's memory.
- ``run_large``: round trips of one large argument echoed back as a large result.

Server CPU time and memory come from ``/proc/PID`` when the server's pid is
given (a server in another process); without it those figures are ``None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from benchmarks.payloads import PROTOCOL_VERSION, big_text
from benchmarks.procstat import cpu_seconds, rss_bytes
from iccm_network._timeout import timeout as async_timeout

__all__ = [
    "IdleResult",
    "LargeResult",
    "LoadResult",
    "LoadTarget",
    "percentile",
    "run_idle",
    "run_interleaved",
    "run_large",
    "run_load",
]

_CONNECT_TIMEOUT = 30.0
_DRAIN_TIMEOUT = 10.0
_MAX_SIZE = 64 * 1024 * 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank).

    Args:
        values: The sample; need not be sorted.
        fraction: Between 0 and 1.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _request_prefix(tool: str, arguments: dict[str, Any]) -> str:
    # The id goes last so that each frame is this prefix, a number and "}".
    params = json.dumps({"name": tool, "arguments": arguments}, separators=(",", ":"))
    return f'{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":'


async def _initialize(connection: ClientConnection) -> None:
    request = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "iccm-benchmarks", "version": "1.0"},
        },
    }
    await connection.send(json.dumps(request))
    reply = json.loads(await connection.recv())
    if "result" not in reply:
        raise RuntimeError(f"initialize failed: {reply}")
    await connection.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')


@contextlib.asynccontextmanager
async def _connections(
    url: str, count: int, *, compression: str | None, parallel: int = 64
) -> AsyncIterator[list[ClientConnection]]:
    opened: list[ClientConnection] = []
    gate = asyncio.Semaphore(parallel)

    async def open_one() -> None:
        async with gate:
            connection = await connect(
                url,
                subprotocols=None,
                max_size=_MAX_SIZE,
                compression=compression,
                open_timeout=_CONNECT_TIMEOUT,
                ping_interval=None,
            )
            opened.append(connection)
            await _initialize(connection)

    try:
        async with async_timeout(_CONNECT_TIMEOUT):
            await asyncio.gather(*(open_one() for _ in range(count)))
        yield opened
    finally:
        closing = [asyncio.create_task(connection.close()) for connection in opened]
        if closing:
            await asyncio.wait(closing, timeout=_DRAIN_TIMEOUT)


@dataclass
class LoadResult:
    """Figures of one ``run_load``.

    Args:
        calls: Replies received inside the measured window.
        seconds: The window's length.
        errors: Error replies, ``isError`` results, lost replies and dropped
            connections over the whole run, warm-up included.
        latencies: Seconds per call for the fast calls sent inside the window.
        slow_latencies: The same for the slow calls.
        server_cpu: Server CPU seconds used inside the window, if known.
        server_rss: Server resident memory at the end of the window, if known.
    """

    calls: int
    seconds: float
    errors: int
    latencies: list[float] = field(repr=False)
    slow_latencies: list[float] = field(repr=False)
    server_cpu: float | None
    server_rss: int | None

    @property
    def calls_per_second(self) -> float:
        """Throughput inside the window."""
        return self.calls / self.seconds

    @property
    def cpu_us_per_call(self) -> float | None:
        """Server CPU microseconds per call, if known."""
        if self.server_cpu is None or not self.calls:
            return None
        return self.server_cpu / self.calls * 1e6

    def summary(self) -> dict[str, Any]:
        """The figures as a flat JSON-able dict (latencies in milliseconds)."""
        figures: dict[str, Any] = {
            "calls": self.calls,
            "calls_per_second": round(self.calls_per_second, 1),
            "errors": self.errors,
            "p50_ms": percentile(self.latencies, 0.50) * 1e3,
            "p90_ms": percentile(self.latencies, 0.90) * 1e3,
            "p99_ms": percentile(self.latencies, 0.99) * 1e3,
            "max_ms": max(self.latencies, default=float("nan")) * 1e3,
            "server_cpu_us_per_call": self.cpu_us_per_call,
            "server_rss_mib": None if self.server_rss is None else self.server_rss / 2**20,
        }
        if self.slow_latencies:
            figures["slow_calls"] = len(self.slow_latencies)
            figures["slow_p50_ms"] = percentile(self.slow_latencies, 0.5) * 1e3
        return figures


class _Window:
    """The measured interval and what happened in it, shared by every connection.

    Replies that arrive after ``end`` (while the calls in flight drain) count
    only when ``counts_drain`` is set: a slice of ``run_interleaved`` is
    timed up to its last reply, a ``run_load`` window is not.
    """

    def __init__(self, start: float, end: float, *, counts_drain: bool = False) -> None:
        self.start = start
        self.end = end
        self.counts_drain = counts_drain
        self.calls = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.slow_latencies: list[float] = []

    def counts(self, now: float) -> bool:
        """Whether a reply received at ``now`` is measured."""
        return self.start <= now and (now < self.end or self.counts_drain)


@dataclass
class _Caller:
    """One connection's stream of calls.

    It outlives a slice of ``run_interleaved``, so that request ids and the
    rhythm of slow calls continue from one slice to the next.

    Args:
        connection: The initialized connection.
        offset: Shifts this connection's slow calls against the others'.
    """

    connection: ClientConnection
    offset: int
    sent: int = 0


def _failed(reply: Any) -> bool:
    result = reply.get("result") if isinstance(reply, dict) else None
    return not isinstance(result, dict) or result.get("isError") is not False


async def _drive(
    caller: _Caller,
    window: _Window,
    *,
    fast: str,
    slow: str,
    slow_every: int,
    in_flight: int,
) -> None:
    connection = caller.connection
    sent: dict[int, float] = {}
    slow_ids: set[int] = set()

    async def send_one() -> None:
        caller.sent += 1
        call_id = caller.sent
        # Offsetting each connection's count spreads the slow calls out in time.
        is_slow = slow_every > 0 and (call_id + caller.offset) % slow_every == 0
        if is_slow:
            slow_ids.add(call_id)
        sent[call_id] = time.perf_counter()
        await connection.send(f"{slow if is_slow else fast}{call_id}}}")

    for _ in range(in_flight):
        await send_one()
    try:
        async with async_timeout(window.end - time.perf_counter() + _DRAIN_TIMEOUT):
            while sent:
                text = await connection.recv()
                now = time.perf_counter()
                reply = json.loads(text)
                reply_id = reply.get("id") if isinstance(reply, dict) else None
                started = sent.pop(reply_id, None) if type(reply_id) is int else None
                if started is None or _failed(reply):
                    window.errors += 1
                if window.counts(now):
                    window.calls += 1
                    if started is not None and started >= window.start:
                        is_slow = reply_id in slow_ids
                        latencies = window.slow_latencies if is_slow else window.latencies
                        latencies.append(now - started)
                if now < window.end:
                    await send_one()
    except (asyncio.TimeoutError, ConnectionClosedOK):
        pass
    # Whatever is still outstanding never came back.
    window.errors += len(sent)


def _count_failures(outcomes: Sequence[BaseException | None], window: _Window) -> None:
    # A connection that failed counts as one error; anything else is a bug here.
    for outcome in outcomes:
        if isinstance(
            outcome,
            (asyncio.TimeoutError, TimeoutError, ConnectionClosed, WebSocketException, OSError),
        ):
            window.errors += 1
        elif isinstance(outcome, BaseException):
            raise outcome


async def _watch_server(pid: int | None, window: _Window) -> tuple[float | None, int | None]:
    if pid is None:
        await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
        return None, None
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    before = cpu_seconds(pid)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    return cpu_seconds(pid) - before, rss_bytes(pid)


async def run_load(
    url: str,
    *,
    pid: int | None = None,
    connections: int = 16,
    in_flight: int = 8,
    seconds: float = 3.0,
    warmup: float = 1.0,
    tool: str = "echo",
    arguments: dict[str, Any] | None = None,
    slow_every: int = 0,
    compression: str | None = None,
) -> LoadResult:
    """Keep ``connections`` × ``in_flight`` calls running and measure.

    Args:
        url: The server's WebSocket URL.
        pid: The server's process id, for CPU and memory figures.
        connections: Connections to open.
        in_flight: Pipelined requests per connection.
        seconds: Length of the measured window.
        warmup: Seconds of load before the window opens.
        tool: The tool to call.
        arguments: Its arguments.
        slow_every: Make every N-th call (per connection) a call to the
            ``slow`` tool; 0 for none.
        compression: ``"deflate"`` to offer permessage-deflate; ``None`` for none.
    """
    fast = _request_prefix(tool, arguments or {})
    slow = _request_prefix("slow", {})
    async with _connections(url, connections, compression=compression) as opened:
        started = time.perf_counter()
        window = _Window(started + warmup, started + warmup + seconds)
        drivers = [
            _drive(
                _Caller(connection, offset=index * 7),
                window,
                fast=fast,
                slow=slow,
                slow_every=slow_every,
                in_flight=in_flight,
            )
            for index, connection in enumerate(opened)
        ]
        watcher = asyncio.ensure_future(_watch_server(pid, window))
        outcomes = await asyncio.gather(*drivers, return_exceptions=True)
        server_cpu, server_rss = await watcher
    _count_failures(outcomes, window)
    return LoadResult(
        calls=window.calls,
        seconds=seconds,
        errors=window.errors,
        latencies=window.latencies,
        slow_latencies=window.slow_latencies,
        server_cpu=server_cpu,
        server_rss=server_rss,
    )


@dataclass(frozen=True)
class LoadTarget:
    """One load of ``run_interleaved``: a server, and how often its calls are slow.

    Args:
        url: The server's WebSocket URL.
        pid: The server's process id, for CPU and memory figures.
        slow_every: Make every N-th call (per connection) a call to the
            ``slow`` tool; 0 for none.
    """

    url: str
    pid: int
    slow_every: int = 0


async def run_interleaved(
    targets: Sequence[LoadTarget],
    *,
    connections: int = 16,
    in_flight: int = 8,
    seconds: float = 2.0,
    warmup: float = 0.5,
    slice_seconds: float = 0.1,
    tool: str = "echo",
    arguments: dict[str, Any] | None = None,
) -> list[LoadResult]:
    """Load several servers in turn, in short slices, and measure each.

    This machine's speed drifts by a factor of two within a second (other
    tenants of the host; a fixed loop of ``json`` calls shows it), so two
    servers measured one after the other for seconds each differ by 30 % when
    they are the same server. Here every target gets ``connections`` ×
    ``in_flight`` calls for ``slice_seconds``, the calls in flight drain, and
    the next one takes its turn, round and round, until each has had
    ``seconds`` of measured load: the targets share the machine's good and
    bad moments, and the same server measured twice differs by about 5 %. A
    slice is timed from its first request to its last reply, so ramp-up and
    drain weigh the same on every target. Two targets may be the same server
    (with and without slow calls, say), each with connections of its own.

    Args:
        targets: The loads to take turns.
        connections: Connections to open per target.
        in_flight: Pipelined requests per connection.
        seconds: Measured seconds of load per target.
        warmup: Seconds of load per target, in slices, before measuring.
        slice_seconds: How long each turn sends new requests.
        tool: The tool to call.
        arguments: Its arguments.

    Returns:
        One result per target, in the order given.
    """
    fast = _request_prefix(tool, arguments or {})
    slow = _request_prefix("slow", {})
    unmeasured = round(warmup / slice_seconds)
    measured = max(1, round(seconds / slice_seconds))
    async with contextlib.AsyncExitStack() as stack:
        callers = [
            [
                _Caller(connection, offset=index * 7)
                for index, connection in enumerate(
                    await stack.enter_async_context(
                        _connections(target.url, connections, compression=None)
                    )
                )
            ]
            for target in targets
        ]
        results = [LoadResult(0, 0.0, 0, [], [], server_cpu=0.0, server_rss=None) for _ in targets]
        for turn in range(unmeasured + measured):
            # Always the same cycle: no server takes two slices in a row (its
            # caches warm from the first), so none has an edge over another.
            for index, target in enumerate(targets):
                pid = target.pid
                started = time.perf_counter()
                window = _Window(started, started + slice_seconds, counts_drain=True)
                before = cpu_seconds(pid)
                outcomes = await asyncio.gather(
                    *(
                        _drive(
                            caller,
                            window,
                            fast=fast,
                            slow=slow,
                            slow_every=target.slow_every,
                            in_flight=in_flight,
                        )
                        for caller in callers[index]
                    ),
                    return_exceptions=True,
                )
                used = cpu_seconds(pid) - before
                _count_failures(outcomes, window)
                result = results[index]
                result.errors += window.errors
                if turn >= unmeasured:
                    result.seconds += time.perf_counter() - started
                    result.server_cpu = (result.server_cpu or 0.0) + used
                    result.calls += window.calls
                    result.latencies += window.latencies
                    result.slow_latencies += window.slow_latencies
        for result, target in zip(results, targets, strict=True):
            result.server_rss = rss_bytes(target.pid)
        return results


@dataclass
class IdleResult:
    """Figures of one ``run_idle``.

    Args:
        connections: Initialized connections held open.
        rss_before: Server memory before connecting.
        rss_after: Server memory with every connection open.
    """

    connections: int
    rss_before: int
    rss_after: int

    def summary(self) -> dict[str, Any]:
        """The figures as a flat JSON-able dict (memory in MiB)."""
        return {
            "connections": self.connections,
            "rss_before_mib": self.rss_before / 2**20,
            "rss_mib": self.rss_after / 2**20,
            "kib_per_connection": (self.rss_after - self.rss_before) / 1024 / self.connections,
        }


async def run_idle(
    url: str, *, pid: int, connections: int = 1000, settle: float = 0.5
) -> IdleResult:
    """Open ``connections`` initialized connections, wait, and read the server's memory.

    Args:
        url: The server's WebSocket URL.
        pid: The server's process id.
        connections: Connections to hold.
        settle: Seconds to wait before reading.
    """
    before = rss_bytes(pid)
    async with _connections(url, connections, compression=None) as opened:
        await asyncio.sleep(settle)
        after = rss_bytes(pid)
        count = len(opened)
    return IdleResult(count, before, after)


@dataclass
class LargeResult:
    """Figures of one ``run_large``.

    Args:
        size: Characters in the argument and in the result.
        round_trips: Seconds per round trip, in order.
        errors: Replies that were not the text sent.
        server_cpu: Server CPU seconds over every round trip.
    """

    size: int
    round_trips: list[float]
    errors: int
    server_cpu: float

    def summary(self) -> dict[str, Any]:
        """The figures as a flat JSON-able dict (times in milliseconds)."""
        return {
            "size_mib": self.size / 2**20,
            "round_trip_ms": percentile(self.round_trips, 0.5) * 1e3,
            "best_ms": min(self.round_trips) * 1e3,
            "errors": self.errors,
            "server_cpu_ms_per_round_trip": self.server_cpu / len(self.round_trips) * 1e3,
        }


async def run_large(
    url: str, *, pid: int, size: int = 8 * 2**20, repeats: int = 5, compression: str | None = None
) -> LargeResult:
    """Echo ``size`` characters through the ``echo`` tool, ``repeats`` times, one at a time.

    Args:
        url: The server's WebSocket URL.
        pid: The server's process id.
        size: Characters in the argument (and so in the result).
        repeats: Round trips measured, after one unmeasured.
        compression: ``"deflate"`` to offer permessage-deflate; ``None`` for none.
    """
    text = big_text(size)
    prefix = _request_prefix("echo", {"text": text})
    round_trips: list[float] = []
    errors = 0
    async with _connections(url, 1, compression=compression) as (connection,):
        cpu = 0.0
        for attempt in range(repeats + 1):
            before = cpu_seconds(pid)
            started = time.perf_counter()
            await connection.send(f"{prefix}{attempt + 1}}}")
            async with async_timeout(_DRAIN_TIMEOUT * 3):
                reply = json.loads(await connection.recv())
            elapsed = time.perf_counter() - started
            result = reply.get("result") or {}
            if result.get("isError") is not False or result["content"][0]["text"] != text:
                errors += 1
            if attempt:  # the first one warms up allocators and caches
                round_trips.append(elapsed)
                cpu += cpu_seconds(pid) - before
    return LargeResult(size, round_trips, errors, cpu)
