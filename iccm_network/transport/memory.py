"""An app's server side in memory: its ``ServerProtocol`` and call runner, no socket.

``MemoryServer`` is what the WebSocket server does for one connection, minus
the socket: text in, through ``ServerProtocol`` and the route table,
validation, conversion and the servers' own ``CallRunner`` (sync tools on
worker threads, the tool's timeout, a ``Context``), and text out to a
callback. The in-memory client transport (``MCPClient(app)``) and
``testing.LocalConnection`` are built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

from iccm_network.config import Settings
from iccm_network.logs import CallLog
from iccm_network.protocol.server import ServerInfo, ServerProtocol
from iccm_network.tools.routes import RouteTable, Tool
from iccm_network.transport.calls import WorkerThreads
from iccm_network.transport.list_changes import ListChanges
from iccm_network.transport.serving import CallRunner

if TYPE_CHECKING:
    from iccm_network.app import ServesApp

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

    def keep_current(self, server: ServesApp) -> None:
        """Tell ``server`` of the tools, resources and prompts added or removed later."""


class MemoryServer:
    """One connection's server side, in memory.

    The app's later changes reach it as they reach a ``Server``: tools
    added or removed (unless ``tools`` fixes them), and the list-changed
    notifications to a handshake-era client.

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
        catalog = getattr(app, "catalog", None)
        self._protocol = ServerProtocol(
            RouteTable(app.tools if tools is None else tools),
            app.info,
            max_in_flight=settings.max_in_flight,
            max_batch=settings.max_batch,
            max_subscriptions=settings.max_subscriptions,
            catalog=catalog,
        )
        self._write = write
        channel = _MemoryChannel(write)
        self._runner = CallRunner(
            self._protocol,
            channel,
            _WORKERS,
            default_timeout=settings.tool_timeout,
            abandoning=_never,
            # Counted, never written: no summary timer runs in memory.
            call_log=CallLog(settings.log_summary_interval),
        )
        self._fixed_tools = tools is not None
        self._changes = ListChanges()
        self._unfollow = self._changes.follow(channel, self._protocol, catalog)
        try:
            self._changes.loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # made outside the loop: it is known when the first message comes
        app.keep_current(self)

    @property
    def running(self) -> int:
        """Calls running now."""
        return len(self._runner.tasks)

    def replace_routes(self, routes: RouteTable) -> None:
        """Serve ``routes`` from now on, unless the tools were fixed when made.

        Args:
            routes: The app's tools, compiled.
        """
        if not self._fixed_tools:
            self.announce_change("tools", lambda protocol: protocol.replace_routes(routes))

    def announce_change(self, kind: str, change: Callable[[ServerProtocol], None]) -> None:
        """Apply ``change`` to the protocol, then send a handshake-era client its list change.

        Safe to call from any thread.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
            change: Updates the ``ServerProtocol``.
        """
        if self._changes.loop is None:
            change(self._protocol)  # no message yet, so no client to tell
        else:
            self._changes.announce(kind, change)

    def receive_text(self, text: str) -> list[asyncio.Task[None]]:
        """Read one message; start the calls it asks for; return their tasks.

        Args:
            text: A JSON-RPC message or batch, as text.
        """
        if self._changes.loop is None:
            self._changes.loop = asyncio.get_running_loop()
        self._protocol.receive_text(text)
        before = set(self._runner.tasks)
        self._runner.start_calls()
        self._flush()
        return [task for task in self._runner.tasks if task not in before]

    def close(self) -> None:
        """Cancel every call still running (the connection is gone)."""
        self._unfollow()
        self._runner.cancel_all()

    def _flush(self) -> None:
        for frame in self._protocol.data_to_send():
            self._write(frame)


class _MemoryChannel:
    """Frames to a callback: the ``Channel`` a ``CallRunner`` writes to in memory."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.sending = asyncio.Lock()
        self.calls_begun = 0
        self._write = write

    def is_open(self) -> bool:
        return True

    def has_room(self) -> bool:
        return True

    def write_replies(self, frames: list[str]) -> None:
        for frame in frames:
            self._write(frame)

    async def send_replies(self, frames: list[str]) -> None:
        self.write_replies(frames)

    async def send_notification(self, frame: str) -> None:
        self._write(frame)


def _never() -> bool:
    return False
