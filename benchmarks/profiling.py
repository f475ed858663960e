"""Where a server spends its time per call, measured with cProfile.

The server runs as usual, under ``cProfile``, while the load generator
drives it; the statistics are then divided by the number of tool calls so
that every figure reads as microseconds per call. cProfile roughly doubles
the cost of small Python functions, so the figures rank the costs rather
than measure them: compare ``compare`` figures for absolute costs.
"""

from __future__ import annotations

import os
import pstats
import tempfile
from typing import Any

from benchmarks.launcher import ServerSpec, launch
from benchmarks.loadgen import run_load
from benchmarks.payloads import TOOL_ARGUMENTS

__all__ = ["profile_server", "report"]

_StatKey = tuple[str, int, str]


def _label(key: _StatKey) -> str:
    filename, line, name = key
    for marker in ("iccm_network/", "websockets/", "jsonschema/", "asyncio/", "benchmarks/"):
        if marker in filename:
            filename = marker + filename.split(marker, 1)[1]
            break
    else:
        filename = os.path.basename(filename)
    return f"{filename}:{line}({name})"


def _line(key: _StatKey, entry: Any, calls: int) -> str:
    _, ncalls, own, total, _ = entry
    per_call = 1e6 / calls
    return f"{own * per_call:8.1f} {total * per_call:8.1f} {ncalls / calls:7.2f}  {_label(key)}"


def report(path: str, tool: str, top: int) -> str:
    """Microseconds per tool call: the top functions by own time, then iccm_network's.

    Args:
        path: A cProfile statistics file.
        tool: The tool the load called (its call count is the divisor).
        top: How many functions to list by own time.
    """
    raw: dict[_StatKey, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    calls = max(
        (
            entry[1]
            for key, entry in raw.items()
            if key[2] in (tool, f"_{tool}") and "benchmarks" in key[0]
        ),
        default=0,
    )
    if not calls:
        return f"no calls of {tool!r} were profiled"
    lines = [
        f"{calls} calls of {tool!r}; microseconds per call (cProfile inflates small functions)"
    ]
    lines.append(f"{'own':>8} {'total':>8} {'n/call':>7}  function")
    by_own = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines.extend(_line(key, entry, calls) for key, entry in by_own)
    lines.append("")
    lines.append("iccm_network functions by total (inclusive) time:")
    ours = [(key, entry) for key, entry in raw.items() if "iccm_network" in key[0]]
    ours.sort(key=lambda item: item[1][3], reverse=True)
    lines.extend(_line(key, entry, calls) for key, entry in ours[:top])
    return "\n".join(lines)


async def profile_server(spec: ServerSpec, tool: str, seconds: float, top: int) -> str:
    """Load a server under cProfile and report per-call costs.

    Args:
        spec: The server: iccm-network, a variant, or a baseline for comparison.
        tool: ``echo`` or ``register``.
        seconds: Seconds of load.
        top: How many functions to list.
    """
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "server.prof")
        async with launch(spec, "--profile", path) as server:
            await run_load(
                server.url,
                seconds=seconds,
                warmup=0.5,
                tool=tool,
                arguments=TOOL_ARGUMENTS[tool],
            )
        return report(path, tool, top)
