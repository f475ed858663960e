"""``MCPClient``: call tools on any MCP server, over a WebSocket or in memory.

The client is a ``ClientProtocol`` (ids, encoding, matching, deadlines,
typed errors) driven over a transport (``iccm_network.transport.client``):
a WebSocket reached with the diagnosed steps of ``iccm_network.transport.connect``, or,
for ``MCPClient(app)``, the app's own server protocol in memory. Once
connected, one reader task owns the connection and hands each reply to the
request awaiting it, so any number of calls share the connection
concurrently. When the connection drops, calls in flight fail with
``MCPConnectionError`` and the next call reconnects, retrying a bounded number
of times with exponential backoff and jitter.

``decode_result`` turns a ``tools/call`` result into a plain value.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from iccm_network.client_catalog import CatalogCalls, ResourceCallback
from iccm_network.errors import MCPConnectionError, MCPError
from iccm_network.protocol.client import (
    ClientProtocol,
    ClientProtocolError,
    LogMessage,
    Progress,
    Reply,
    Stray,
    decode_result,
)
from iccm_network.protocol.client_events import (
    Notification,
    Request,
    tool_list_page,
    tool_result,
)
from iccm_network.protocol.versions import LATEST_HANDSHAKE_VERSION
from iccm_network.transport.client import ClientTransport, MemoryTransport, WebSocketTransport
from iccm_network.transport.connect import Endpoint, describe_client, handshake_headers, remaining
from iccm_network.transport.failures import is_retryable, reword
from iccm_network.transport.handshake import flush, initialize
from iccm_network.transport.http_client import HttpTransport

if TYPE_CHECKING:
    from iccm_network.transport.memory import InMemoryApp

__all__ = ["LogCallback", "MCPClient", "ProgressCallback", "decode_result"]

logger = logging.getLogger("iccm_network.client")

ProgressCallback = Callable[[float, float | None, str | None], object]
"""Called as ``on_progress(progress, total, message)``."""

_RESOURCE_UPDATED = "notifications/resources/updated"
_ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
LogCallback = Callable[[str, Any, "str | None"], object]
"""Called as ``on_log(level, data, logger)`` for each log message from the server."""


class _Session:
    """One live connection: its transport, its protocol and the requests awaiting replies."""

    def __init__(
        self,
        transport: ClientTransport,
        protocol: ClientProtocol,
        initialized: Mapping[str, Any],
    ) -> None:
        self.transport = transport
        self.protocol = protocol
        self.initialized = initialized
        self.waiters: dict[int, asyncio.Future[Reply]] = {}
        self.progress: dict[int, ProgressCallback] = {}
        self.reader: asyncio.Task[None] | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.closing = False
        self.acks: dict[int, asyncio.Future[Mapping[str, Any]]] = {}
        """``subscriptions/listen`` requests awaiting their acknowledgement, by id."""
        self.listens: dict[str, Request] = {}
        """The ``subscriptions/listen`` stream of each subscribed URI (2026-07-28)."""

    @property
    def alive(self) -> bool:
        reader = self.reader
        return self.transport.is_open and reader is not None and not reader.done()


class MCPClient(CatalogCalls):
    """A client for one MCP server, sharing one connection among concurrent calls.

    ``MCPClient(app)`` calls an ``App``'s tools in memory: the very client,
    through the app's real server protocol, validation and conversion, with
    no socket (for tests).

    Use it with ``async with`` or just call it: the first request connects.
    After the server goes away, calls in flight raise ``MCPConnectionError``
    and the next request reconnects, retrying up to ``retries`` times with
    exponential backoff and jitter; no request waits longer than about
    ``(retries + 1) * connect_timeout`` plus the backoff for a connection.

    Args:
        target: ``ws://host:port/path``, ``host:port``, a bare host name, or
            an ``App`` to call in memory.
        port: The port, when ``target`` does not give one (default 8000).
        path: The request path, when ``target`` does not give one.
        connect_timeout: Seconds one connection attempt (DNS, TCP, WebSocket
            handshake and ``initialize`` together) may take.
        call_timeout: Default seconds a request waits for its reply; ``None``
            waits as long as the connection lives (keepalive pings notice a
            dead server within ``ping_interval + ping_timeout``).
        retries: Extra connection attempts after a failure that may be
            transient (DNS, refused, timed out, closed, HTTP 502/503/504).
        backoff: Seconds before the first retry; each retry doubles it.
        max_backoff: The most seconds between two attempts.
        auth_token: Sent as ``Authorization: Bearer <token>``.
        headers: Extra HTTP headers for the handshake.
        max_message_size: Largest message accepted, in bytes; ``None`` for
            no limit. The default, 64 MiB, is far above ``websockets``' 1 MiB.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before giving the connection up.
        client_name: ``clientInfo.name`` sent with ``initialize``.
        client_version: ``clientInfo.version``; the library's version by default.
        protocol_version: The MCP revision offered in ``initialize``.
        on_log: Called as ``on_log(level, data, logger)`` for each log
            message (``notifications/message``) the server sends.
        on_progress: Called as ``on_progress(progress, total, message)`` for
            the progress of every call that sets no callback of its own.
    """

    def __init__(
        self,
        target: str | InMemoryApp,
        port: int | None = None,
        *,
        path: str | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        auth_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_message_size: int | None = 64 * 1024 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        client_name: str = "iccm-network",
        client_version: str | None = None,
        protocol_version: str = LATEST_HANDSHAKE_VERSION,
        on_log: LogCallback | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout}")
        if retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        self.endpoint: Endpoint | None = None
        self._app: InMemoryApp | None = None
        if isinstance(target, str):
            self.endpoint = Endpoint.parse(target, port, path)
        else:
            self._app = target
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_message_size = max_message_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.protocol_version = protocol_version
        self.client_info = describe_client(client_name, client_version or None)
        self._headers = handshake_headers(headers, auth_token)
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._resource_callbacks: dict[str, ResourceCallback] = {}
        self.on_log = on_log
        self.on_progress = on_progress
        self._log_level: str | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"MCPClient({self.url!r}, {state})"

    @property
    def url(self) -> str:
        """The server's URL (``memory://`` and the app's name for an app)."""
        if self.endpoint is None:
            assert self._app is not None
            return f"memory://{self._app.name}"
        return self.endpoint.url

    @property
    def connected(self) -> bool:
        """True while a connection is open and initialized."""
        return self._session is not None and self._session.alive

    @property
    def server_info(self) -> Mapping[str, Any] | None:
        """The ``initialize`` result of the current connection, if any."""
        return self._session.initialized if self._session is not None else None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> MCPClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and initialize now, unless already connected.

        Raises:
            MCPConnectionError: Every attempt failed; its ``problem`` and
                ``check`` say which step failed last and what to check.
        """
        await self._live_session()

    async def close(self) -> None:
        """Close the connection; requests in flight raise ``MCPConnectionError``.

        The client stays usable: the next request connects again.
        """
        session, self._session = self._session, None
        if session is None:
            return
        session.closing = True
        await session.transport.close()
        if session.reader is not None:
            await asyncio.gather(session.reader, return_exceptions=True)
        for task in list(session.background):
            task.cancel()

    async def _live_session(self) -> _Session:
        session = self._session
        if session is not None and session.alive:
            return session
        async with self._lock:
            session = self._session
            if session is not None and session.alive:
                return session
            self._session = None
            session = await self._connect_with_retries()
            self._session = session
            return session

    async def _connect_with_retries(self) -> _Session:
        attempt = 0
        while True:
            try:
                return await self._open()
            except MCPConnectionError as exc:
                if attempt >= self.retries or not is_retryable(exc):
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                # Equal jitter: spread the clients a restarted server sees at once.
                delay = random.uniform(delay / 2, delay)
                logger.info(
                    "connecting to %s failed (%s); retry %d/%d in %.2f s",
                    self.url,
                    exc.problem,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)

    def _transport(self) -> ClientTransport:
        if self.endpoint is None:
            assert self._app is not None
            return MemoryTransport(self._app)
        if self.endpoint.http:
            return HttpTransport(
                self.endpoint, headers=self._headers, max_size=self.max_message_size
            )
        return WebSocketTransport(
            self.endpoint,
            headers=self._headers,
            max_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )

    async def _open(self) -> _Session:
        deadline = time.monotonic() + self.connect_timeout
        transport = self._transport()
        await transport.connect(self.connect_timeout)
        protocol = ClientProtocol(
            protocol_version=self.protocol_version, client_info=self.client_info
        )
        result: dict[str, Any] = {}
        try:
            if protocol.needs_initialize:
                result = await initialize(transport, protocol, remaining(deadline))
                if isinstance(transport, HttpTransport):
                    # No session on the server: each request names the revision.
                    transport.protocol_version = str(result["protocolVersion"])
        except BaseException:
            await transport.close()
            raise
        session = _Session(transport, protocol, result)
        session.reader = asyncio.create_task(self._read(session))
        if self._log_level is not None:
            # A new connection starts at the server's default level: ask
            # again (the reply, when one comes, is of no interest).
            protocol.set_log_level(self._log_level)
            self._flush_soon(session)
        logger.info(
            "connected to %s (%s, protocol %s)",
            self.url,
            result.get("serverInfo", {}).get("name", "?"),
            result.get("protocolVersion", self.protocol_version),
        )
        return session

    # -- the reader ----------------------------------------------------------

    async def _read(self, session: _Session) -> None:
        error: MCPConnectionError | None = None
        try:
            while True:
                self._dispatch(session, await session.transport.receive())
        except MCPConnectionError as exc:
            error = exc
        finally:
            if error is None:  # the reader was cancelled
                error = MCPConnectionError.diagnosed(
                    "closed",
                    "closed",
                    f"the connection to {self.url} stopped being read.",
                    "nothing on the server; the next request reconnects.",
                )
            if session.waiters and not session.closing:
                logger.warning("%s", error.problem)
            session.protocol.abandon()
            waiters, session.waiters = session.waiters, {}
            for future in waiters.values():
                if not future.done():
                    future.set_exception(error.fresh())

    def _dispatch(self, session: _Session, frame: str | bytes) -> None:
        try:
            events = session.protocol.receive_text(frame)
        except ClientProtocolError as exc:
            logger.warning("ignored a message from %s: %s", self.url, exc.what)
            return
        for event in events:
            if isinstance(event, Reply):
                future = session.waiters.pop(event.request.id, None)
                if future is not None and not future.done():
                    future.set_result(event)
            elif isinstance(event, Progress):
                callback = session.progress.get(event.request.id)
                if callback is not None:
                    try:
                        callback(event.progress, event.total, event.message)
                    except Exception:
                        logger.exception("progress callback failed")
            elif isinstance(event, Notification) and event.method == _RESOURCE_UPDATED:
                self._resource_updated(event.params)
            elif isinstance(event, Notification) and event.method == _ACKNOWLEDGED:
                meta = event.params.get("_meta")
                stream = meta.get(_SUBSCRIPTION_ID) if isinstance(meta, Mapping) else None
                ack = session.acks.pop(stream, None) if isinstance(stream, int) else None
                if ack is not None and not ack.done():
                    ack.set_result(event.params)
            elif isinstance(event, LogMessage):
                if self.on_log is not None:
                    try:
                        self.on_log(event.level, event.data, event.logger)
                    except Exception:
                        logger.exception("log callback failed")
            elif isinstance(event, Stray):
                logger.debug("ignored a reply to no request of ours: %.200r", event.message)
        self._flush_soon(session)  # answers to the server's own requests (ping)

    def _flush_soon(self, session: _Session) -> None:
        texts = session.protocol.data_to_send()
        if texts and session.transport.is_open:
            task = asyncio.ensure_future(self._send_quietly(session, texts))
            session.background.add(task)
            task.add_done_callback(session.background.discard)

    @staticmethod
    async def _send_quietly(session: _Session, texts: list[str]) -> None:
        try:
            for text in texts:
                await session.transport.send(text)
        except MCPConnectionError:
            pass

    # -- requests ------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Any:
        """Send any JSON-RPC request and return its ``result``.

        Args:
            method: The method, such as ``"tools/list"``.
            params: Its params.
            timeout: Seconds to wait for the reply; ``call_timeout`` by default.
            on_progress: Called as ``on_progress(progress, total, message)``
                for each ``notifications/progress`` about this request.

        Raises:
            MCPError: The server answered with a JSON-RPC error (a subclass
                per code, such as ``InvalidParams``).
            MCPConnectionError: No connection, or it dropped before the reply.
            TimeoutError: No reply within ``timeout``; the server was sent
                ``notifications/cancelled``.
        """
        reply = await self._exchange(method, params, timeout, on_progress)
        return reply.result()

    async def _exchange(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        timeout: float | None,
        on_progress: ProgressCallback | None,
    ) -> Reply:
        session = await self._live_session()
        protocol = session.protocol
        loop = asyncio.get_running_loop()
        timeout = self.call_timeout if timeout is None else timeout
        deadline = None if timeout is None else loop.time() + timeout
        request = protocol.request(
            method, params, deadline=deadline, progress=on_progress is not None
        )
        future: asyncio.Future[Reply] = loop.create_future()
        session.waiters[request.id] = future
        if on_progress is not None:
            session.progress[request.id] = on_progress
        try:
            try:
                await flush(session.transport, protocol)
            except MCPConnectionError as exc:
                protocol.cancel(request, "not sent", notify=False)
                raise reword(exc, f"while sending {method}") from exc.__cause__
            while not future.done():
                wait = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait({future}, timeout=wait)
                if future.done() or deadline is None:
                    continue
                protocol.expired(loop.time())  # queues notifications/cancelled
                if deadline <= loop.time():
                    break
        except asyncio.CancelledError:
            protocol.cancel(request, "the caller cancelled the request")
            raise
        finally:
            session.progress.pop(request.id, None)
            session.waiters.pop(request.id, None)
            self._flush_soon(session)
        if not future.done():
            future.cancel()
            raise TimeoutError(
                f"{request.what} on {self.url} got no reply within {timeout:g} s "
                "(the server was asked to cancel it)"
            )
        return future.result()

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Any:
        """Call a tool and return its decoded result (see ``decode_result``).

        Args:
            tool: The tool's name.
            arguments: Its arguments.
            timeout: Seconds to wait; ``call_timeout`` by default. On expiry
                the server is sent ``notifications/cancelled``.
            on_progress: Called as ``on_progress(progress, total, message)``
                when the tool reports progress.

        Raises:
            ToolError: The tool failed (``isError`` in the result).
            MCPError: A JSON-RPC error, such as ``InvalidParams`` for an
                unknown tool or (before 2025-11-25) invalid arguments.
            MCPConnectionError: No connection, or it dropped mid-call.
            TimeoutError: No reply within ``timeout``.
        """
        params = {"name": tool, "arguments": dict(arguments or {})}
        progress = on_progress if on_progress is not None else self.on_progress
        return tool_result(await self._exchange("tools/call", params, timeout, progress))

    async def _subscribe(self, uri: str, timeout: float | None) -> None:
        session = await self._live_session()
        if session.protocol.needs_initialize:
            await self.request("resources/subscribe", {"uri": uri}, timeout=timeout)
            return
        # 2026-07-28: a stream per URI, so that unsubscribing one ends only it.
        protocol = session.protocol
        loop = asyncio.get_running_loop()
        params = {"notifications": {"resourceSubscriptions": [uri]}}
        request = protocol.request("subscriptions/listen", params)
        ack: asyncio.Future[Mapping[str, Any]] = loop.create_future()
        ended: asyncio.Future[Reply] = loop.create_future()  # an error, or the stream's end
        session.acks[request.id] = ack
        session.waiters[request.id] = ended
        timeout = self.call_timeout if timeout is None else timeout
        try:
            await flush(session.transport, protocol)
            either: set[asyncio.Future[Any]] = {ack, ended}
            await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if ended.done():
                ended.result().result()  # raises the server's error, if it sent one
                raise MCPError(f"{self.url} ended the subscriptions/listen stream for {uri!r}")
            if not ack.done():
                raise TimeoutError(
                    f"subscriptions/listen for {uri!r} on {self.url} was not acknowledged "
                    f"within {timeout:g} s"
                )
            honoured = ack.result().get("notifications")
            if not isinstance(honoured, Mapping) or uri not in (
                honoured.get("resourceSubscriptions") or ()
            ):
                raise MCPError(f"{self.url} does not send updates of {uri!r}")
        except BaseException:
            protocol.cancel(request, "not subscribed")
            raise
        finally:
            session.acks.pop(request.id, None)
            session.waiters.pop(request.id, None)  # its end, if it comes, is of no interest
            self._flush_soon(session)
        previous = session.listens.get(uri)
        session.listens[uri] = request
        if previous is not None:  # subscribed twice: the newer stream serves
            protocol.cancel(previous, "subscribed again")
            self._flush_soon(session)

    async def _unsubscribe(self, uri: str, timeout: float | None) -> None:
        session = await self._live_session()
        if session.protocol.needs_initialize:
            await self.request("resources/unsubscribe", {"uri": uri}, timeout=timeout)
            return
        request = session.listens.pop(uri, None)
        if request is not None:
            session.protocol.cancel(request, "unsubscribed")
            await flush(session.transport, session.protocol)

    async def set_log_level(self, level: str, *, timeout: float | None = None) -> None:
        """Ask the server for log messages of ``level`` and above (to ``on_log``).

        In the handshake era this sends ``logging/setLevel`` (and again after
        a reconnection); under 2026-07-28 every later request asks for the
        level in its ``_meta``.

        Args:
            level: ``"debug"``, ``"info"``, ``"notice"``, ``"warning"``,
                ``"error"``, ``"critical"``, ``"alert"`` or ``"emergency"``.
            timeout: Seconds to wait for the server's answer.

        Raises:
            InvalidParams: The server does not know the level.
            MCPConnectionError: No connection, or it dropped.
        """
        session = await self._live_session()
        if session.protocol.needs_initialize:
            await self.request("logging/setLevel", {"level": level}, timeout=timeout)
        else:
            session.protocol.set_log_level(level)
        self._log_level = level

    async def list_tools(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every tool's definition, exactly as on the wire, following ``nextCursor``.

        Args:
            timeout: Seconds to wait for each page.

        Raises:
            MCPError: A JSON-RPC error, or a page that is not a tool list.
            MCPConnectionError: No connection, or it dropped.
        """
        tools: list[dict[str, Any]] = []
        cursor: Any = None
        seen: set[str] = set()
        while True:
            params = {} if cursor is None else {"cursor": cursor}
            page, cursor = tool_list_page(await self._exchange("tools/list", params, timeout, None))
            tools.extend(page)
            if cursor is None:
                return tools
            if str(cursor) in seen:
                raise MCPError(f"tools/list repeated the cursor {cursor!r}")
            seen.add(str(cursor))

    async def ping(self, *, timeout: float | None = None) -> float:
        """Send ``ping`` and return the round trip in seconds.

        Args:
            timeout: Seconds to wait; ``connect_timeout`` by default.

        Raises:
            MCPError: The server answered ``ping`` with an error.
            MCPConnectionError: No connection, or it dropped.
            TimeoutError: No answer within ``timeout``.
        """
        await self._live_session()
        started = time.perf_counter()
        await self.request("ping", timeout=self.connect_timeout if timeout is None else timeout)
        return time.perf_counter() - started
