"""The WebSocket transport: moves frames, runs calls, manages connections.

This is the only server module that touches ``websockets`` and the event
loop. Each connection gets a ``ServerProtocol``; its read loop never waits for
a call, so keepalive pings keep flowing however long the tools take.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import http
import json
import logging
import socket
import time
from collections.abc import Awaitable
from typing import Any

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from iccm_network.config import Settings
from iccm_network.context import Context
from iccm_network.protocol import CallTimedOut, ServerInfo, ServerProtocol, ToolCall
from iccm_network.routes import RouteTable

__all__ = ["Server"]

logger = logging.getLogger("iccm_network.server")

_MCP = Subprotocol("mcp")
CLOSE_UNSUPPORTED_DATA = 1003


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


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if not address:
        return "?"
    host = str(address[0]).removeprefix("::ffff:")
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


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
        self._connections: dict[ServerConnection, dict[ToolCall, asyncio.Task[None]]] = {}
        self._draining = False
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
        if host in (None, "", "0.0.0.0", "::"):
            host = "127.0.0.1"
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
        """Bind and start accepting connections; returns once listening."""
        settings = self.settings
        options: dict[str, Any] = {
            "process_request": self._process_request,
            "select_subprotocol": self._select_subprotocol,
            "max_size": settings.max_message_size,
            "ping_interval": settings.ping_interval,
            "ping_timeout": settings.ping_timeout,
            "logger": logging.getLogger("iccm_network.websockets"),
        }
        if settings.host is None or settings.host == "":
            self._server = await serve(
                self._handle, sock=_listening_socket(settings.port), **options
            )
        else:
            self._server = await serve(self._handle, settings.host, settings.port, **options)
        for sock in self._server.sockets:
            logger.info("listening on %s", sock.getsockname()[:2])

    async def serve_forever(self) -> None:
        """Serve until ``shutdown()`` completes."""
        await self._closed.wait()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop gracefully: refuse newcomers, drain, then close with 1001.

        New handshakes get HTTP 503 and ``/healthz`` says ``draining`` while
        in-flight calls get up to ``grace`` seconds to finish; calls still
        running then are cancelled.

        Args:
            grace: Seconds to wait for in-flight calls; the setting by default.
        """
        if self._server is None or self._draining:
            await self._closed.wait()
            return
        self._draining = True
        grace = self.settings.shutdown_grace if grace is None else grace
        running = [task for tasks in self._connections.values() for task in tasks.values()]
        logger.info("shutting down: %d calls in flight, grace %g s", len(running), grace)
        if running:
            await asyncio.wait(running, timeout=grace)
            for task in running:
                task.cancel()
        server = self._server
        closing = [
            asyncio.create_task(connection.close(1001, "server shutting down"))
            for connection in list(self._connections)
        ]
        if closing:
            await asyncio.wait(closing, timeout=2)
        server.close(close_connections=False)
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=2)
        except TimeoutError:
            logger.warning("connections still open after shutdown; abandoning them")
        self._closed.set()
        logger.info("server stopped")

    # -- handshake -----------------------------------------------------------

    def _select_subprotocol(self, connection: ServerConnection, offered: Any) -> Subprotocol | None:
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
        response.headers["Content-Type"] = "application/json"
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] == "/healthz":
            return self._health(connection)
        if self._draining:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server shutting down\n")
        settings = self.settings
        if len(self._connections) >= settings.max_connections:
            logger.warning("refused a connection: %d connections open", len(self._connections))
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        refusal = self._refusal(request.headers)
        if refusal is not None:
            return connection.respond(*refusal)
        token = settings.auth_token
        if token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        return None

    def _refusal(self, headers: Headers) -> tuple[http.HTTPStatus, str] | None:
        settings = self.settings
        origin = headers.get("Origin")
        if origin is not None and "*" not in settings.allowed_origins:
            if origin not in settings.allowed_origins:
                logger.warning("refused a connection from origin %r", origin)
                return http.HTTPStatus.FORBIDDEN, "Origin not allowed\n"
        if settings.allowed_hosts:
            host = headers.get("Host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host not in settings.allowed_hosts and name not in settings.allowed_hosts:
                logger.warning("refused a connection for host %r", host)
                return http.HTTPStatus.FORBIDDEN, "Host not allowed\n"
        return None

    # -- connections ---------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        started = time.monotonic()
        peer = _peer(connection)
        path = connection.request.path if connection.request else "?"
        logger.info(
            "connection open: peer=%s path=%s subprotocol=%s",
            peer,
            path,
            connection.subprotocol,
        )
        protocol = ServerProtocol(self.routes, self.info, max_in_flight=self.settings.max_in_flight)
        tasks: dict[ToolCall, asyncio.Task[None]] = {}
        self._connections[connection] = tasks
        try:
            async for message in connection:
                if not isinstance(message, str):
                    await connection.close(
                        CLOSE_UNSUPPORTED_DATA, "binary frames are not supported"
                    )
                    break
                protocol.receive_text(message)
                for call in protocol.calls_to_run():
                    task = asyncio.create_task(self._run(connection, protocol, call))
                    tasks[call] = task
                    task.add_done_callback(functools.partial(_forget, tasks, call))
                for call in protocol.calls_to_cancel():
                    if call in tasks:
                        tasks[call].cancel()
                for frame in protocol.data_to_send():
                    await connection.send(frame)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks.values():
                task.cancel()
            del self._connections[connection]
            logger.info(
                "connection closed: peer=%s path=%s duration=%.3fs code=%s reason=%r",
                peer,
                path,
                time.monotonic() - started,
                connection.close_code,
                connection.close_reason or "",
            )

    async def _run(
        self, connection: ServerConnection, protocol: ServerProtocol, call: ToolCall
    ) -> None:
        tool = call.tool
        kwargs = call.arguments
        if tool.context_parameter is not None:
            kwargs[tool.context_parameter] = Context(
                request_id=call.request_id,
                protocol_version=call.features.version,
                client_info=call.client_info,
                progress_token=call.progress_token,
                send_progress=functools.partial(self._send_progress, connection, protocol),
            )
        timeout = tool.timeout if tool.timeout is not None else self.settings.tool_timeout
        started = time.perf_counter()
        outcome: Any
        try:
            if tool.is_async:
                work: Awaitable[Any] = tool.fn(**kwargs)
            else:
                work = asyncio.get_running_loop().run_in_executor(
                    None, functools.partial(tool.fn, **kwargs)
                )
            outcome = await (work if timeout is None else asyncio.wait_for(work, timeout))
        except asyncio.TimeoutError as exc:
            # A tool may raise TimeoutError of its own; only ours has used up the time.
            expired = timeout is not None and time.perf_counter() - started >= timeout
            outcome = CallTimedOut(timeout) if expired and timeout is not None else exc
        except asyncio.CancelledError as exc:
            outcome = exc
        except Exception as exc:
            outcome = exc
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "call tool=%s id=%r ms=%.1f outcome=%s",
                tool.name,
                call.request_id,
                (time.perf_counter() - started) * 1000,
                _describe(outcome),
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


def _describe(outcome: Any) -> str:
    if isinstance(outcome, CallTimedOut):
        return "timeout"
    if isinstance(outcome, asyncio.CancelledError):
        return "cancelled"
    if isinstance(outcome, BaseException):
        return f"error:{type(outcome).__name__}"
    return "ok"


def _forget(tasks: dict[ToolCall, asyncio.Task[None]], call: ToolCall, _: object) -> None:
    tasks.pop(call, None)
