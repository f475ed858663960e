"""The Streamable HTTP client transport: each message is one ``POST``.

HTTP/1.1 is spoken with ``h11`` over asyncio streams (no HTTP library beyond
what the server side already needs). Each message sent is POSTed on an idle
keep-alive connection, or a new one, so calls run concurrently; the reply
(``application/json``, or ``text/event-stream`` with progress before the
result) is handed to ``receive`` like a WebSocket frame. The server keeps no
session: after ``initialize`` the negotiated revision goes in every request's
``MCP-Protocol-Version`` header, and a 2026-07-28 request also names its
method in ``Mcp-Method``. For the same reason a request is cancelled by
closing its own response (a ``subscriptions/listen`` stream is ended so),
not by POSTing ``notifications/cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypeGuard

import h11

from iccm_network.errors import MCPConnectionError
from iccm_network.protocol.versions import META_PROTOCOL_VERSION
from iccm_network.transport.connect import Endpoint, connect_tcp, remaining, resolve
from iccm_network.transport.failures import status_hint, status_reason

__all__ = ["HttpTransport"]

_READ = 64 * 1024
_RETRYABLE = frozenset({502, 503, 504})


class _Link:
    """One keep-alive HTTP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.writer.close()


class HttpTransport:
    """MCP over Streamable HTTP to ``http://host:port/path``.

    Args:
        endpoint: Where to POST.
        headers: Extra HTTP headers for every request (a bearer token).
        max_size: Largest reply accepted, in bytes; ``None`` for no limit.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.max_size = max_size
        self.protocol_version: str | None = None
        """The revision ``initialize`` negotiated; sent as ``MCP-Protocol-Version``."""
        self._inbox: asyncio.Queue[str | MCPConnectionError] = asyncio.Queue()
        self._idle: list[_Link] = []
        self._posts: set[asyncio.Task[None]] = set()
        self._requests: dict[str | int, asyncio.Task[None]] = {}
        """The POST of each request awaiting its reply, by id."""
        self._open = False
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if endpoint.secure else None

    @property
    def url(self) -> str:
        """The server's ``http://`` or ``https://`` URL."""
        return self.endpoint.url

    @property
    def is_open(self) -> bool:
        """Whether requests can be sent."""
        return self._open

    async def connect(self, timeout: float) -> None:
        """Resolve the host and open the first connection (kept for the first POST).

        Args:
            timeout: Seconds for both steps.

        Raises:
            MCPConnectionError: ``dns``, ``tcp`` or ``timeout``, with what to check.
        """
        self._idle.append(await self._dial(timeout))
        self._open = True

    async def adopt(self, sock: socket.socket, timeout: float) -> None:
        """Open the transport on a TCP connection made elsewhere (``doctor`` makes its own).

        Args:
            sock: A connected socket.
            timeout: Seconds for the TLS handshake, if any.

        Raises:
            MCPConnectionError: ``handshake`` when TLS fails.
        """
        self._idle.append(await self._streams(sock, time.monotonic() + timeout))
        self._open = True

    async def _dial(self, timeout: float) -> _Link:
        deadline = time.monotonic() + timeout
        endpoint = self.endpoint
        addresses = await resolve(endpoint, remaining(deadline))
        sock = await connect_tcp(endpoint, addresses, remaining(deadline))
        return await self._streams(sock, deadline)

    async def _streams(self, sock: socket.socket, deadline: float) -> _Link:
        endpoint = self.endpoint
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    sock=sock,
                    ssl=self._ssl,
                    server_hostname=endpoint.host if self._ssl else None,
                    limit=_READ,
                ),
                remaining(deadline) or 0.01,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            sock.close()
            raise MCPConnectionError.diagnosed(
                "handshake",
                "not-tls" if self._ssl else "not-http",
                f"opening {self.url} failed: {exc or type(exc).__name__}.",
                "the scheme: https:// needs a TLS server, http:// a plain one.",
            ) from exc
        return _Link(reader, writer)

    async def send(self, text: str) -> None:
        """POST one message; its reply arrives through ``receive``.

        Args:
            text: A JSON-RPC message or batch.

        Raises:
            MCPConnectionError: The transport is closed.
        """
        if not self._open:
            raise _closed(self.url, "MCPClient.close() closed it")
        try:
            message: Any = json.loads(text)
        except ValueError:
            message = None
        if type(message) is dict and message.get("method") == "notifications/cancelled":
            params = message.get("params")
            cancelled = params.get("requestId") if type(params) is dict else None
            post = self._requests.pop(cancelled, None) if _is_id(cancelled) else None
            if post is not None:
                # The server keeps no session, so a cancellation POSTed apart
                # would reach nothing: closing the request's own response is
                # what ends its call, or its subscriptions/listen stream.
                post.cancel()
                return
        task = asyncio.create_task(self._post(text, message))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
        request_id = message.get("id") if type(message) is dict and "method" in message else None
        if _is_id(request_id):
            self._requests[request_id] = task
            task.add_done_callback(lambda _: self._requests.pop(request_id, None))

    async def receive(self) -> str:
        """The next message a reply carried.

        Raises:
            MCPConnectionError: A request failed (the session ends with it),
                or the transport was closed.
        """
        item = await self._inbox.get()
        if isinstance(item, MCPConnectionError):
            self._open = False
            raise item
        return item

    async def close(self) -> None:
        """Close every connection; requests in flight end."""
        was_open, self._open = self._open, False
        for task in list(self._posts):
            task.cancel()
        for link in self._idle:
            link.close()
        self._idle.clear()
        if was_open:
            self._inbox.put_nowait(_closed(self.url, "MCPClient.close() closed it"))

    # -- one request ---------------------------------------------------------

    def _request_headers(self, message: Any, length: int) -> list[tuple[str, str]]:
        endpoint = self.endpoint
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        fields = [
            ("Host", f"{host}:{endpoint.port}"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Content-Length", str(length)),
        ]
        version = self.protocol_version
        if type(message) is dict and type(message.get("params")) is dict:
            meta = message["params"].get("_meta")
            modern = meta.get(META_PROTOCOL_VERSION) if type(meta) is dict else None
            if isinstance(modern, str):
                version = modern
                fields.append(("Mcp-Method", str(message.get("method"))))
                name = message["params"].get("name")
                if isinstance(name, str):
                    fields.append(("Mcp-Name", name))
        if version is not None:
            fields.append(("MCP-Protocol-Version", version))
        fields += list(self.headers.items())
        return fields

    async def _post(self, text: str, message: Any) -> None:
        try:
            await self._exchange(text, message)
        except MCPConnectionError as exc:
            self._inbox.put_nowait(exc)
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            error = _closed(self.url, f"the connection failed ({exc or type(exc).__name__})")
            error.__cause__ = exc
            self._inbox.put_nowait(error)

    async def _exchange(self, text: str, message: Any) -> None:
        link = self._idle.pop() if self._idle else await self._dial(10.0)
        reusable = False
        try:
            body = text.encode("utf-8")
            conn = link.h11
            out = conn.send(
                h11.Request(
                    method="POST",
                    target=self.endpoint.path,
                    headers=self._request_headers(message, len(body)),
                )
            )
            link.writer.write(out + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await link.writer.drain()
            reusable = await self._read_reply(link)
        finally:
            if reusable and self._open:
                link.h11.start_next_cycle()
                self._idle.append(link)
            else:
                link.close()

    async def _next(self, link: _Link) -> Any:
        while True:
            event = link.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await link.reader.read(_READ)
            link.h11.receive_data(data)

    async def _read_reply(self, link: _Link) -> bool:
        response = await self._next(link)
        if not isinstance(response, h11.Response):
            raise _closed(self.url, "the server closed the connection without an answer")
        status = response.status_code
        content_type = ""
        for name, value in response.headers:
            if name == b"content-type":
                content_type = value.decode("latin-1").split(";")[0].strip().lower()
        sse = content_type == "text/event-stream"
        buffered = bytearray()
        events = _EventStream()
        while True:
            event = await self._next(link)
            if isinstance(event, h11.Data):
                if sse:
                    for data in events.feed(bytes(event.data)):
                        self._inbox.put_nowait(data)
                else:
                    buffered += event.data
                    if self.max_size is not None and len(buffered) > self.max_size:
                        raise _closed(self.url, f"a reply exceeded {self.max_size} bytes")
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise _closed(self.url, "the server closed the connection mid-reply")
        if content_type == "application/json" and buffered:
            # A JSON-RPC error answered with a 4xx is still the request's answer.
            self._inbox.put_nowait(buffered.decode("utf-8", "replace"))
        elif not (200 <= status < 300) and not sse:
            raise _status_error(self.url, status, bytes(buffered))
        return link.h11.our_state is h11.DONE and link.h11.their_state is h11.DONE


def _is_id(value: Any) -> TypeGuard[str | int]:
    """Whether ``value`` can be a request's JSON-RPC id (a string or an integer)."""
    return type(value) in (str, int)


class _EventStream:
    """The ``data`` of each ``text/event-stream`` event, as its lines arrive."""

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._pending += chunk
        lines = self._pending.splitlines(keepends=True)
        self._pending = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
        ready: list[str] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._data:
                    ready.append(b"\n".join(self._data).decode("utf-8", "replace"))
                    self._data = []
            elif line.startswith(b"data:"):
                self._data.append(line[5:].removeprefix(b" "))
        return ready


def _closed(url: str, why: str) -> MCPConnectionError:
    return MCPConnectionError.diagnosed(
        "closed",
        "closed",
        f"the HTTP request to {url} failed: {why}.",
        "that the server is running; the next request reconnects.",
    )


def _status_error(url: str, status: int, body: bytes) -> MCPConnectionError:
    excerpt = body[:200].decode("utf-8", "replace").strip()
    if status in (401, 403) or status in _RETRYABLE:
        reason, check = status_reason(status), status_hint(status)
    elif status in (404, 405):
        reason = "not-mcp"
        check = "the URL's path and port: the MCP server answers POST on any path but /healthz."
    else:
        reason = "not-mcp"
        check = "that the URL points at an MCP server that speaks Streamable HTTP."
    error = MCPConnectionError.diagnosed(
        "handshake",
        reason,
        f"POST {url} was answered with HTTP {status}" + (f": {excerpt}" if excerpt else "."),
        check,
    )
    return error
