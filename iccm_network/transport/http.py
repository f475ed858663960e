"""Streamable HTTP on the WebSocket port: one TCP connection's HTTP requests.

The server's connection class looks at the first bytes a client sends: a
``GET`` goes to ``websockets`` (the upgrade, ``/healthz`` and its refusals),
anything else to an ``HttpConnection``, which parses HTTP/1.1 with ``h11``
and serves each ``POST`` with a fresh ``ServerProtocol`` and the same
``CallRunner`` as WebSocket. Nothing is kept between requests (no sessions).

Limits, as for WebSocket: a connection waiting for a request counts as an
unfinished handshake (shed oldest first past ``max_handshakes``), one serving
a request counts against ``max_connections``; a request's head must arrive
within ``REQUEST_TIMEOUT`` and its body within ``BODY_TIMEOUT``; headers are
capped at ``MAX_HEAD`` bytes (431); a body over ``max_message_size`` gets 413;
reading stops while a request is served, and replies wait for the client to
read what was sent before.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import h11

from iccm_network.config import Settings
from iccm_network.errors import (
    InvalidParams,
    InvalidRequest,
    MCPError,
    ParseError,
    UnsupportedProtocolVersion,
)
from iccm_network.protocol.server import ServerProtocol, decode
from iccm_network.protocol.versions import ALL_VERSIONS, META_PROTOCOL_VERSION, MODERN_VERSIONS
from iccm_network.transport.admission import HeaderLookup, Refusal
from iccm_network.transport.serving import CallRunner, Channel

__all__ = ["BODY_TIMEOUT", "MAX_HEAD", "REQUEST_TIMEOUT", "HttpConnection", "HttpHost", "Refusal"]

logger = logging.getLogger("iccm_network.server")

REQUEST_TIMEOUT = 10.0
"""Seconds a connection may wait for a request's head (the WebSocket ``open_timeout``)."""
BODY_TIMEOUT = 30.0
"""Seconds a request's body may take to arrive."""
MAX_HEAD = 16 * 1024
"""Bytes a request line and headers may take; more gets 431."""

_STATUS_OF_ERROR = {-32602: 400, -32020: 400, -32021: 400, -32022: 400, -32601: 404}
"""The 2026-07-28 revision's HTTP status for a JSON-RPC error code."""
_BATCH_VERSION = "2025-03-26"
"""The only revision whose Streamable HTTP accepts a batch."""


class HttpHost(Protocol):
    """What an ``HttpConnection`` needs of the server (``websocket.Server`` has it)."""

    settings: Settings

    @property
    def draining(self) -> bool:
        """True once shutdown has begun."""

    def protocol_and_runner(
        self, channel: Channel, *, version: str | None = None, batch_slice: int | None = None
    ) -> tuple[ServerProtocol, CallRunner]:
        """A ``ServerProtocol`` for one request, and the runner of its calls."""

    def check_request(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Origin, Host and token checks WebSocket handshakes get."""

    def check_host(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Host check alone (for ``/healthz``)."""

    def health(self) -> tuple[int, bytes]:
        """The ``/healthz`` status and JSON body."""

    def http_busy(self, connection: Any, runner: CallRunner) -> bool:
        """Count a connection as serving a request; False when over ``max_connections``."""

    def http_idle(self, connection: Any) -> None:
        """Count a connection as waiting for a request again."""

    def follow(self, channel: Channel, protocol: ServerProtocol) -> Callable[[], None]:
        """Send ``channel`` its resource updates and list changes until told to stop."""


class Transport(Protocol):
    """The TCP side of an ``HttpConnection`` (the server's connection object)."""

    transport: asyncio.Transport

    async def drain(self) -> None:
        """Wait until the write buffer is below its limit."""


class _Exchange:
    """One request's reply channel: JSON when the result comes first, else SSE."""

    def __init__(self, owner: HttpConnection, sse: bool) -> None:
        self.sending = asyncio.Lock()
        self.calls_begun = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.final: list[str] = []
        self.streaming = False
        self._owner = owner
        self._sse = sse

    def is_open(self) -> bool:
        return not self._owner.lost

    def has_room(self) -> bool:
        # A streamed reply is written to the socket; a JSON one only collected.
        return not self.streaming

    def write_replies(self, frames: list[str]) -> None:
        self.final.extend(frames)
        self.finish()

    async def send_replies(self, frames: list[str]) -> None:
        if self.streaming:
            for frame in frames:
                await self._owner.send_event(frame)
        self.write_replies(frames)

    def finish(self) -> None:
        """The reply is complete (or will never come: the client left)."""
        if not self.done.done():
            self.done.set_result(None)

    async def send_notification(self, frame: str) -> None:
        if not self._sse or self.done.done() or self._owner.lost:
            return  # a JSON reply has nowhere to put it
        if not self.streaming:
            self.streaming = True
            self._owner.start_stream()
        await self._owner.send_event(frame)


class _Fields:
    """A request's headers by lower-case name: what the checks need, built in one pass.

    ``websockets``' ``Headers`` would do, at several times the cost per request.
    """

    __slots__ = ("_values",)

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        values: dict[str, list[str]] = {}
        for name, value in headers:
            key = name.decode("latin-1").lower()
            if key in values:
                values[key].append(value.decode("latin-1"))
            else:
                values[key] = [value.decode("latin-1")]
        self._values = values

    def get_all(self, key: str) -> list[str]:
        """Every value of a header, in order; empty when it is absent.

        Args:
            key: The header's name, any case.
        """
        return self._values.get(key.lower(), [])

    def get(self, key: str) -> str | None:
        """A header's value; a repeated one is read as one list, which then matches nothing.

        Args:
            key: The header's name in lower case.
        """
        values = self._values.get(key)
        if values is None:
            return None
        return values[0] if len(values) == 1 else ", ".join(values)


@functools.lru_cache(maxsize=64)
def _media_types(value: str) -> frozenset[str]:
    # Clients send the same few Content-Type and Accept values on every request.
    return frozenset(
        part.split(";", 1)[0].strip().lower() for part in value.split(",") if part.strip()
    )


class HttpConnection:
    """Serves the HTTP requests of one TCP connection, one at a time.

    Args:
        connection: The connection's transport side.
        host: The server.
        peer: The client's address, for logs.
    """

    def __init__(self, connection: Transport, host: HttpHost, peer: str) -> None:
        self._connection = connection
        self._host = host
        self._peer = peer
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._waiter: asyncio.Future[None] | None = None
        self._runner: CallRunner | None = None
        self._exchange: _Exchange | None = None
        self.lost = False
        self.task = asyncio.get_running_loop().create_task(self._serve())

    # -- bytes in ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes read from the socket.

        Args:
            data: What arrived.
        """
        self._h11.receive_data(data)
        self._wake()
        if self._runner is not None and len(self._h11.trailing_data[0]) > MAX_HEAD:
            # Reading goes on while a request is served, so that a client
            # that hangs up cancels its call; what it sends meanwhile (the
            # next request) may fill one buffer, no more.
            self._connection.transport.pause_reading()

    def connection_lost(self) -> None:
        """The TCP connection is gone: stop, and cancel the running calls."""
        self.lost = True
        self._wake()
        if self._runner is not None:
            self._runner.cancel_all()
        if self._exchange is not None:
            self._exchange.finish()  # no reply is coming for a cancelled call

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next_event(self, deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.lost or loop.time() >= deadline:
                return None
            # A bare future and a timer: cheaper per request than wait_for.
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(deadline, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None

    # -- bytes out -----------------------------------------------------------

    def _write(self, event: Any) -> None:
        data = self._h11.send(event)
        if data and not self.lost:
            self._connection.transport.write(data)

    def _respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        if self._h11.our_state not in (h11.SEND_RESPONSE, h11.IDLE):
            return  # a reply is under way already
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if headers:
            fields += headers.items()
        if close:
            fields.append(("Connection", "close"))
        conn = self._h11
        # One write, so the reply leaves in one segment.
        data = conn.send(h11.Response(status_code=status, headers=fields)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        if not self.lost:
            self._connection.transport.write(data)

    def _refuse(self, refusal: Refusal, close: bool = False) -> None:
        self._respond(refusal.status, refusal.text.encode(), headers=refusal.headers, close=close)

    def start_stream(self) -> None:
        """Begin an SSE reply (the call sent a notification before its result)."""
        self._write(
            h11.Response(
                status_code=200,
                headers=[("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")],
            )
        )

    async def send_event(self, frame: str) -> None:
        """Send one SSE event and wait until the client reads what is pending.

        Args:
            frame: One encoded JSON-RPC message.
        """
        self._write(h11.Data(data=b"event: message\r\ndata: " + frame.encode() + b"\r\n\r\n"))
        await self._room()

    async def _room(self) -> None:
        if self.lost:
            return
        budget = self._host.settings.max_unsent_bytes
        transport = self._connection.transport
        while transport.get_write_buffer_size() > budget and not transport.is_closing():
            try:
                await self._connection.drain()
            except Exception:  # lost: the next read finds out
                return

    # -- requests ------------------------------------------------------------

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        transport = self._connection.transport
        try:
            while not self.lost:
                try:
                    event = await self._next_event(loop.time() + REQUEST_TIMEOUT)
                    if not isinstance(event, h11.Request):
                        return  # closed, timed out, or the client ended the connection
                    await self._request(event, loop.time() + BODY_TIMEOUT)
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    try:  # h11 lets a server answer what it could not parse
                        self._respond(status, f"Bad request: {exc}\n".encode(), close=True)
                    except h11.LocalProtocolError:
                        pass
                    return
                finally:
                    self._runner = self._exchange = None
                    self._host.http_idle(self._connection)
                await self._room()
                if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                    return
                self._h11.start_next_cycle()
                transport.resume_reading()
        except Exception:
            logger.exception("HTTP connection from %s failed", self._peer)
        finally:
            if not self.lost:
                transport.close()

    async def _request(self, request: h11.Request, deadline: float) -> None:
        host = self._host
        settings = host.settings
        # raw_items() is one list; iterating h11's Headers is a call per line.
        headers = _Fields(request.headers.raw_items())
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("latin-1").partition("?")[0]
        if path == "/healthz":
            refusal = host.check_host(self._peer, headers)
            if refusal is None and method != "GET":
                refusal = Refusal(405, "Method not allowed\n", {"Allow": "GET"})
            if refusal is not None:
                self._refuse(refusal, close=True)
                return
            status, body = host.health()
            self._respond(status, body, "application/json", {"Cache-Control": "no-store"})
            await self._body(deadline, 0)  # a GET has none; h11 needs its end
            return
        if method != "POST":
            self._refuse(Refusal(405, "Method not allowed\n", {"Allow": "GET, POST"}), close=True)
            return
        if host.draining:
            self._refuse(Refusal(503, "Server shutting down\n"), close=True)
            return
        refusal = host.check_request(self._peer, headers)
        if refusal is not None:
            self._refuse(refusal, close=True)
            return
        if _media_types(headers.get("content-type") or "") != {"application/json"}:
            self._refuse(Refusal(415, "Content-Type must be application/json\n"), close=True)
            return
        accept = _media_types(headers.get("accept") or "*/*")
        json_ok = bool(accept & {"application/json", "application/*", "*/*"})
        sse_ok = bool(accept & {"text/event-stream", "text/*", "*/*"})
        if not (json_ok or sse_ok):
            self._refuse(
                Refusal(406, "Accept must allow application/json or text/event-stream\n"),
                close=True,
            )
            return
        limit = settings.max_message_size
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            self._refuse(Refusal(413, f"Body over {limit} bytes (max_message_size)\n"), close=True)
            return
        content = await self._body(deadline, limit)
        if content is None:
            return
        await self._serve_body(content, headers, json_ok, sse_ok)

    async def _body(self, deadline: float, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(deadline)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    self._refuse(
                        Refusal(413, f"Body over {limit} bytes (max_message_size)\n"), close=True
                    )
                    return None
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                if event is None and not self.lost:
                    self._refuse(Refusal(408, "Request body too slow\n"), close=True)
                return None

    async def _serve_body(self, body: bytes, headers: _Fields, json_ok: bool, sse_ok: bool) -> None:
        host = self._host
        header_version = headers.get("mcp-protocol-version")
        try:
            message = decode(body)
        except (ValueError, UnicodeDecodeError):
            error = ParseError("Parse error: the body is not valid JSON")
            self._reply(400, ServerProtocol.error_frame(None, error), sse_ok and not json_ok)
            return
        version = _modern_version(message)
        problem = _header_problem(message, version, headers, header_version)
        if problem is not None:
            request_id = message.get("id") if isinstance(message, dict) else None
            if not isinstance(request_id, (str, int, float)) or isinstance(request_id, bool):
                request_id = None
            frame = ServerProtocol.error_frame(request_id, problem)
            self._reply(400, frame, sse_ok and not json_ok)
            return
        modern = version is not None
        exchange = _Exchange(self, sse_ok)
        protocol, runner = host.protocol_and_runner(
            exchange, version=None if modern or header_version is None else header_version
        )
        self._runner, self._exchange = runner, exchange
        if not host.http_busy(self._connection, runner):
            self._refuse(Refusal(503, "Too many connections\n"), close=True)
            return
        protocol.receive_message(message)
        runner.start_calls()
        frames = protocol.data_to_send()
        if protocol.listening:
            await self._listen(message, protocol, exchange, frames, sse_ok)
            return
        if frames:
            exchange.final.extend(frames)
            exchange.finish()
        if not _expects_reply(message):
            if runner.tasks:
                # A tools/call notification runs; its (discarded) end is awaited
                # so that shutdown and /healthz count it.
                await asyncio.wait(list(runner.tasks))
            self._respond(202, b"")
            return
        await exchange.done
        if self.lost:
            return
        if exchange.streaming:
            # The final reply went out as an event already.
            self._write(h11.EndOfMessage())
            return
        frame = exchange.final[0] if exchange.final else ""
        status = 200
        if modern and '"error"' in frame:
            reply = json.loads(frame)
            if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
                status = _STATUS_OF_ERROR.get(reply["error"].get("code"), 200)
        self._reply(status, frame, sse_ok and not json_ok)

    async def _listen(
        self,
        message: dict[str, Any],
        protocol: ServerProtocol,
        exchange: _Exchange,
        frames: list[str],
        sse_ok: bool,
    ) -> None:
        """Serve a ``subscriptions/listen`` stream (2026-07-28) as an SSE response.

        It stays open, with the acknowledgement first and then the updates
        and list changes asked for, until the client hangs up or the server
        shuts down (which sends its result and ends the response).
        """
        if not sse_ok:
            problem = InvalidRequest(
                "Invalid Request: subscriptions/listen is a stream of notifications;"
                " its request must accept text/event-stream"
            )
            self._reply(406, ServerProtocol.error_frame(message["id"], problem), as_sse=False)
            return
        exchange.streaming = True
        self.start_stream()
        unfollow = self._host.follow(exchange, protocol)
        try:
            async with exchange.sending:
                for frame in frames:
                    await self.send_event(frame)
            await exchange.done
        finally:
            unfollow()
        if not self.lost:
            self._write(h11.EndOfMessage())

    def _reply(self, status: int, frame: str, as_sse: bool) -> None:
        if as_sse:
            body = b"event: message\r\ndata: " + frame.encode() + b"\r\n\r\n"
            self._respond(status, body, "text/event-stream", {"Cache-Control": "no-store"})
        else:
            self._respond(status, frame.encode(), "application/json")


def _modern_version(message: Any) -> Any:
    if type(message) is not dict:
        return None
    params = message.get("params")
    meta = params.get("_meta") if type(params) is dict else None
    return meta.get(META_PROTOCOL_VERSION) if type(meta) is dict else None


def _expects_reply(message: Any) -> bool:
    if type(message) is list:
        return any(_expects_reply(entry) for entry in message) or not message
    if type(message) is not dict:
        return True  # an invalid request is answered
    return (
        "id" in message
        and "method" in message
        or ("method" not in message and "result" not in message and "error" not in message)
    )


def _header_problem(
    message: Any, version: Any, headers: _Fields, header_version: str | None
) -> MCPError | None:
    """Why the headers and the body disagree, if they do."""
    if header_version is not None and header_version not in ALL_VERSIONS:
        return UnsupportedProtocolVersion(
            f"Unsupported MCP-Protocol-Version header: {header_version!r}",
            data={"supported": list(ALL_VERSIONS), "requested": header_version},
        )
    if type(message) is list:
        if header_version != _BATCH_VERSION:
            return InvalidRequest(
                f"Invalid Request: Streamable HTTP takes a batch only under {_BATCH_VERSION}"
            )
        return None
    if version is None:
        if header_version in MODERN_VERSIONS and _expects_reply(message):
            return InvalidRequest(
                "Invalid Request: the MCP-Protocol-Version header names"
                f" {header_version} but params._meta does not"
            )
        return None
    if header_version is not None and header_version != version:
        return InvalidParams(
            f"Invalid params: the MCP-Protocol-Version header ({header_version})"
            f" disagrees with params._meta ({version})"
        )
    assert type(message) is dict
    method = headers.get("mcp-method")
    if method is None:
        return InvalidRequest("Invalid Request: the Mcp-Method header is missing")
    if method != message.get("method"):
        return InvalidRequest(
            f"Invalid Request: the Mcp-Method header ({method}) disagrees with the body"
        )
    name = headers.get("mcp-name")
    params = message.get("params")
    named = None
    if type(params) is dict:
        named = params.get("uri" if method == "resources/read" else "name")
    if name is not None and isinstance(named, str) and name != named:
        return InvalidRequest(
            f"Invalid Request: the Mcp-Name header ({name}) disagrees with the body"
        )
    return None
