"""An app's server side in memory: its ``ServerProtocol`` and call runner, no socket.

``MemoryServer`` is what the WebSocket server does for one connection, minus
the socket: text in, through ``ServerProtocol`` and the route table,
validation, conversion and ``run_call`` (sync tools on worker threads, the
tool's timeout, a ``Context``), and text out to a callback. The in-memory
client transport (``MCPClient(app)``) and ``testing.LocalConnection`` are
built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from iccm_network.config import Settings
from iccm_network.protocol.outcomes import Cancelled, Outcome
from iccm_network.protocol.server import ServerInfo, ServerProtocol, ToolCall
from iccm_network.tools.routes import RouteTable, Tool
from iccm_network.transport.calls import WorkerThreads, run_call

__all__ = ["InMemoryApp", "MemoryServer"]

_WORKERS: Final = WorkerThreads(8)
"""Sync tools called in memory run here, as on a server's worker threads."""


class InMemoryApp(Protocol):
    """What serving in memory needs of an app: ``iccm_network.App`` has it.

    An interface rather than the class, so that the client side, which
    accepts an app, does not import the module that defines ``App``.
    """

    @property
    def name(self) -> str:
        """The app's name."""

    @property
    def tools(self) -> Mapping[str, Tool]:
        """Its tools by name."""

    @property
    def info(self) -> ServerInfo:
        """What ``initialize`` says about it."""

    def settings(self) -> Settings:
        """Its settings (limits, the default tool timeout)."""


class MemoryServer:
    """One connection's server side, in memory.

    Args:
        app: The app whose tools to serve.
        write: Called with each message the server sends.
        tools: Serve these tools instead of ``app.tools`` (for instrumented copies).
    """

    def __init__(
        self,
        app: InMemoryApp,
        write: Callable[[str], None],
        *,
        tools: Mapping[str, Tool] | None = None,
    ) -> None:
        settings = app.settings()
        self._protocol = ServerProtocol(
            RouteTable(app.tools if tools is None else tools),
            app.info,
            max_in_flight=settings.max_in_flight,
            max_batch=settings.max_batch,
            catalog=getattr(app, "catalog", None),
        )
        self._default_timeout = settings.tool_timeout
        self._write = write
        self._tasks: dict[asyncio.Task[None], ToolCall] = {}
        self._catalog = getattr(app, "catalog", None)
        # Kept here: the catalog holds listeners weakly.
        self._listener = self._resource_updated
        if self._catalog is not None:
            self._catalog.listeners.add(self._listener)

    @property
    def running(self) -> int:
        """Calls running now."""
        return len(self._tasks)

    def receive_text(self, text: str) -> list[asyncio.Task[None]]:
        """Read one message; start the calls it asks for; return their tasks.

        Args:
            text: A JSON-RPC message or batch, as text.
        """
        self._protocol.receive_text(text)
        started = []
        for call in self._protocol.calls_to_run():
            task = asyncio.ensure_future(self._run(call))
            self._tasks[task] = call
            task.add_done_callback(self._tasks.pop)
            started.append(task)
        for call in self._protocol.calls_to_cancel():
            for task, running in self._tasks.items():
                if running is call:
                    task.cancel()
        self._flush()
        return started

    def close(self) -> None:
        """Cancel every call still running (the connection is gone)."""
        if self._catalog is not None:
            self._catalog.listeners.discard(self._listener)
        for task in list(self._tasks):
            task.cancel()

    async def _resource_updated(self, uri: str) -> None:
        self._protocol.resource_updated(uri)
        self._flush()

    def _flush(self) -> None:
        for frame in self._protocol.data_to_send():
            self._write(frame)

    async def _run(self, call: ToolCall) -> None:
        async def send_progress(params: dict[str, Any]) -> None:
            self._write(self._protocol.progress_frame(params))

        async def send_log(params: dict[str, Any]) -> None:
            frame = self._protocol.log_frame(call, params)
            if frame is not None:
                self._write(frame)

        outcome: Outcome
        try:
            outcome = await run_call(
                call,
                _WORKERS,
                default_timeout=self._default_timeout,
                send_progress=send_progress,
                send_log=send_log,
            )
        except asyncio.CancelledError:
            outcome = Cancelled()
        self._protocol.complete(call, outcome)
        self._flush()
