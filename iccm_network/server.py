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
1011  no keepalive pong arrived within ``ping_timeout``
====  ==============================================================

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
import inspect
import json
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from iccm_network.calls import WorkerThreads, run_call
from iccm_network.config import Settings
from iccm_network.errors import ToolError
from iccm_network.logs import CallLog, log_startup, mark_shipper_connection
from iccm_network.protocol import CallTimedOut, ServerInfo, ServerProtocol, ToolCall
from iccm_network.routes import RouteTable

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

_SHUTDOWN_MESSAGE = "the server shut down before the call finished"


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
    """

    def __init__(self, routes: RouteTable, info: ServerInfo, settings: Settings) -> None:
        self.routes = routes
        self.info = info
        self.settings = settings
        self._server: WebSocketServer | None = None
        self._connections: dict[ServerConnection, dict[asyncio.Task[None], ToolCall]] = {}
        # Connections that passed the handshake checks: counted against
        # max_connections from then on, so a burst of handshakes cannot
        # overshoot the bound before their handlers start.
        self._admitted: set[ServerConnection] = set()
        self._workers = WorkerThreads(settings.worker_threads)
        self._call_log = CallLog(settings.log_summary_interval)
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
        settings = self.settings
        options: dict[str, Any] = {
            "process_request": self._process_request,
            "process_response": self._process_response,
            "select_subprotocol": self._select_subprotocol,
            "max_size": settings.max_message_size,
            "ping_interval": settings.ping_interval,
            "ping_timeout": settings.ping_timeout,
            "logger": _websockets_logger,
            # asyncio's default backlog of 100 drops SYNs when a fleet of
            # clients reconnects at once; the kernel caps this at somaxconn.
            "backlog": socket.SOMAXCONN,
        }
        if settings.host is None or settings.host == "":
            self._server = await serve(
                self._handle, sock=_listening_socket(settings.port), **options
            )
        else:
            self._server = await serve(self._handle, settings.host, settings.port, **options)
        log_startup(self)
        self._call_log.start()

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
            self._closed.set()
            self._call_log.stop()
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
        connections = set(self._connections) | server.connections
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
        return [task for tasks in self._connections.values() for task in tasks]

    # -- handshake -----------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return _MCP if _MCP in offered else None

    def _health(self, connection: ServerConnection) -> Response:
        body = {
            "status": "draining" if self._draining else "ok",
            "name": self.info.name,
            "version": self.info.version,
            "tools": len(self.routes),
            "connections": len(self._connections),
        }
        status = http.HTTPStatus.SERVICE_UNAVAILABLE if self._draining else http.HTTPStatus.OK
        response = connection.respond(status, json.dumps(body) + "\n")
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] == "/healthz":
            return self._health(connection)
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
        settings = self.settings
        for name in ("Origin", "Host", "Authorization"):
            # headers.get() raises on a repeated header; a repeat is also how
            # a request smuggles a second value past a check.
            if len(headers.get_all(name)) > 1:
                logger.warning("refused a connection from %s: repeated %s", _peer(connection), name)
                return connection.respond(http.HTTPStatus.BAD_REQUEST, f"Repeated {name} header\n")
        origin = headers.get("Origin")
        if origin is not None and "*" not in settings.allowed_origins:
            if origin not in settings.allowed_origins:
                logger.warning("refused a connection from %s: origin %r", _peer(connection), origin)
                return connection.respond(http.HTTPStatus.FORBIDDEN, "Origin not allowed\n")
        if settings.allowed_hosts:
            host = headers.get("Host", "").lower()
            name = host if host.endswith("]") else host.rpartition(":")[0] or host
            allowed = {h.lower() for h in settings.allowed_hosts}
            if host not in allowed and name not in allowed and name.strip("[]") not in allowed:
                logger.warning("refused a connection from %s: host %r", _peer(connection), host)
                return connection.respond(http.HTTPStatus.FORBIDDEN, "Host not allowed\n")
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
                logger.warning(
                    "refused a connection from %s: missing or wrong bearer token",
                    _peer(connection),
                )
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        return None

    # -- connections ---------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
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
        protocol = ServerProtocol(self.routes, self.info, max_in_flight=self.settings.max_in_flight)
        # Each running call's task; a finished task removes itself.
        tasks: dict[asyncio.Task[None], ToolCall] = {}
        self._connections[connection] = tasks
        try:
            async for message in connection:
                if not isinstance(message, str):
                    await connection.close(CLOSE_UNSUPPORTED_DATA, "MCP messages are text frames")
                    break
                protocol.receive_text(message)
                for call in protocol.calls_to_run():
                    task = asyncio.create_task(self._run(connection, protocol, call))
                    tasks[task] = call
                    task.add_done_callback(tasks.pop)
                for call in protocol.calls_to_cancel():
                    for task, running in tasks.items():  # rare: a linear search will do
                        # A task cancelled before its first step would end
                        # without _run completing (and logging) the call; an
                        # unstarted one sees call.cancelled instead.
                        if running is call and not _unstarted(task):
                            task.cancel()
                for frame in protocol.data_to_send():
                    await connection.send(frame)
                # More tasks than calls in flight means replies wait for a
                # client that does not read them: stop reading from it until
                # one is delivered, so its replies cannot pile up in memory.
                while len(tasks) > self.settings.max_in_flight:
                    await asyncio.wait(list(tasks), return_when=asyncio.FIRST_COMPLETED)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            del self._connections[connection]
            self._admitted.discard(connection)
            duration = time.monotonic() - started
            # A plain int: on Python 3.10 "%s" of the CloseCode enum gives its name.
            code = None if connection.close_code is None else int(connection.close_code)
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

    async def _run(
        self, connection: ServerConnection, protocol: ServerProtocol, call: ToolCall
    ) -> None:
        tool = call.tool
        started = time.perf_counter()
        outcome: Any
        send_progress = None
        if tool.context_parameter is not None:
            send_progress = functools.partial(self._send_progress, connection, protocol)
        try:
            if call.cancelled:  # cancelled before it started
                raise asyncio.CancelledError
            outcome = await run_call(
                call,
                self._workers,
                default_timeout=self.settings.tool_timeout,
                send_progress=send_progress,
            )
        except asyncio.CancelledError as exc:
            outcome = ToolError(_SHUTDOWN_MESSAGE) if self._abandoning else exc
        self._call_log.finished(
            tool.name, call.request_id, (time.perf_counter() - started) * 1000, _describe(outcome)
        )
        protocol.complete(call, outcome)
        try:
            for frame in protocol.data_to_send():
                await connection.send(frame)
        except ConnectionClosed:
            pass

    async def _send_progress(
        self, connection: ServerConnection, protocol: ServerProtocol, params: dict[str, Any]
    ) -> None:
        try:
            await connection.send(protocol.progress_frame(params))
        except ConnectionClosed:
            pass


def _unstarted(task: asyncio.Task[None]) -> bool:
    coro = task.get_coro()
    return inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED


def _describe(outcome: Any) -> str:
    if not isinstance(outcome, BaseException):
        return "ok"  # the common case first: one check per call
    if isinstance(outcome, CallTimedOut):
        return "timeout"
    if isinstance(outcome, asyncio.CancelledError):
        return "cancelled"
    if isinstance(outcome, ToolError) and outcome.message == _SHUTDOWN_MESSAGE:
        return "cancelled:shutdown"
    return f"error:{type(outcome).__name__}"
