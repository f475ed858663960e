"""List changes while serving: a tool, resource or prompt added or removed.

``ListChanges`` knows each open connection's protocol (a WebSocket, an HTTP
``subscriptions/listen`` stream, an in-memory connection); a change is
applied to every one of them on the server's loop (from any thread), and
the handshake-era connections and the listen streams that asked for it are
sent ``notifications/<kind>/list_changed``. ``follow`` registers a connection
for both its list changes and its resource updates.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from iccm_network.protocol.server import ServerProtocol
from iccm_network.transport.serving import tell_resource_updated

if TYPE_CHECKING:
    from iccm_network.catalog.table import Catalog

__all__ = ["ListChanges"]


class ListChanges:
    """The open connections' protocols, and the announcing of list changes to them."""

    def __init__(self) -> None:
        self.protocols: dict[Any, ServerProtocol] = {}
        """Each open connection (a ``PortConnection``) and its protocol."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The server's loop, once it started: changes are applied there."""
        self._notices: set[asyncio.Task[None]] = set()

    def follow(
        self, channel: Any, protocol: ServerProtocol, catalog: Catalog | None
    ) -> Callable[[], None]:
        """Send ``channel`` its list changes, and ``catalog``'s resource updates, until stopped.

        Args:
            channel: A connection, an HTTP ``subscriptions/listen`` stream or
                an in-memory connection (a ``Channel``).
            protocol: Its protocol, which knows what it subscribed to.
            catalog: The app's catalog, whose updates it gets.

        Returns:
            The function that stops it. It holds the update listener, which
            the catalog holds only weakly: keep it while following.
        """
        listener = functools.partial(tell_resource_updated, channel, protocol)
        if catalog is not None:
            catalog.listeners.add(listener)
        self.protocols[channel] = protocol

        def unfollow() -> None:
            if catalog is not None:
                catalog.listeners.discard(listener)
            self.protocols.pop(channel, None)

        return unfollow

    def announce(self, kind: str, change: Callable[[ServerProtocol], None]) -> None:
        """Apply ``change`` to every open connection, then send each its list change.

        Handshake-era connections get ``notifications/<kind>/list_changed``.
        Before the server starts this does nothing (connections made later
        see the change from the start). Safe to call from any thread.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
            change: Updates one connection's ``ServerProtocol``.
        """
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._announce(kind, change)
        else:
            loop.call_soon_threadsafe(self._announce, kind, change)

    def _announce(self, kind: str, change: Callable[[ServerProtocol], None]) -> None:
        for connection, protocol in self.protocols.items():
            change(protocol)
            frames = protocol.list_changed_frames(kind)
            if frames:
                task = asyncio.create_task(self._notify(connection, frames))
                self._notices.add(task)
                task.add_done_callback(self._notices.discard)

    async def end_listens(self) -> None:
        """End the open ``subscriptions/listen`` streams, each with its result (at shutdown)."""
        ending = []
        for connection, protocol in list(self.protocols.items()):
            if protocol.listening:
                protocol.end_listens()
                ending.append(self._reply(connection, protocol.data_to_send()))
        await asyncio.gather(*ending)

    @staticmethod
    async def _notify(connection: Any, frames: list[str]) -> None:
        # send_notification drops the frame if the connection has closed.
        async with connection.sending:
            for frame in frames:
                await connection.send_notification(frame)

    @staticmethod
    async def _reply(connection: Any, frames: list[str]) -> None:
        async with connection.sending:
            await connection.send_replies(frames)
