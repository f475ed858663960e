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

HTTP answers at the handshake: 200 or 503 for ``GET /healthz``, 401, 403 or
503 for a refused handshake, 405 for a plain ``GET``; any other request on
the port is Streamable HTTP (``transport.http``).
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from iccm_network.catalog.table import Catalog
from iccm_network.config import Settings
from iccm_network.logs import CallLog, log_startup, mark_shipper_connection
from iccm_network.protocol.server import ServerInfo, ServerProtocol
from iccm_network.tools.routes import RouteTable
from iccm_network.transport.admission import Admission, HeaderLookup, Refusal
from iccm_network.transport.calls import WorkerThreads
from iccm_network.transport.list_changes import ListChanges
from iccm_network.transport.serving import CallRunner, Channel
from iccm_network.transport.sockets import (
    ACCEPT_BATCH,
    FD_RESERVE,
    PendingHandshakes,
    deepen_backlog,
    listening_socket,
    open_files,
    open_files_limit,
    quiet_accept_errors,
)
from iccm_network.transport.ws_connection import (
    PortConnection,
    close_code,
    refusal_response,
    websockets_logger,
)
from iccm_network.transport.ws_connection import peer as peer_of

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
        self._connections: dict[PortConnection, CallRunner] = {}
        self._changes = ListChanges()
        # Connections that passed the handshake checks: counted against
        # max_connections from then on, so a burst of handshakes cannot
        # overshoot the bound before their handlers start.
        self._admitted: set[ServerConnection] = set()
        # Connections in their opening handshake, oldest first, shed past the limit.
        self._handshaking = PendingHandshakes(settings.max_handshakes)
        # Connections that speak plain HTTP (closed at the end of shutdown).
        self._http: set[PortConnection] = set()
        self._loop_errors: Callable[..., Any] | None = None
        self._workers = WorkerThreads(settings.worker_threads)
        self._admission = Admission(settings)
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
        self._changes.loop = asyncio.get_running_loop()
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
            "create_connection": functools.partial(PortConnection, owner=self),
            "logger": websockets_logger,
            # asyncio accepts up to ``backlog`` connections in a row before
            # any is counted, and keeps trying after running out of files;
            # the kernel's queue is deepened after start (see _deepen_backlog).
            "backlog": ACCEPT_BATCH,
        }
        limit = open_files_limit(settings.max_connections + settings.max_handshakes + FD_RESERVE)
        if limit is not None:
            self._handshaking.fd_room = limit - open_files() - FD_RESERVE - ACCEPT_BATCH
        self._loop_errors = quiet_accept_errors(asyncio.get_running_loop())
        if settings.host is None or settings.host == "":
            self._server = await serve(
                self._handle, sock=listening_socket(settings.port), **options
            )
        else:
            self._server = await serve(self._handle, settings.host, settings.port, **options)
        deepen_backlog(self._server.sockets)
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
        Safe to call from any thread.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
            change: Updates one connection's ``ServerProtocol``.
        """
        self._changes.announce(kind, change)

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
        # Listen streams (2026-07-28) end first, each with its result (as a
        # call ends with its reply); the writing is waited for after the calls.
        ending = asyncio.create_task(self._changes.end_listens())
        # Calls started during the drain are waited for too, to the same end.
        while (running := self._calls()) and (left := calls_end - loop.time()) > 0:
            await asyncio.wait(running, timeout=left)
        # Streams opened during the drain end too.
        late = asyncio.create_task(self._changes.end_listens())
        await asyncio.wait([ending, late], timeout=max(calls_end - loop.time(), 0.01))
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

    # -- TCP connections -----------------------------------------------------

    def tcp_opened(self, connection: PortConnection) -> None:
        """A TCP connection opened: an unfinished handshake until it is served."""
        self._handshaking.add(connection, open_connections=len(self._connections))

    def tcp_closed(self, connection: PortConnection) -> None:
        """A TCP connection closed."""
        self._handshaking.discard(connection)
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
        self._handshaking.discard(connection)
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
                    peer_of(connection),
                    len(self._admitted),
                )
                return False
        self._admitted.add(connection)
        return True

    def _refusal(self, connection: ServerConnection, headers: Headers) -> Response | None:
        return refusal_response(connection, self.check_request(peer_of(connection), headers))

    def _host_refusal(self, connection: ServerConnection, headers: Headers) -> Response | None:
        return refusal_response(connection, self.check_host(peer_of(connection), headers))

    def check_request(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Origin, Host and bearer token checks, for both transports.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.
        """
        return self._admission.check_request(peer, headers)

    def check_host(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Host check alone (DNS-rebinding protection), for ``/healthz`` too.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.
        """
        return self._admission.check_host(peer, headers)

    # -- Streamable HTTP -----------------------------------------------------

    def is_abandoning(self) -> bool:
        """True when shutdown cancels the calls still running."""
        return self._abandoning

    def protocol_and_runner(
        self, channel: Channel, *, version: str | None = None, batch_slice: int | None = None
    ) -> tuple[ServerProtocol, CallRunner]:
        """A ``ServerProtocol`` for one connection or request, and the runner of its calls.

        Both transports serve through this, so both get the same tools,
        bounds, timeout, worker threads and call log.

        Args:
            channel: Where the protocol's frames go.
            version: The revision to serve until an ``initialize`` says
                otherwise (a Streamable HTTP request names its own).
            batch_slice: Batch entries handled at a time; ``None`` for all.
        """
        settings = self.settings
        protocol = ServerProtocol(
            self.routes,
            self.info,
            max_in_flight=settings.max_in_flight,
            max_batch=settings.max_batch,
            max_subscriptions=settings.max_subscriptions,
            batch_slice=batch_slice,
            catalog=self.catalog,
            version=version,
        )
        runner = CallRunner(
            protocol,
            channel,
            self._workers,
            default_timeout=settings.tool_timeout,
            abandoning=self.is_abandoning,
            call_log=self.call_log,
        )
        return protocol, runner

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
        self._handshaking.discard(connection)
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
            self.tcp_opened(connection)

    def follow(self, channel: Channel, protocol: ServerProtocol) -> Callable[[], None]:
        """Send ``channel`` its resource updates and list changes until told to stop.

        Args:
            channel: A connection, or an HTTP ``subscriptions/listen`` stream.
            protocol: Its protocol, which knows what it subscribed to.

        Returns:
            The function that stops it.
        """
        return self._changes.follow(channel, protocol, self.catalog)

    def http_opened(self, connection: PortConnection) -> None:
        self._http.add(connection)

    # -- connections ---------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, PortConnection)
        self._handshaking.discard(connection)
        started = time.monotonic()
        peer = peer_of(connection)
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
        protocol, runner = self.protocol_and_runner(connection, batch_slice=_BATCH_SLICE)
        self._connections[connection] = runner
        start_calls = runner.start_calls
        unfollow = self.follow(connection, protocol)
        launched = 0
        max_unsent = self.settings.max_unsent_bytes
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
                        await runner.send(frames)
                        del frames
                    # Only this loop adds or takes batch entries, so this
                    # holds across the sleep below.
                    more = protocol.more_to_process
                    if more or launched - connection.calls_begun >= _UNSTARTED:
                        # Requests read in a row have started calls that have
                        # not run yet: let them run (and their replies count
                        # against the budget), and other connections have a
                        # turn, before the next slice or message is read.
                        await asyncio.sleep(0)
                    if not more:
                        break
                    protocol.process_more()
                # Replies the client has not read stop the reading of its
                # requests, so they cannot pile up in the server's memory.
                if connection.transport.get_write_buffer_size() > max_unsent:
                    await connection.room_to_send(max_unsent)
        except ConnectionClosed:
            pass
        finally:
            unfollow()
            runner.cancel_all()
            del self._connections[connection]
            self._admitted.discard(connection)
            duration = time.monotonic() - started
            code = close_code(connection)
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
