"""Client transports: what moves a ``ClientProtocol``'s messages, and nothing else.

A transport opens a connection, sends and receives whole messages as text,
and closes; every protocol decision stays in ``ClientProtocol``. Two
implementations:

- ``WebSocketTransport``: one WebSocket, reached with the diagnosed steps of
  ``iccm_network.transport.connect`` (DNS, TCP, handshake).
- ``MemoryTransport``: an ``App`` served in memory through its real
  ``ServerProtocol``, validation and conversion, with no socket
  (``MCPClient(app)``).

A Streamable HTTP transport is a third class with the same four methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from iccm_network.errors import MCPConnectionError
from iccm_network.transport.connect import Endpoint, open_connection
from iccm_network.transport.failures import closed_diagnosis

if TYPE_CHECKING:
    from iccm_network.transport.memory import InMemoryApp, MemoryServer

__all__ = ["ClientTransport", "MemoryTransport", "WebSocketTransport"]


class ClientTransport(Protocol):
    """What a client needs of a connection: whole text messages both ways."""

    @property
    def url(self) -> str:
        """Where the connection goes, for messages."""

    @property
    def is_open(self) -> bool:
        """Whether messages can still be sent."""

    async def connect(self, timeout: float) -> None:
        """Open the connection.

        Args:
            timeout: Seconds for every step of opening it.

        Raises:
            MCPConnectionError: The step that failed, with what to check.
        """

    async def send(self, text: str) -> None:
        """Send one message.

        Args:
            text: A JSON-RPC message or batch.

        Raises:
            MCPConnectionError: The connection is closed (``step="closed"``).
        """

    async def receive(self) -> str | bytes:
        """The next message from the server.

        Raises:
            MCPConnectionError: The connection closed (``step="closed"``).
        """

    async def close(self) -> None:
        """Close the connection; a ``receive`` waiting raises ``MCPConnectionError``."""


class WebSocketTransport:
    """A WebSocket to an MCP server, opened with diagnosed steps.

    Args:
        endpoint: Where to connect.
        headers: Extra HTTP headers for the handshake.
        max_size: Largest message accepted, in bytes; ``None`` for no limit.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before giving the connection up.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
    ) -> None:
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connection: ClientConnection | None = None
        self.closed_by_us = False

    @classmethod
    def wrap(cls, endpoint: Endpoint, connection: ClientConnection) -> WebSocketTransport:
        """A transport over a WebSocket opened elsewhere (the Godot shipper opens its own).

        Args:
            endpoint: Where the connection goes.
            connection: The open WebSocket.
        """
        transport = cls(endpoint)
        transport.connection = connection
        return transport

    @property
    def url(self) -> str:
        """The server's URL."""
        return self.endpoint.url

    @property
    def is_open(self) -> bool:
        """Whether the WebSocket is open."""
        return self.connection is not None and self.connection.state is State.OPEN

    async def connect(self, timeout: float) -> None:
        """Resolve, connect and perform the WebSocket handshake, all within ``timeout``.

        Args:
            timeout: Seconds for the three steps together.

        Raises:
            MCPConnectionError: The step that failed, with what to check.
        """
        self.connection = await open_connection(
            self.endpoint,
            timeout,
            headers=self.headers,
            max_size=self.max_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )

    async def send(self, text: str) -> None:
        """Send one text frame.

        Args:
            text: The message.

        Raises:
            MCPConnectionError: The connection is closed.
        """
        connection = self._open()
        try:
            await connection.send(text)
        except ConnectionClosed as exc:
            raise self._closed(exc, "while sending") from exc

    async def receive(self) -> str | bytes:
        """The next frame.

        Raises:
            MCPConnectionError: The connection closed.
        """
        connection = self._open()
        try:
            return await connection.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc, "while requests were in flight") from exc

    async def close(self) -> None:
        """Close the WebSocket (bounded by ``websockets``' close timeout)."""
        self.closed_by_us = True
        if self.connection is not None:
            await self.connection.close()

    def _open(self) -> ClientConnection:
        if self.connection is None:
            raise MCPConnectionError.diagnosed(
                "closed",
                "closed",
                f"there is no connection to {self.url} yet.",
                "that connect() was awaited first.",
            )
        return self.connection

    def _closed(self, exc: ConnectionClosed, during: str) -> MCPConnectionError:
        if self.closed_by_us:
            return _closed_by_client(self.url)
        return closed_diagnosis(self.url, exc, during)


def _closed_by_client(url: str) -> MCPConnectionError:
    return MCPConnectionError.diagnosed(
        "closed",
        "closed",
        f"MCPClient.close() closed the connection to {url} while requests were in flight.",
        "nothing on the server; the next request reconnects.",
    )


class MemoryTransport:
    """An app served in memory: the real server protocol, no socket.

    Args:
        app: The app whose tools to call.
    """

    def __init__(self, app: InMemoryApp) -> None:
        self.app = app
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._server: MemoryServer | None = None
        self._open = False

    @property
    def url(self) -> str:
        """``memory://`` and the app's name."""
        return f"memory://{self.app.name}"

    @property
    def is_open(self) -> bool:
        """Whether the in-memory connection is open."""
        return self._open

    async def connect(self, timeout: float) -> None:
        """Open a fresh in-memory connection (a new ``ServerProtocol``).

        Args:
            timeout: Unused: nothing in memory can take long.
        """
        # Imported here: the server side is needed only for in-memory calls.
        from iccm_network.transport.memory import MemoryServer

        self._inbox = asyncio.Queue()
        self._server = MemoryServer(self.app, self._deliver)
        self._open = True

    def _deliver(self, text: str) -> None:
        if self._open:
            self._inbox.put_nowait(text)

    async def send(self, text: str) -> None:
        """Hand a message to the server side; its calls start at once.

        Args:
            text: The message.

        Raises:
            MCPConnectionError: The connection is closed.
        """
        if not self._open or self._server is None:
            raise _closed_by_client(self.url)
        self._server.receive_text(text)

    async def receive(self) -> str:
        """The next message from the server side.

        Raises:
            MCPConnectionError: The connection was closed.
        """
        text = await self._inbox.get() if self._open or not self._inbox.empty() else None
        if text is None:
            raise _closed_by_client(self.url)
        return text

    async def close(self) -> None:
        """Close the connection: calls still running are cancelled."""
        if not self._open:
            return
        self._open = False
        if self._server is not None:
            self._server.close()
        self._inbox.put_nowait(None)
