"""Starting and stopping a server the same way everywhere.

``App.serve()``, ``App.serving()`` and ``MCPServer`` all go through here, so
log shipping, signal handling and the drain behave identically in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from iccm_network.transport.websocket import Server

__all__ = ["run_event_loop", "serve_until_stopped", "signal_handlers", "started"]

T = TypeVar("T")

logger = logging.getLogger("iccm_network.app")


@contextlib.asynccontextmanager
async def started(server: Server, component: str) -> AsyncIterator[Server]:
    """Ship logs (when configured) and run ``server`` for the block.

    On a normal exit the server drains for its ``shutdown_grace``; when the
    block raises or is cancelled nobody waits for replies, so it stops at once.

    Args:
        server: A server that has not been started.
        component: The name log entries are shipped under.
    """
    settings = server.settings
    godot_url = settings.godot_url if settings.logging_enabled else None
    shipping: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
    if godot_url is not None:
        # Imported only when shipping: a server without it starts faster.
        from iccm_network.godot import shipping_logs

        shipping = shipping_logs(godot_url, component)
    # Shipping starts first and stops last, so Godot hears of start and stop.
    async with shipping:
        await server.start()
        failed = True
        try:
            yield server
            failed = False
        finally:
            await server.shutdown(grace=0 if failed else None)


@contextlib.contextmanager
def signal_handlers(on_signal: Callable[[int], None]) -> Iterator[list[int]]:
    """Route SIGTERM and SIGINT to ``on_signal`` for the block.

    Works for Python as PID 1 in a container too, which otherwise ignores
    SIGTERM. Where asyncio cannot install handlers (not the main thread),
    none are installed and the list yielded is empty.

    Args:
        on_signal: Called on the event loop with the signal number.
    """
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for signum in (int(signal.SIGTERM), int(signal.SIGINT)):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield installed
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def serve_until_stopped(server: Server, component: str) -> None:
    """Serve until SIGTERM, SIGINT or ``server.shutdown()``, then drain.

    Args:
        server: A server that has not been started.
        component: The name log entries are shipped under.
    """
    stopping: list[asyncio.Task[None]] = []

    def stop(signum: int) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        if not stopping:
            stopping.append(asyncio.create_task(server.shutdown()))

    # Handlers before start(): a SIGTERM right after the "listening" line
    # must still mean a graceful stop, not the default death.
    with signal_handlers(stop):
        async with started(server, component):
            await server.serve_forever()
        if stopping:
            await stopping[0]


def run_event_loop(main: Coroutine[Any, Any, T], event_loop: str = "auto") -> T:
    """Run ``main`` to completion on a new event loop, as ``asyncio.run`` does.

    Args:
        main: The coroutine to run.
        event_loop: ``auto`` uses ``uvloop`` when it is installed (the
            ``uvloop`` extra), else ``asyncio``'s own loop; ``asyncio`` and
            ``uvloop`` choose one.

    Raises:
        RuntimeError: ``event_loop`` is ``uvloop`` and it is not installed.
    """
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                main.close()
                raise RuntimeError(
                    "MCP_EVENT_LOOP=uvloop but uvloop is not installed; "
                    'pip install "iccm-network[uvloop]"'
                ) from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)
