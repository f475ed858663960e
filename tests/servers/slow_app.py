"""A server run as a real subprocess by the shutdown tests: ``python slow_app.py``.

It is configured only through the environment (``MCP_PORT=0``,
``MCP_SHUTDOWN_GRACE``, ...) and logs ``listening on HOST:PORT`` to stderr, the
line the tests read the port from. ``app.run()`` is the container entrypoint
under test: it must stop on SIGTERM or SIGINT and exit 0.
"""

from __future__ import annotations

import asyncio
import time

from iccm_network import App
from iccm_network.context import Context

app = App("slow", version="1.0.0")


@app.tool
async def slow(seconds: float, ctx: Context) -> str:
    """Say that the call started, then sleep without blocking the loop.

    Args:
        seconds: How long.
        ctx: The call's context.
    """
    await ctx.report_progress(0, total=seconds, message="started")
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


@app.tool
def stuck(seconds: float) -> str:
    """Block a worker thread, as a hung system call would.

    Args:
        seconds: How long.
    """
    time.sleep(seconds)
    return "unreachable in the tests"


if __name__ == "__main__":
    app.run()
