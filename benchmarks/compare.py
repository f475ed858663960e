"""Every case against iccm-network and the baselines, interleaved, in rounds.

Each round runs each case against every server, each a fresh process. The
load cases (echo, schema, slow) start every server at once and load them in
turn in 0.1 s slices (``run_interleaved``); the other cases measure one
server after the other, in an order that rotates between rounds. Ratios are
taken within a round, and the table shows their median and range over the
rounds.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from benchmarks.launcher import SERVERS, ServerSpec, cold_start, default_install, launch
from benchmarks.loadgen import LoadTarget, run_idle, run_interleaved, run_large
from benchmarks.payloads import TOOL_ARGUMENTS

__all__ = ["CASES", "DEFAULT_SERVERS", "Results", "compare", "print_table"]

CASES: Final = {
    "echo": "echo, 16 conn x 8 in flight",
    "schema": "10-field schema, 16 x 8",
    "slow": "echo + one 100 ms call in 100",
    "idle": "1,000 idle connections",
    "large": "8 MiB argument + 8 MiB result",
    "coldstart": "cold start (iccm: 50 tools)",
}
"""The cases ``compare`` can run, in order."""

DEFAULT_SERVERS: Final = ("iccm", "default", "raw", "sequential")
"""The servers ``compare`` runs unless told otherwise (``uvloop`` is the other one)."""

_LOAD_CASES: Final = ("echo", "schema", "slow")
_IDLE_CONNECTIONS: Final = 1000
_LARGE_REPEATS: Final = 4
_COLD_TOOLS: Final = 50


@dataclass
class Results:
    """Every measurement of a ``compare`` run.

    Args:
        servers: Server names, in table order.
        rounds: Rounds run.
        figures: ``(round, case, server)`` to that measurement's figures.
    """

    servers: list[str]
    rounds: int
    figures: dict[tuple[int, str, str], dict[str, Any]] = field(default_factory=dict)

    def get(self, round_: int, case: str, server: str, key: str) -> float | None:
        """One figure, or ``None`` when it was not measured.

        Args:
            round_: The round.
            case: The case.
            server: The server.
            key: The figure's name.
        """
        value = self.figures.get((round_, case, server), {}).get(key)
        return None if value is None else float(value)

    def as_json(self) -> list[dict[str, Any]]:
        """Every measurement as a list of flat dicts."""
        return [
            {"round": r, "case": case, "server": server, **figures}
            for (r, case, server), figures in sorted(self.figures.items())
        ]


def _servers_for(case: str, servers: Sequence[ServerSpec]) -> list[ServerSpec]:
    # The sequential baseline differs from raw only in how it schedules calls,
    # so it is measured where scheduling matters: under load.
    if case in _LOAD_CASES:
        return list(servers)
    return [spec for spec in servers if spec.name != "sequential"]


async def _measure_load(
    case: str, specs: Sequence[ServerSpec], seconds: float, warmup: float
) -> list[dict[str, Any]]:
    tool = "register" if case == "schema" else "echo"
    async with contextlib.AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(launch(spec)) for spec in specs]
        targets = [LoadTarget(server.url, server.pid) for server in servers]
        if case == "slow":
            # The same server without slow calls, in the same slices: the
            # p99 that the slow calls are held against.
            targets = [
                LoadTarget(server.url, server.pid, slow_every=slow_every)
                for server in servers
                for slow_every in (100, 0)
            ]
        loads = await run_interleaved(
            targets, seconds=seconds, warmup=warmup, tool=tool, arguments=TOOL_ARGUMENTS[tool]
        )
    if case != "slow":
        return [load.summary() for load in loads]
    measured = []
    for with_slow, without in zip(loads[::2], loads[1::2], strict=True):
        figures = with_slow.summary()
        figures["p99_ms_without_slow_calls"] = without.summary()["p99_ms"]
        measured.append(figures)
    return measured


async def _measure(case: str, spec: ServerSpec) -> dict[str, Any]:
    if case == "coldstart":
        tools = ("--tools", str(_COLD_TOOLS)) if spec.module.endswith("iccm_app") else ()
        return {"cold_start_ms": await cold_start(spec, tools) * 1e3}
    async with launch(spec) as server:
        if case == "idle":
            idle = await run_idle(server.url, pid=server.pid, connections=_IDLE_CONNECTIONS)
            return idle.summary()
        large = await run_large(server.url, pid=server.pid, repeats=_LARGE_REPEATS)
        return large.summary()


async def compare(
    cases: Sequence[str],
    *,
    rounds: int = 3,
    seconds: float = 2.0,
    warmup: float = 0.5,
    variants: Sequence[ServerSpec] = (),
    servers: Sequence[str] = DEFAULT_SERVERS,
    progress: TextIO | None = None,
) -> Results:
    """Run ``cases`` against iccm-network, any variants and the baselines.

    Args:
        cases: Names from ``CASES``.
        rounds: How many times to run everything.
        seconds: Measured seconds of load per server and load case.
        warmup: Seconds of load per server before measuring.
        variants: More iccm-network servers (patched copies) to compare.
        servers: Names from ``SERVERS``; ``raw`` is always among them.
        progress: Where to print a line per measurement.
    """
    if "default" in servers:
        default_install(progress)
    ours = [SERVERS[name] for name in servers if name not in ("raw", "sequential")]
    baselines = [
        SERVERS[name] for name in ("raw", "sequential") if name in servers or name == "raw"
    ]
    chosen_servers = [*ours, *variants, *baselines]
    results = Results([spec.name for spec in chosen_servers], rounds)
    for round_ in range(rounds):
        for case in cases:
            chosen = _servers_for(case, chosen_servers)
            shift = round_ % len(chosen)
            chosen = chosen[shift:] + chosen[:shift]
            if case in _LOAD_CASES:
                measured = await _measure_load(case, chosen, seconds, warmup)
            else:
                measured = [await _measure(case, spec) for spec in chosen]
            for spec, figures in zip(chosen, measured, strict=True):
                results.figures[(round_, case, spec.name)] = figures
                if progress is not None:
                    shown = ", ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in figures.items()
                    )
                    print(f"round {round_ + 1} {case} {spec.name}: {shown}", file=progress)
    return results


@dataclass(frozen=True)
class _Row:
    case: str
    label: str
    value: Callable[[Results, int, str], float | None]
    fmt: str = "{:.0f}"
    target: str = ""
    passes: Callable[[float], bool] | None = None
    # Ratios to raw are the point for most rows; a few compare a server with itself.
    to_raw: bool = True


def _figure(case: str, key: str) -> Callable[[Results, int, str], float | None]:
    return lambda results, r, server: results.get(r, case, server, key)


def _slowdown(results: Results, r: int, server: str) -> float | None:
    with_slow = results.get(r, "slow", server, "p99_ms")
    without = results.get(r, "slow", server, "p99_ms_without_slow_calls")
    return None if with_slow is None or not without else with_slow / without


_ROWS: Final = (
    _Row(
        "echo",
        "calls/s",
        _figure("echo", "calls_per_second"),
        target=">= 0.90",
        passes=lambda ratio: ratio >= 0.90,
    ),
    _Row(
        "echo",
        "server CPU us/call",
        _figure("echo", "server_cpu_us_per_call"),
        "{:.1f}",
        target="<= 1.15",
        passes=lambda ratio: ratio <= 1.15,
    ),
    _Row("echo", "p50 ms", _figure("echo", "p50_ms"), "{:.2f}"),
    _Row("echo", "p99 ms", _figure("echo", "p99_ms"), "{:.2f}"),
    _Row(
        "schema",
        "calls/s",
        _figure("schema", "calls_per_second"),
        target=">= 0.90",
        passes=lambda ratio: ratio >= 0.90,
    ),
    _Row(
        "schema",
        "server CPU us/call",
        _figure("schema", "server_cpu_us_per_call"),
        "{:.1f}",
        target="<= 1.15",
        passes=lambda ratio: ratio <= 1.15,
    ),
    _Row("slow", "fast-call p99 ms", _figure("slow", "p99_ms"), "{:.2f}"),
    _Row(
        "slow",
        "fast p99 / p99 without slow calls",
        _slowdown,
        "{:.2f}",
        target="iccm <= 1.5",
        passes=lambda value: value <= 1.5,
        to_raw=False,
    ),
    _Row(
        "idle",
        "server RSS MiB",
        _figure("idle", "rss_mib"),
        "{:.1f}",
        target="<= 1.20",
        passes=lambda ratio: ratio <= 1.20,
    ),
    _Row("idle", "KiB per connection", _figure("idle", "kib_per_connection"), "{:.1f}"),
    _Row(
        "large",
        "round trip ms",
        _figure("large", "round_trip_ms"),
        "{:.1f}",
        target="<= 1.30",
        passes=lambda ratio: ratio <= 1.30,
    ),
    _Row(
        "large",
        "server CPU ms/round trip",
        _figure("large", "server_cpu_ms_per_round_trip"),
        "{:.1f}",
    ),
    _Row(
        "coldstart",
        "ms",
        _figure("coldstart", "cold_start_ms"),
        target="<= 2.00",
        passes=lambda ratio: ratio <= 2.0,
    ),
)


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _ratio_cell(ratios: Sequence[float]) -> str:
    if not ratios:
        return "-"
    middle = statistics.median(ratios)
    return f"{middle:.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def print_table(results: Results, out: TextIO) -> None:
    """Print the Markdown table: medians per server, ratios to raw, targets.

    Args:
        results: What ``compare`` measured.
        out: Where to print.
    """
    ours = [name for name in results.servers if name not in ("raw", "sequential")]
    header = ["case", "metric", *results.servers, *(f"{name}/raw" for name in ours), "target"]
    print("| " + " | ".join(header) + " |", file=out)
    print("|" + "---|" * len(header), file=out)
    rounds = range(results.rounds)
    for row in _ROWS:
        if not any((r, row.case, name) in results.figures for r in rounds for name in ours):
            continue
        cells = [CASES[row.case], row.label]
        for name in results.servers:
            middle = _median([row.value(results, r, name) for r in rounds])
            cells.append("-" if middle is None else row.fmt.format(middle))
        verdicts = []
        for name in ours:
            if row.to_raw:
                ratios = []
                for r in rounds:
                    ours_value, raw_value = (
                        row.value(results, r, name),
                        row.value(results, r, "raw"),
                    )
                    if ours_value is not None and raw_value:
                        ratios.append(ours_value / raw_value)
                cells.append(_ratio_cell(ratios))
                measured = statistics.median(ratios) if ratios else None
            else:
                cells.append("-")
                measured = _median([row.value(results, r, name) for r in rounds])
            if row.passes is not None and measured is not None:
                verdicts.append(f"{name}: {'ok' if row.passes(measured) else 'MISSED'}")
        target = f"{row.target} ({'; '.join(verdicts)})" if verdicts else row.target
        cells.append(target)
        print("| " + " | ".join(cells) + " |", file=out)
