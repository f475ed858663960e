"""``MCPClient``: call tools on any MCP server over one WebSocket.

The client reaches the server with the steps in ``iccm_network.connect``
(whose failures say which step broke and what to check). Once connected, one
reader task owns the connection: it hands each reply to the future of the
request with that id, so any number of calls share the connection
concurrently. When the connection drops, calls in flight fail with
``MCPConnectionError`` and the next call reconnects, retrying a bounded number
of times with exponential backoff and jitter.

``decode_result`` turns a ``tools/call`` result into a plain value.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from iccm_network.connect import (
    Endpoint,
    closed_diagnosis,
    connect_and_initialize,
    describe_client,
    diagnosis,
    handshake_headers,
    is_retryable,
    reply_to_server_request,
)
from iccm_network.errors import MCPConnectionError, MCPError, ToolError, error_class_for_code
from iccm_network.versions import LATEST_HANDSHAKE_VERSION

__all__ = ["MCPClient", "ProgressCallback", "decode_result"]

logger = logging.getLogger("iccm_network.client")

ERROR_DATA_META_KEY: Final = "iccm-network/errorData"
"""Where an iccm-network server puts a ``ToolError``'s ``data`` (the result's ``_meta``).

Repeated from ``iccm_network.results`` so that the client imports no server module.
"""

ProgressCallback = Callable[[float, float | None, str | None], object]
"""Called as ``on_progress(progress, total, message)``."""


# -- results -------------------------------------------------------------------


def _text_of(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        item["text"]
        for item in content
        if isinstance(item, dict)
        and item.get("type") == "text"
        and isinstance(item.get("text"), str)
    ]


def _carries(text: str, value: Any) -> bool:
    if text == value:
        return True
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def decode_result(result: Mapping[str, Any]) -> Any:
    """The value of a ``tools/call`` result, or ``ToolError`` for ``isError``.

    ``structuredContent`` when present, else the text parsed as JSON when it
    is JSON, else the text. A lone text item is decoded; other content (several
    items, images) is returned as the list of content items.

    ``structuredContent`` of the form ``{"result": value}`` is unwrapped when
    the text content carries ``value`` itself: that is how a server (iccm-network
    among them) wraps a non-object return value to match its ``outputSchema``,
    and unwrapping gives the same value whichever protocol revision was
    negotiated. A tool that really returns ``{"result": ...}`` has that object
    as its text, so it is returned whole.

    Args:
        result: A ``tools/call`` result.

    Raises:
        ToolError: ``isError`` is true; its message is the text and its
            ``data`` the ``_meta["iccm-network/errorData"]`` the server sent.
    """
    texts = _text_of(result.get("content"))
    if result.get("isError"):
        meta = result.get("_meta")
        data = meta.get(ERROR_DATA_META_KEY) if isinstance(meta, dict) else None
        raise ToolError("\n".join(texts) or "the tool failed without a message", data=data)
    if "structuredContent" in result:
        structured = result["structuredContent"]
        if (
            isinstance(structured, dict)
            and structured.keys() == {"result"}
            and len(texts) == 1
            and _carries(texts[0], structured["result"])
            and not _carries(texts[0], structured)
        ):
            return structured["result"]
        return structured
    content = result.get("content")
    if isinstance(content, list) and len(content) == 1 and len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    if not content:
        return None
    return content


# -- the client ----------------------------------------------------------------


class _Session:
    """One live connection: its reader task and the requests awaiting replies."""

    def __init__(self, connection: ClientConnection, initialized: Mapping[str, Any]) -> None:
        self.connection = connection
        self.initialized = initialized
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.progress: dict[int, ProgressCallback] = {}
        self.reader: asyncio.Task[None] | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.closing = False

    @property
    def alive(self) -> bool:
        reader = self.reader
        return self.connection.state is State.OPEN and reader is not None and not reader.done()


class MCPClient:
    """A client for one MCP server, sharing one WebSocket among concurrent calls.

    Use it with ``async with`` or just call it: the first request connects.
    After the server goes away, calls in flight raise ``MCPConnectionError``
    and the next request reconnects, retrying up to ``retries`` times with
    exponential backoff and jitter; no request waits longer than about
    ``(retries + 1) * connect_timeout`` plus the backoff for a connection.

    Args:
        target: ``ws://host:port/path``, ``host:port`` or a bare host name.
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
    """

    def __init__(
        self,
        target: str,
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
    ) -> None:
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout}")
        if retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        self.endpoint = Endpoint.parse(target, port, path)
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
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"MCPClient({self.endpoint.url!r}, {state})"

    @property
    def url(self) -> str:
        """The server's URL."""
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
            MCPConnectionError: Every attempt failed; the message names the
                step that failed last and what to check.
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
        await session.connection.close()
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
                    self.endpoint.url,
                    exc.message.splitlines()[0],
                    attempt + 1,
                    self.retries,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def _open(self) -> _Session:
        endpoint = self.endpoint
        connection, result = await connect_and_initialize(
            endpoint,
            self.connect_timeout,
            headers=self._headers,
            max_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            protocol_version=self.protocol_version,
            client_info=self.client_info,
        )
        session = _Session(connection, result)
        session.reader = asyncio.create_task(self._read(session))
        logger.info(
            "connected to %s (%s, protocol %s)",
            endpoint.url,
            result.get("serverInfo", {}).get("name", "?"),
            result.get("protocolVersion"),
        )
        return session

    # -- the reader ----------------------------------------------------------

    async def _read(self, session: _Session) -> None:
        error: MCPConnectionError | None = None
        try:
            async for frame in session.connection:
                if isinstance(frame, str):
                    self._dispatch(session, frame)
        except ConnectionClosed as exc:
            error = closed_diagnosis(self.endpoint, exc, "while requests were in flight")
            error.__cause__ = exc
        finally:
            if session.closing:
                error = diagnosis(
                    "closed",
                    f"MCPClient.close() closed the connection to {self.endpoint.url} while "
                    "requests were in flight.",
                    "nothing on the server; the next request reconnects.",
                )
            elif error is None:
                # A clean close ends the iteration without an exception.
                state = session.connection.protocol
                closed = ConnectionClosed(
                    state.close_rcvd, state.close_sent, state.close_rcvd_then_sent
                )
                error = closed_diagnosis(self.endpoint, closed, "while requests were in flight")
            if session.pending:
                logger.warning("%s", error.message.splitlines()[0])
            _fail_pending(session, error)

    def _dispatch(self, session: _Session, frame: str) -> None:
        try:
            message = json.loads(frame)
        except (ValueError, RecursionError):
            logger.warning("ignored a frame that is not JSON from %s", self.endpoint.url)
            return
        for item in message if isinstance(message, list) else [message]:
            if not isinstance(item, dict):
                continue
            if "method" in item:
                self._server_message(session, item)
                continue
            request_id = item.get("id")
            future = session.pending.pop(request_id, None) if isinstance(request_id, int) else None
            if future is None:
                logger.debug("ignored a reply to unknown id %r", request_id)
            elif not future.done():
                future.set_result(item)

    def _server_message(self, session: _Session, message: dict[str, Any]) -> None:
        if "id" in message:
            reply = json.dumps(reply_to_server_request(message))
            self._background(session, self._send_quietly(session, reply))
            return
        params = message.get("params")
        if message.get("method") == "notifications/progress" and isinstance(params, dict):
            token = params.get("progressToken")
            callback = session.progress.get(token) if isinstance(token, int) else None
            if callback is not None:
                try:
                    callback(params.get("progress", 0), params.get("total"), params.get("message"))
                except Exception:
                    logger.exception("progress callback failed")

    def _background(self, session: _Session, work: Any) -> None:
        task = asyncio.ensure_future(work)
        session.background.add(task)
        task.add_done_callback(session.background.discard)

    @staticmethod
    async def _send_quietly(session: _Session, text: str) -> None:
        try:
            await session.connection.send(text)
        except ConnectionClosed:
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
        session = await self._live_session()
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None or on_progress is not None:
            message["params"] = dict(params or {})
        if on_progress is not None:
            message["params"]["_meta"] = {
                **message["params"].get("_meta", {}),
                "progressToken": request_id,
            }
            session.progress[request_id] = on_progress
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.pending[request_id] = future
        timeout = self.call_timeout if timeout is None else timeout
        try:
            try:
                await session.connection.send(json.dumps(message, separators=(",", ":")))
            except ConnectionClosed as exc:
                session.pending.pop(request_id, None)
                raise closed_diagnosis(self.endpoint, exc, f"while sending {method}") from exc
            done, _ = await asyncio.wait({future}, timeout=timeout)
        except asyncio.CancelledError:
            self._cancel(session, request_id, "the caller cancelled the request")
            raise
        finally:
            session.progress.pop(request_id, None)
        if not done:
            self._cancel(session, request_id, f"no reply within {timeout:g} s")
            what = method
            if method == "tools/call" and params is not None:
                what = f"tools/call {params.get('name')!r}"
            raise TimeoutError(
                f"{what} on {self.endpoint.url} got no reply within {timeout:g} s "
                "(the server was asked to cancel it)"
            )
        reply = future.result()
        if "error" in reply:
            raise _error_from(reply["error"])
        return reply.get("result")

    def _cancel(self, session: _Session, request_id: int, reason: str) -> None:
        future = session.pending.pop(request_id, None)
        if future is not None:
            future.cancel()
        if session.alive:
            notice = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": request_id, "reason": reason},
            }
            self._background(session, self._send_quietly(session, json.dumps(notice)))

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
        result = await self.request("tools/call", params, timeout=timeout, on_progress=on_progress)
        if not isinstance(result, dict):
            raise MCPError(f"tools/call {tool!r} returned a result that is not an object")
        return decode_result(result)

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
            page = await self.request("tools/list", params, timeout=timeout)
            if not isinstance(page, dict) or not isinstance(page.get("tools"), list):
                raise MCPError("tools/list returned a result without a tools array")
            tools.extend(page["tools"])
            cursor = page.get("nextCursor")
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


def _error_from(error: Any) -> MCPError:
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return MCPError(f"malformed JSON-RPC error: {error!r}")
    code = error["code"]
    message = str(error.get("message", ""))
    return error_class_for_code(code)(message, data=error.get("data"), code=code)


def _fail_pending(session: _Session, error: MCPConnectionError) -> None:
    pending, session.pending = session.pending, {}
    for future in pending.values():
        if not future.done():
            # A fresh exception per waiter: each one gets its own traceback.
            fresh = MCPConnectionError(error.message, step=error.step)
            fresh.__cause__ = error.__cause__
            future.set_exception(fresh)
