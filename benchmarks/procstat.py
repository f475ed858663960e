"""CPU time and resident memory of another process, read from ``/proc`` (Linux)."""

from __future__ import annotations

import contextlib
import os

__all__ = ["cpu_seconds", "rss_bytes"]

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_SCHEDSTAT = os.path.exists("/proc/self/schedstat")
"""Whether the kernel keeps scheduler statistics (nanoseconds of CPU per thread)."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by every thread of ``pid``.

    Read from each thread's ``schedstat`` (nanoseconds) where the kernel
    keeps it; ``stat`` counts in clock ticks of 10 ms, too coarse for the
    0.1 s slices of an interleaved load.

    Args:
        pid: The process to read.
    """
    return _scheduled_seconds(pid) if _SCHEDSTAT else _ticked_seconds(pid)


def _scheduled_seconds(pid: int) -> float:
    total = 0
    for thread in os.listdir(f"/proc/{pid}/task"):
        # A thread that ended since the listing has no file left: its time
        # is gone from the count either way.
        with contextlib.suppress(FileNotFoundError):
            with open(f"/proc/{pid}/task/{thread}/schedstat", encoding="ascii") as schedstat:
                total += int(schedstat.read().split()[0])
    return total / 1e9


def _ticked_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # The command name may contain spaces and parentheses; fields follow the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now.

    Args:
        pid: The process to read.
    """
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        resident = int(statm.read().split()[1])
    return resident * _PAGE_SIZE
