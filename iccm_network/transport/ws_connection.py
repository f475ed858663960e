"""One TCP connection on the server's port: WebSocket, or Streamable HTTP.

``PortConnection`` is the ``websockets`` connection class the server uses.
Its first bytes decide what it is: ``GET `` stays a WebSocket handshake
(and ``/healthz``), anything else goes to the h11-driven ``HttpConnection``.
As a WebSocket it holds the server's limits: it reports its TCP life so
unfinished handshakes can be counted and shed, inflates compressed data a
slice at a time, waits for room before more replies are written, and drops
itself at once when keepalive fails.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Response
from websockets.protocol import State

from iccm_network.transport.admission import Refusal
from iccm_network.transport.http import HttpConnection, HttpHost
from iccm_network.transport.sockets import address

__all__ = [
    "ConnectionOwner",
    "PortConnection",
    "close_code",
    "peer",
    "refusal_response",
    "websockets_logger",
]

_INFLATE_SLICE = 1024
"""Bytes of a compressed stream inflated at a time: deflate expands at most
about 1,000 times, so a slice yields at most about 1 MiB before the receive
queue can pause reading."""
_COALESCE_BYTES = 64 * 1024
"""Replies framed in one turn of the event loop leave in one write at its
end, unless this many bytes wait already: then at once, so that framed
replies never pile up beside the transport's own flow control."""


class _QuietWebSockets(logging.Filter):
    """Filter for the logger handed to ``websockets``.

    Its INFO lines (connection open/closed, HTTP response sent) duplicate the
    ones this module writes with more detail, and its DEBUG lines list every
    request header, bearer tokens included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.msg == "opening handshake failed":
            # websockets before 17 (what Python 3.10 gets) logs a client's
            # malformed handshake as an ERROR with a traceback; 17 says nothing.
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        if record.levelno == logging.INFO:
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        args = record.args
        if (
            record.levelno == logging.DEBUG
            and isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() in ("authorization", "cookie")
        ):
            record.args = (args[0], "[redacted]")
        return True


websockets_logger = logging.getLogger("iccm_network.websockets")
"""The logger handed to ``websockets``: quieter, and tokens redacted."""
websockets_logger.addFilter(_QuietWebSockets())


class ConnectionOwner(HttpHost, Protocol):
    """What a ``PortConnection`` tells its server (``websocket.Server`` is one)."""

    def tcp_opened(self, connection: PortConnection) -> None:
        """A TCP connection opened: an unfinished handshake until it is served."""

    def tcp_closed(self, connection: PortConnection) -> None:
        """A TCP connection closed."""

    def http_opened(self, connection: PortConnection) -> None:
        """A connection turned out to speak plain HTTP (Streamable HTTP)."""


def refusal_response(connection: ServerConnection, refusal: Refusal | None) -> Response | None:
    """The HTTP response that turns a handshake away, or ``None`` to go on.

    Args:
        connection: The connection in its handshake.
        refusal: What the admission checks said.
    """
    if refusal is None:
        return None
    response = connection.respond(refusal.status, refusal.text)
    for name, value in refusal.headers.items():
        response.headers[name] = value
    return response


def peer(connection: ServerConnection) -> str:
    """The client's address as the logs write it, or ``?``.

    Args:
        connection: A connection.
    """
    remote = connection.remote_address
    return address(remote) if remote else "?"


class PortConnection(ServerConnection):
    """A ``ServerConnection`` that the server can hold to its limits.

    It tells the server when its TCP connection opens and closes (so that
    unfinished handshakes can be counted and shed), inflates compressed data
    a slice at a time (so that a deflate bomb cannot outrun the receive
    queue's flow control), and drops itself at once when keepalive fails.
    """

    # Slots rather than more keys in the instance dict websockets filled
    # already: growing that dict costs about 1.5 KiB per connection.
    __slots__ = (
        "_diverted",
        "_held",
        "_sniffing",
        "_unwritten",
        "calls_begun",
        "http",
        "owner",
        "sending",
    )

    def __init__(self, *args: Any, owner: ConnectionOwner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.calls_begun = 0
        self.sending = asyncio.Lock()
        self._held = bytearray()
        # Until the first bytes show a GET, the connection may be plain HTTP.
        self._sniffing = True
        self.http: HttpConnection | None = None
        self._diverted: asyncio.Future[None] = self.loop.create_future()
        # Bytes of replies framed but not yet written; None when no write is due.
        self._unwritten: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        resume = self.recv_messages.resume

        def resume_and_feed() -> None:
            resume()
            self._feed()

        self.recv_messages.resume = resume_and_feed
        self.owner.tcp_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._held.clear()
        self.owner.tcp_closed(self)
        if self.http is not None:
            self.http.connection_lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._sniffing:
            # A WebSocket upgrade (and /healthz) starts with "GET "; anything
            # else is Streamable HTTP (or garbage), which h11 answers.
            held = bytes(self._held) + data
            if len(held) < 4 and b"GET ".startswith(held):
                self._held[:] = held
                return
            self._held.clear()
            self._sniffing = False
            if not held.startswith(b"GET "):
                self.http = HttpConnection(self, self.owner, peer(self))
                self.owner.http_opened(self)
                self._diverted.set_result(None)
                self.http.feed(held)
                return
            data = held
        if self.http is not None:
            self.http.feed(data)
            return
        if not self.protocol.extensions and not self._held:
            super().data_received(data)
            return
        self._held += data
        self._feed()

    def _feed(self) -> None:
        while self._held and not self.recv_messages.paused:
            chunk = bytes(self._held[:_INFLATE_SLICE])
            del self._held[:_INFLATE_SLICE]
            super().data_received(chunk)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.wait(
            [self.request_rcvd, self.connection_lost_waiter, self._diverted],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._diverted.done():
            # The HTTP side owns the connection now, so websockets' handler
            # must not touch it until it ends: websockets before 17 aborts the
            # transport of a handshake that is cancelled (as at open_timeout,
            # which a keep-alive HTTP connection outlives), 17 and later of
            # one that returns without opening; after the end both are moot.
            lost = self.connection_lost_waiter
            while not lost.done():
                try:
                    await asyncio.shield(lost)
                except asyncio.CancelledError:
                    continue
            return
        await super().handshake(*args, **kwargs)

    def is_open(self) -> bool:
        """True while frames can be sent (the ``Channel`` interface)."""
        return self.state is State.OPEN

    def has_room(self) -> bool:
        """True when a reply can be written now: open, and not held back by a slow reader."""
        return self.protocol.state is State.OPEN and not self.paused

    def write_replies(self, frames: list[str]) -> None:
        """Write the protocol's replies without waiting, as ``send`` would without its wait.

        Only right after ``has_room()``: ``send``'s context manager and drain
        cost more than the write itself for a small reply, and there is
        nothing to wait for. The replies framed in one turn of the event
        loop leave in one write at its end (a call per reply would be a
        system call per reply); anything ``websockets`` sends meanwhile
        writes them first, in order.

        Args:
            frames: Encoded frames, in order.
        """
        size = 0
        for frame in frames:
            data = frame.encode()
            size += len(data)
            self.protocol.send_text(data)
        if self._unwritten is None:
            self._unwritten = size
            self.loop.call_soon(self._write_framed)
        else:
            self._unwritten += size
            if self._unwritten >= _COALESCE_BYTES:
                self._write_framed()

    def _write_framed(self) -> None:
        if self._unwritten is None:
            return  # written already, by the size limit in the same turn
        self._unwritten = None
        chunks = self.protocol.data_to_send()
        if not chunks:
            return  # websockets wrote them with something of its own
        transport = self.transport
        try:
            if all(chunks):
                transport.write(b"".join(chunks))
                return
            # An empty chunk marks the end of the stream. It is never among
            # replies (websockets writes its own at once), but if one were,
            # it is honoured as websockets' send_data() would.
            for chunk in chunks:
                if chunk:
                    transport.write(chunk)
                elif transport.can_write_eof():
                    transport.write_eof()
                else:
                    transport.close()
        except Exception:
            # As send() does: a failed write ends the connection (the read
            # loop then sees it closed).
            self.transport.abort()

    async def send_replies(self, frames: list[str]) -> None:
        """Send the protocol's replies; a closed connection drops them.

        Args:
            frames: Encoded frames, in order.
        """
        try:
            for frame in frames:
                await self.send(frame)
        except ConnectionClosed:
            pass

    async def send_notification(self, frame: str) -> None:
        """Send a progress notification; a closed connection drops it.

        Args:
            frame: One encoded frame.
        """
        try:
            await self.send(frame)
        except ConnectionClosed:
            pass

    async def room_to_send(self, budget: int) -> None:
        """Wait until the replies waiting to be written fit in ``budget`` bytes.

        Args:
            budget: The ``max_unsent_bytes`` setting.
        """
        while self.transport.get_write_buffer_size() > budget and not self.transport.is_closing():
            try:
                await self.drain()
            except Exception:  # the connection was lost; the read loop finds out next
                return

    async def keepalive(self) -> None:
        assert self.ping_interval is not None
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                pong = await self.ping()
            except ConnectionClosed:
                return
            if self.ping_timeout is None:
                continue
            try:
                await asyncio.wait_for(pong, self.ping_timeout)
                if self.debug:
                    self.logger.debug("% received keepalive pong")
            except asyncio.TimeoutError:
                # A peer that misses a pong is taken for dead: it gets its
                # 1011, but nobody waits for it to answer; the TCP connection
                # is dropped now, and with it the connection's calls.
                if self.debug:
                    self.logger.debug("- timed out waiting for keepalive pong")
                self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                self.send_data()
                self.transport.abort()
                return
            except ConnectionClosed:
                return


def close_code(connection: ServerConnection) -> int | None:
    """The close code that ended ``connection``: the one the server sent, if it closed first."""
    sent = connection.protocol.close_sent
    if sent is not None and not connection.protocol.close_rcvd_then_sent:
        return int(sent.code)
    # A plain int: on Python 3.10 "%s" of the CloseCode enum gives its name.
    code = connection.close_code
    return None if code is None else int(code)
