"""The WebSocket transport: moves frames, runs calls, manages connections.

This is the only server module that touches ``websockets`` and the event
loop. Each connection gets a ``ServerProtocol``; its read loop never waits for
a call, so keepalive pings keep flowing however long the tools take. Sync
tools run on daemon worker threads, so a tool stuck in a system call can
neither stall the loop nor keep the process alive after shutdown.

Close codes a client may see:

====  ==============================================================
1000  normal closure
1001  the server is shutting down (1012 with ``shutdown_close_code=1012``)
1003  a binary frame arrived; MCP messages are text frames
1007  a text frame was not valid UTF-8
1009  a message was larger than ``max_message_size``
1011  no keepalive pong arrived within ``ping_timeout``; the
      connection and its calls are dropped at once
====  ==============================================================

What the server bounds against a peer that misbehaves on purpose is listed
in the README ("What the server promises against hostile peers").

HTTP answers at the handshake: 200 or 503 for ``GET /healthz``, 401 for a
missing or wrong bearer token, 403 for an ``Origin`` or ``Host`` that is not
allowed, 503 when ``max_connections`` are open or the server is draining, and
``websockets``' own answers (426 and so on) for other plain HTTP requests.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import http
import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from iccm_network.catalog.table import Catalog
from iccm_network.config import Settings
from iccm_network.logs import CallLog, log_startup, mark_shipper_connection
from iccm_network.protocol.server import ServerInfo, ServerProtocol
from iccm_network.tools.routes import RouteTable
from iccm_network.transport.calls import WorkerThreads
from iccm_network.transport.http import HttpConnection, Refusal
from iccm_network.transport.serving import CallRunner

try:
    import resource
except ImportError:  # Windows has no open-files limit to raise
    resource = None  # type: ignore[assignment]

__all__ = [
    "CLOSE_INVALID_DATA",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_UNSUPPORTED_DATA",
    "Server",
]

logger = logging.getLogger("iccm_network.server")

_MCP = Subprotocol("mcp")

CLOSE_UNSUPPORTED_DATA = 1003
"""Close code for a binary frame: MCP messages are text frames."""
CLOSE_INVALID_DATA = 1007
"""Close code for a text frame that is not valid UTF-8 (sent by ``websockets``)."""
CLOSE_MESSAGE_TOO_BIG = 1009
"""Close code for a message over ``max_message_size`` (sent by ``websockets``)."""

_BATCH_SLICE = 100
"""Batch entries handled before other connections get a turn (about a millisecond)."""
_UNSTARTED = 16
"""Calls started by requests read in a row before the read loop lets them run."""
_INFLATE_SLICE = 1024
"""Bytes of a compressed stream inflated at a time: deflate expands at most
about 1,000 times, so a slice yields at most about 1 MiB before the receive
queue can pause reading."""
_FD_RESERVE = 64
"""Open files kept free for logs, the listening sockets and log shipping."""
_ACCEPT_BATCH = 64
"""Connections asyncio accepts in one go, before any of them can be counted."""


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


_websockets_logger = logging.getLogger("iccm_network.websockets")
_websockets_logger.addFilter(_QuietWebSockets())


def _listening_socket(port: int) -> socket.socket:
    """One socket for every interface, IPv4 and IPv6, on one port.

    ``create_server(host=None)`` opens a socket per address family, and with
    port 0 each would get a different port; a dual-stack socket does not.
    """
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[Any, ...] = ("::", port)
    except OSError:  # a host without IPv6
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Connection(ServerConnection):
    """A ``ServerConnection`` that the server can hold to its limits.

    It tells the server when its TCP connection opens and closes (so that
    unfinished handshakes can be counted and shed), inflates compressed data
    a slice at a time (so that a deflate bomb cannot outrun the receive
    queue's flow control), and drops itself at once when keepalive fails.
    """

    def __init__(self, *args: Any, owner: Server, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.calls_begun = 0
        self.sending = asyncio.Lock()
        self._held = bytearray()
        # Until the first bytes show a GET, the connection may be plain HTTP.
        self._sniffing = True
        self.http: HttpConnection | None = None
        self._diverted: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        resume = self.recv_messages.resume

        def resume_and_feed() -> None:
            resume()
            self._feed()

        self.recv_messages.resume = resume_and_feed
        self.owner._tcp_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._held.clear()
        self.owner._tcp_closed(self)
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
                self.http = HttpConnection(self, self.owner, _peer(self))
                self.owner._http_opened(self)
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
            # The HTTP side owns the connection now; websockets' handler
            # ends here without touching it (its own cancellation path).
            raise asyncio.CancelledError
        await super().handshake(*args, **kwargs)

    def is_open(self) -> bool:
        """True while frames can be sent (the ``Channel`` interface)."""
        return self.state is State.OPEN

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


def _open_files_limit(needed: int) -> int | None:
    """Raise the soft open-files limit toward the hard one; return the soft limit.

    Args:
        needed: Open files the configured limits could use.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "the open-files limit is %d, below the %d that max_connections and"
            " max_handshakes need; raise it (ulimit -n) or lower max_connections",
            soft,
            needed,
        )
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _deepen_backlog(sockets: Sequence[Any]) -> None:
    """Let the kernel queue up to ``somaxconn`` connections on each listening socket.

    asyncio's default backlog of 100 drops SYNs when a fleet of clients
    reconnects at once; the accept loop still takes ``_ACCEPT_BATCH`` at a time.
    """
    for listening in sockets:
        try:
            with socket.socket(fileno=os.dup(listening.fileno())) as sock:
                sock.listen(socket.SOMAXCONN)
        except OSError:  # pragma: no cover - the kernel's default stays
            pass


_LOOPBACK_ORIGIN = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?")


def _loopback_only(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def _response(connection: ServerConnection, refusal: Refusal | None) -> Response | None:
    if refusal is None:
        return None
    response = connection.respond(refusal.status, refusal.text)
    for name, value in refusal.headers.items():
        response.headers[name] = value
    return response


def _open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def _address(address: Sequence[Any]) -> str:
    host = str(address[0]).removeprefix("::ffff:")
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return _address(address) if address else "?"


class Server:
    """A running (or ready to run) WebSocket server for one route table.

    Args:
        routes: The compiled tools.
        info: What the server says about itself.
        settings: Bounds, timeouts, security and addresses.
        catalog: The resources, prompts and completion hooks to serve, if any.
    """

    def __init__(
        self,
        routes: RouteTable,
        info: ServerInfo,
        settings: Settings,
        *,
        catalog: Catalog | None = None,
    ) -> None:
        self.routes = routes
        self.catalog = catalog
        self.info = info
        self.settings = settings
        self._server: WebSocketServer | None = None
        self._connections: dict[_Connection, CallRunner] = {}
        self._protocols: dict[_Connection, ServerProtocol] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notices: set[asyncio.Task[None]] = set()
        # Connections that passed the handshake checks: counted against
        # max_connections from then on, so a burst of handshakes cannot
        # overshoot the bound before their handlers start.
        self._admitted: set[ServerConnection] = set()
        # Connections in their opening handshake, oldest first.
        self._handshaking: dict[_Connection, None] = {}
        # Connections that speak plain HTTP (closed at the end of shutdown).
        self._http: set[_Connection] = set()
        # Open files left for connections once the server is listening.
        self._fd_room: float = math.inf
        self._shed = 0
        self._shed_logged = -math.inf
        self._loop_errors: Callable[..., Any] | None = None
        self._workers = WorkerThreads(settings.worker_threads)
        self.call_log = CallLog(settings.log_summary_interval)
        """How finished calls are logged (both transports share it)."""
        self._draining = False
        self._abandoning = False
        self._stopping: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (useful after binding port 0)."""
        return int(self.sockets[0].getsockname()[1])

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return list(self._server.sockets)

    @property
    def url(self) -> str:
        """A ``ws://`` URL that reaches the server from this machine."""
        host = self.settings.host
        if host in (None, "", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        assert host is not None
        return f"ws://[{host}]:{self.port}" if ":" in host else f"ws://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Open WebSocket connections."""
        return len(self._connections)

    @property
    def draining(self) -> bool:
        """True once shutdown has begun."""
        return self._draining

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting connections; returns once listening.

        Raises:
            RuntimeError: The server was started before.
            OSError: The address cannot be bound.
        """
        if self._server is not None or self._stopping is not None:
            raise RuntimeError("a Server can be started only once")
        self._loop = asyncio.get_running_loop()
        settings = self.settings
        options: dict[str, Any] = {
            "process_request": self._process_request,
            "process_response": self._process_response,
            "select_subprotocol": self._select_subprotocol,
            "max_size": settings.max_message_size,
            "ping_interval": settings.ping_interval,
            "ping_timeout": settings.ping_timeout,
            "close_timeout": settings.close_timeout,
            "compression": "deflate" if settings.compression == "deflate" else None,
            # Received frames queued before reading pauses; with compression a
            # frame may inflate to max_message_size, so only one is let wait.
            "max_queue": 1 if settings.compression == "deflate" else 16,
            "write_limit": settings.max_unsent_bytes,
            "create_connection": functools.partial(_Connection, owner=self),
            "logger": _websockets_logger,
            # asyncio accepts up to ``backlog`` connections in a row before
            # any is counted, and keeps trying after running out of files;
            # the kernel's queue is deepened after start (see _deepen_backlog).
            "backlog": _ACCEPT_BATCH,
        }
        limit = _open_files_limit(settings.max_connections + settings.max_handshakes + _FD_RESERVE)
        if limit is not None:
            self._fd_room = limit - _open_files() - _FD_RESERVE - _ACCEPT_BATCH
        self._quiet_accept_errors()
        if settings.host is None or settings.host == "":
            self._server = await serve(
                self._handle, sock=_listening_socket(settings.port), **options
            )
        else:
            self._server = await serve(self._handle, settings.host, settings.port, **options)
        _deepen_backlog(self._server.sockets)
        log_startup(self)
        self.call_log.start()

    def replace_routes(self, routes: RouteTable) -> None:
        """Serve ``routes`` from now on and tell the connections their tools changed.

        Safe to call from any thread; ``tools/list`` sees the new table as
        soon as this runs on the server's loop.

        Args:
            routes: The new route table.
        """
        self.routes = routes
        self.announce_change("tools", lambda protocol: protocol.replace_routes(routes))

    def announce_change(self, kind: str, change: Callable[[ServerProtocol], None]) -> None:
        """Apply ``change`` to every open connection, then send each its list change.

        Handshake-era connections get ``notifications/<kind>/list_changed``.
        Before the server starts this does nothing (connections made later
        see the change from the start). Safe to call from any thread.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
            change: Updates one connection's ``ServerProtocol``.
        """
        loop = self._loop
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
        for connection, protocol in self._protocols.items():
            change(protocol)
            frame = protocol.list_changed_frame(kind)
            if frame is not None:
                task = asyncio.create_task(self._notify(connection, frame))
                self._notices.add(task)
                task.add_done_callback(self._notices.discard)

    @staticmethod
    async def _notify(connection: _Connection, frame: str) -> None:
        try:
            async with connection.sending:
                await connection.send(frame)
        except ConnectionClosed:
            pass

    async def serve_forever(self) -> None:
        """Serve until ``shutdown()`` completes."""
        await self._closed.wait()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop gracefully: refuse newcomers, drain, then close the connections.

        The whole shutdown takes at most ``grace`` seconds (0.2 s when less
        is asked for). In-flight calls, and calls that arrive on open
        connections meanwhile, get all of it but the closing time (1 s, or a
        quarter of ``grace`` when that is shorter); ``/healthz`` answers 503
        and new handshakes get HTTP 503 all along. Calls still running then
        are cancelled and answered with a tool error, connections are closed
        with ``shutdown_close_code`` (1001 by default), and those that do not
        finish the closing handshake in time are dropped. Concurrent calls share one shutdown.

        Args:
            grace: Seconds for the whole shutdown; the ``shutdown_grace``
                setting by default.
        """
        if self._server is None:
            self._closed.set()
            return
        if self._stopping is None:
            budget = self.settings.shutdown_grace if grace is None else grace
            self._stopping = asyncio.create_task(self._shut_down(max(budget, 0.2)))
        await asyncio.shield(self._stopping)

    async def _shut_down(self, budget: float) -> None:
        try:
            await self._drain_and_close(budget)
        finally:
            # Whatever happened, serve_forever() must return and threads go.
            self._workers.stop()
            asyncio.get_running_loop().set_exception_handler(self._loop_errors)
            self._closed.set()
            self.call_log.stop()
            logger.info("server stopped")

    async def _drain_and_close(self, budget: float) -> None:
        assert self._server is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + budget
        calls_end = end - min(1.0, budget / 4)
        self._draining = True
        logger.info(
            "shutting down: %d connections, %d calls in flight, grace %g s",
            len(self._connections),
            len(self._calls()),
            budget,
        )
        # Calls started during the drain are waited for too, to the same end.
        while (running := self._calls()) and (left := calls_end - loop.time()) > 0:
            await asyncio.wait(running, timeout=left)
        abandoned = self._calls()
        if abandoned:
            logger.warning(
                "cancelling %d calls still running after the grace period", len(abandoned)
            )
            self._abandoning = True
            for task in abandoned:
                task.cancel()
            await asyncio.wait(abandoned, timeout=max((end - loop.time()) / 2, 0.01))
        server = self._server
        server.close(close_connections=False)  # stop listening
        for plain in list(self._http):
            # Their calls have ended and their replies are written: an HTTP
            # connection closes without a closing handshake.
            plain.transport.close()
        connections = (set(self._connections) - self._http) | server.connections
        code = self.settings.shutdown_close_code
        closing = [
            asyncio.create_task(connection.close(code, "server shutting down"))
            for connection in connections
        ]
        if closing:
            await asyncio.wait(closing, timeout=max(end - loop.time(), 0.01))
        stuck = [c for c in connections if c.state is not State.CLOSED]
        if stuck:
            logger.warning("dropping %d connections that did not close in time", len(stuck))
            for connection in stuck:
                connection.transport.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=max(end - loop.time(), 0.05))
        except asyncio.TimeoutError:
            logger.warning("connection handlers still running after shutdown; leaving them")

    def _calls(self) -> list[asyncio.Task[None]]:
        return [task for runner in self._connections.values() for task in runner.tasks]

    def _quiet_accept_errors(self) -> None:
        """Log a failed accept (out of open files) as one line, not a traceback.

        asyncio reports each one through the loop's exception handler with a
        traceback, and retries a second later; during a flood that is
        megabytes of log saying the same thing.
        """
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        self._loop_errors = previous
        failed = [0, -math.inf]  # failures not yet logged, when the last line was

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("socket.accept() out of"):
                # asyncio retries each queued connection in a row: one line a second.
                failed[0] += 1
                if loop.time() - failed[1] >= 1.0:
                    logger.warning(
                        "cannot accept %d connections: %s; retrying in a second",
                        failed[0],
                        context.get("exception"),
                    )
                    failed[0], failed[1] = 0, loop.time()
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handle)

    # -- TCP connections -----------------------------------------------------

    def _tcp_opened(self, connection: _Connection) -> None:
        # Every unfinished handshake holds an open file; past the limit the
        # oldest is dropped, as nginx does against slowloris, so that new
        # clients always find a file to be accepted with.
        handshaking = self._handshaking
        limit = max(1, min(self.settings.max_handshakes, self._fd_room - len(self._connections)))
        while len(handshaking) >= limit:
            oldest = next(iter(handshaking))
            del handshaking[oldest]
            oldest.transport.abort()
            self._shed += 1
        if self._shed:
            # A flood sheds thousands: one line a second says enough.
            now = time.monotonic()
            if now - self._shed_logged >= 1.0:
                logger.warning(
                    "dropped %d unfinished handshakes: %d pending at most"
                    " (max_handshakes, or what the open-files limit leaves)",
                    self._shed,
                    limit,
                )
                self._shed = 0
                self._shed_logged = now
        handshaking[connection] = None

    def _tcp_closed(self, connection: _Connection) -> None:
        self._handshaking.pop(connection, None)
        self._http.discard(connection)

    # -- handshake -----------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return _MCP if _MCP in offered else None

    def _health(self, connection: ServerConnection) -> Response:
        status, body = self.health()
        response = connection.respond(status, body.decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # The request is complete: from here on the handshake finishes in
        # one turn of the loop, so it no longer counts as unfinished.
        self._handshaking.pop(cast(_Connection, connection), None)
        if request.path.partition("?")[0] == "/healthz":
            # The Host check guards against DNS rebinding, which would let a
            # web page read the server's name and version here too.
            return self._host_refusal(connection, request.headers) or self._health(connection)
        if "upgrade" not in ",".join(request.headers.get_all("Connection")).lower():
            # A plain GET: Streamable HTTP takes POST here, WebSocket the upgrade.
            status = http.HTTPStatus.METHOD_NOT_ALLOWED
            response = connection.respond(status, "Method not allowed\n")
            response.headers["Allow"] = "GET, POST"
            return response
        if self._draining:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server shutting down\n")
        refusal = self._refusal(connection, request.headers)
        if refusal is not None:
            return refusal
        if not self._admit(connection):
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            self._admitted.discard(connection)

    def _admit(self, connection: ServerConnection) -> bool:
        limit = self.settings.max_connections
        if len(self._admitted) >= limit:
            # A handshake that failed after admission never reached the handler.
            self._admitted = {c for c in self._admitted if c.state is not State.CLOSED}
            if len(self._admitted) >= limit:
                logger.warning(
                    "refused a connection from %s: %d connections open (max_connections)",
                    _peer(connection),
                    len(self._admitted),
                )
                return False
        self._admitted.add(connection)
        return True

    def _refusal(self, connection: ServerConnection, headers: Headers) -> Response | None:
        return _response(connection, self.check_request(_peer(connection), headers))

    def _host_refusal(self, connection: ServerConnection, headers: Headers) -> Response | None:
        return _response(connection, self.check_host(_peer(connection), headers))

    def check_request(self, peer: str, headers: Headers) -> Refusal | None:
        """The Origin, Host and bearer token checks, for both transports.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.

        Returns:
            Why the request is refused, or ``None`` to serve it.
        """
        settings = self.settings
        for name in ("Origin", "Host", "Authorization"):
            # headers.get() raises on a repeated header; a repeat is also how
            # a request smuggles a second value past a check.
            if len(headers.get_all(name)) > 1:
                logger.warning("refused a connection from %s: repeated %s", peer, name)
                return Refusal(400, f"Repeated {name} header\n")
        origin = headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin):
            logger.warning("refused a connection from %s: origin %r", peer, origin)
            return Refusal(403, "Origin not allowed\n")
        refusal = self.check_host(peer, headers)
        if refusal is not None:
            return refusal
        token = settings.auth_token
        if token is not None:
            scheme, _, given = headers.get("Authorization", "").partition(" ")
            # Compare fixed-length digests: compare_digest on the tokens
            # themselves would still give their length away.
            given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape"))
            expected_digest = hashlib.sha256(token.encode("utf-8", "surrogateescape"))
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given_digest.digest(), expected_digest.digest()
            ):
                logger.warning("refused a connection from %s: missing or wrong bearer token", peer)
                return Refusal(401, "Unauthorized\n", {"WWW-Authenticate": "Bearer"})
        return None

    def _origin_allowed(self, origin: str) -> bool:
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        # Bound to loopback only, the server is reachable from this machine
        # alone; its own pages (an Inspector on localhost) may call it, and
        # the Host check below still stops DNS rebinding.
        return _loopback_only(self.settings.host) and _LOOPBACK_ORIGIN.fullmatch(origin) is not None

    def check_host(self, peer: str, headers: Headers) -> Refusal | None:
        """The Host check alone (DNS-rebinding protection), for ``/healthz`` too.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.

        Returns:
            Why the request is refused, or ``None``.
        """
        allowed_hosts = self.settings.allowed_hosts
        if not allowed_hosts:
            return None
        if len(headers.get_all("Host")) > 1:
            logger.warning("refused a connection from %s: repeated Host", peer)
            return Refusal(400, "Repeated Host header\n")
        host = headers.get("Host", "").lower()
        name = host if host.endswith("]") else host.rpartition(":")[0] or host
        allowed = {h.lower() for h in allowed_hosts}
        if host not in allowed and name not in allowed and name.strip("[]") not in allowed:
            logger.warning("refused a connection from %s: host %r", peer, host)
            return Refusal(403, "Host not allowed\n")
        return None

    # -- Streamable HTTP -----------------------------------------------------

    @property
    def workers(self) -> WorkerThreads:
        """Where sync tools run."""
        return self._workers

    def is_abandoning(self) -> bool:
        """True when shutdown cancels the calls still running."""
        return self._abandoning

    def health(self) -> tuple[int, bytes]:
        """The ``/healthz`` status and JSON body.

        Returns:
            200 while serving, 503 while draining, and the body.
        """
        body = {
            "status": "draining" if self._draining else "ok",
            "name": self.info.name,
            "version": self.info.version,
            "tools": len(self.routes),
            "connections": len(self._connections),
        }
        return (503 if self._draining else 200), (json.dumps(body) + "\n").encode()

    def http_busy(self, connection: Any, runner: CallRunner) -> bool:
        """Count an HTTP connection as serving a request.

        Args:
            connection: The server's connection object.
            runner: The request's call runner (drained at shutdown).

        Returns:
            False when ``max_connections`` are busy already.
        """
        self._handshaking.pop(connection, None)
        if not self._admit(connection):
            return False
        self._connections[connection] = runner
        return True

    def http_idle(self, connection: Any) -> None:
        """Count an HTTP connection as waiting for its next request again.

        Args:
            connection: The server's connection object.
        """
        self._connections.pop(connection, None)
        self._admitted.discard(connection)
        if connection.state is not State.CLOSED and connection not in self._handshaking:
            # An idle keep-alive connection holds a file like an unfinished
            # handshake does, and is shed like one.
            self._tcp_opened(connection)

    def _http_opened(self, connection: _Connection) -> None:
        self._http.add(connection)

    # -- connections ---------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, _Connection)
        self._handshaking.pop(connection, None)
        started = time.monotonic()
        peer = _peer(connection)
        request = connection.request
        path = request.path if request else "?"
        origin = request.headers.get("Origin") if request else None
        # Marks this task and the call tasks it starts, so that a log
        # shipper's own traffic is never shipped back to it.
        shipper = request is not None and mark_shipper_connection(request.headers)
        fields: dict[str, Any] = {
            "peer": peer,
            "path": path,
            "origin": origin,
            "subprotocol": connection.subprotocol,
            "log_shipper": shipper,
        }
        logger.info(
            "connection open: peer=%s path=%r origin=%r subprotocol=%s",
            peer,
            path,
            origin,
            connection.subprotocol,
            extra=fields,
        )
        settings = self.settings
        protocol = ServerProtocol(
            self.routes,
            self.info,
            max_in_flight=settings.max_in_flight,
            max_batch=settings.max_batch,
            batch_slice=_BATCH_SLICE,
            catalog=self.catalog,
        )
        runner = CallRunner(
            protocol,
            connection,
            self._workers,
            default_timeout=settings.tool_timeout,
            abandoning=self._is_abandoning,
            call_log=self.call_log,
        )
        self._connections[connection] = runner
        start_calls = runner.start_calls
        listener = functools.partial(self._resource_updated, connection, protocol)
        catalog = self.catalog
        if catalog is not None:
            catalog.listeners.add(listener)
        self._protocols[connection] = protocol
        launched = 0
        try:
            async for message in connection:
                if not isinstance(message, str):
                    await connection.close(CLOSE_UNSUPPORTED_DATA, "MCP messages are text frames")
                    break
                protocol.receive_text(message)
                del message
                while True:
                    launched += start_calls()
                    frames = protocol.data_to_send()
                    if frames:
                        async with connection.sending:
                            for frame in frames:
                                await connection.send(frame)
                        del frames
                    if launched - connection.calls_begun >= _UNSTARTED or protocol.more_to_process:
                        # Requests read in a row have started calls that have
                        # not run yet: let them run (and their replies count
                        # against the budget), and other connections have a
                        # turn, before the next slice or message is read.
                        await asyncio.sleep(0)
                    if not protocol.more_to_process:
                        break
                    protocol.process_more()
                # Replies the client has not read stop the reading of its
                # requests, so they cannot pile up in the server's memory.
                await connection.room_to_send(settings.max_unsent_bytes)
        except ConnectionClosed:
            pass
        finally:
            if catalog is not None:
                catalog.listeners.discard(listener)
            runner.cancel_all()
            del self._connections[connection]
            del self._protocols[connection]
            self._admitted.discard(connection)
            duration = time.monotonic() - started
            code = _close_code(connection)
            logger.info(
                "connection closed: peer=%s path=%r duration=%.3fs code=%s reason=%r",
                peer,
                path,
                duration,
                code,
                connection.close_reason or "",
                extra={
                    **fields,
                    "duration": round(duration, 3),
                    "close_code": code,
                    "close_reason": connection.close_reason or "",
                },
            )

    def _is_abandoning(self) -> bool:
        return self._abandoning

    async def _resource_updated(
        self, connection: _Connection, protocol: ServerProtocol, uri: str
    ) -> None:
        protocol.resource_updated(uri)
        frames = protocol.data_to_send()
        if frames and connection.is_open():
            async with connection.sending:
                for frame in frames:
                    await connection.send_notification(frame)


def _close_code(connection: ServerConnection) -> int | None:
    """The close code that ended ``connection``: the one the server sent, if it closed first."""
    sent = connection.protocol.close_sent
    if sent is not None and not connection.protocol.close_rcvd_then_sent:
        return int(sent.code)
    # A plain int: on Python 3.10 "%s" of the CloseCode enum gives its name.
    code = connection.close_code
    return None if code is None else int(code)
