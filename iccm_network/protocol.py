"""JSON-RPC 2.0 and MCP for one connection, without any I/O.

``ServerProtocol`` takes received text frames and produces text frames to
send and tool calls to run; the transport does the running and the sending::

    protocol.receive_text(frame)
    for call in protocol.calls_to_run(): start it, later protocol.complete(call, outcome)
    for call in protocol.calls_to_cancel(): cancel it
    for frame in protocol.data_to_send(): send it

Two eras of MCP share the connection. Handshake-era requests follow the
revision negotiated by ``initialize`` (2024-11-05 rules before it). A request
whose ``params._meta`` carries the 2026-07-28 envelope is served by that
revision's stateless rules and depends on nothing sent before it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from asyncio import CancelledError
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from iccm_network.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MCPError,
    MethodNotFound,
    ParseError,
    ServerBusy,
    UnsupportedProtocolVersion,
)
from iccm_network.logs import log_refused
from iccm_network.results import CallTimedOut, correlation_id, error_result, outcome_result
from iccm_network.routes import RouteTable, Tool
from iccm_network.versions import (
    ALL_VERSIONS,
    DEFAULT_VERSION,
    HANDSHAKE_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    MODERN_VERSIONS,
    Features,
    features,
)

__all__ = ["CallTimedOut", "ServerInfo", "ServerProtocol", "ToolCall", "encode"]

logger = logging.getLogger("iccm_network.protocol")

RequestId = str | int | float | None

_ascii_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_utf8_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: Python reads infinity, JSON has none to send back
        raise ValueError(f"{text} is out of range")
    return value


_decode = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode
_NO_ID: Final = object()


def encode(message: Any) -> str:
    """Serialize one outgoing message as compact JSON text.

    Text that could not be sent as UTF-8 (a lone surrogate echoed back from
    a client's ``\\ud800`` escape) falls back to ASCII escapes.

    Args:
        message: A JSON-able message or batch.
    """
    text = _utf8_encode(message)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _ascii_encode(message)
    return text


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the server says about itself in ``initialize`` and ``server/discover``.

    Args:
        name: The server's name.
        version: The server's version.
        title: A human-readable title.
        instructions: Guidance for the model using the server.
        list_ttl_ms: How long 2026-07-28 clients may cache ``tools/list``.
        page_size: Tools per ``tools/list`` page; ``None`` sends one page.
    """

    name: str
    version: str
    title: str | None = None
    instructions: str | None = None
    list_ttl_ms: int = 60_000
    page_size: int | None = None

    def implementation(self) -> dict[str, Any]:
        """The ``Implementation`` object (``serverInfo``)."""
        info: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.title is not None:
            info["title"] = self.title
        return info


class _Batch:
    """Replies of one batch, sent together once every call in it is done."""

    __slots__ = ("pending", "replies")

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.pending = 0


@dataclass(eq=False, slots=True)
class ToolCall:
    """A validated ``tools/call`` for the transport to run.

    Args:
        tool: The tool to call.
        arguments: Keyword arguments, already converted to Python types.
        request_id: The request's id (``None`` for a notification).
        features: The protocol revision the call is served under.
        client_info: The caller's ``clientInfo``, when known.
        progress_token: The request's ``_meta.progressToken``, if any.
    """

    tool: Tool
    arguments: dict[str, Any]
    request_id: RequestId
    features: Features
    client_info: Mapping[str, Any] | None = None
    progress_token: str | int | None = None
    notification: bool = False
    cancelled: bool = False
    batch: _Batch | None = field(default=None, repr=False)


def _id_key(request_id: Any) -> tuple[type, Any]:
    # "1" and 1 are different ids; so are 1 and True in JSON.
    return (type(request_id), request_id)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _response(request_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: RequestId, error: MCPError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_error()}


class ServerProtocol:
    """The server side of one MCP connection, as a pure state machine.

    Args:
        routes: The tools to serve.
        info: What the server says about itself.
        max_in_flight: Calls that may run at once before new ones are refused
            with a ``ServerBusy`` error.
    """

    def __init__(self, routes: RouteTable, info: ServerInfo, *, max_in_flight: int = 256) -> None:
        self._routes = routes
        self._tool_named = dict(routes).get  # a plain dict's get: the hot path's lookup
        self._info = info
        self._max_in_flight = max_in_flight
        self._version: str | None = None
        self._features = features(DEFAULT_VERSION)
        self._client_info: Mapping[str, Any] | None = None
        self._writes: list[str] = []
        self._to_run: list[ToolCall] = []
        self._to_cancel: list[ToolCall] = []
        self._running: dict[tuple[type, Any], ToolCall] = {}
        self._in_flight = 0

    @property
    def protocol_version(self) -> str | None:
        """The revision negotiated by ``initialize``, or ``None`` before it."""
        return self._version

    @property
    def client_info(self) -> Mapping[str, Any] | None:
        """The ``clientInfo`` sent with ``initialize``, if any."""
        return self._client_info

    @property
    def in_flight(self) -> int:
        """Calls handed to the transport and not yet completed."""
        return self._in_flight

    # -- input ---------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Handle one received text frame: a message or a batch.

        Args:
            text: The frame's text.
        """
        try:
            message = _decode(text)
        except (ValueError, RecursionError):
            self._write(_error(None, ParseError("Parse error: the frame is not valid JSON")))
            return
        if isinstance(message, list):
            self._receive_batch(message)
        else:
            reply = self._receive_message(message, None)
            if reply is not None:
                self._write(reply)

    def calls_to_run(self) -> list[ToolCall]:
        """Calls accepted since the last look; the transport must start each."""
        calls, self._to_run = self._to_run, []
        return calls

    def calls_to_cancel(self) -> list[ToolCall]:
        """Running calls the client cancelled; the transport must cancel each."""
        calls, self._to_cancel = self._to_cancel, []
        return calls

    def data_to_send(self) -> list[str]:
        """Frames produced since the last look, in order."""
        writes, self._writes = self._writes, []
        return writes

    def complete(self, call: ToolCall, outcome: Any) -> None:
        """Record how a call ended and queue its reply.

        Args:
            call: A call from ``calls_to_run``.
            outcome: Its return value, or the exception it ended with
                (``CallTimedOut`` for a timeout, ``CancelledError`` when it
                was cancelled; a cancelled call gets no reply).
        """
        self._in_flight -= 1
        key = _id_key(call.request_id)
        if self._running.get(key) is call:
            del self._running[key]
        reply: dict[str, Any] | None = None
        if not (call.cancelled or isinstance(outcome, CancelledError) or call.notification):
            reply = _response(call.request_id, outcome_result(call.tool, outcome, call.features))
        batch = call.batch
        if batch is None:
            if reply is not None:
                self._write(reply)
            return
        if reply is not None:
            batch.replies.append(reply)
        batch.pending -= 1
        if batch.pending == 0 and batch.replies:
            self._write(batch.replies)

    def progress_frame(self, params: Mapping[str, Any]) -> str:
        """A ``notifications/progress`` frame, for a call's ``Context``.

        Args:
            params: The notification's params.
        """
        return encode({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    # -- dispatch ------------------------------------------------------------

    def _write(self, message: Any) -> None:
        self._writes.append(encode(message))

    def _receive_batch(self, messages: list[Any]) -> None:
        if not messages:
            self._write(_error(None, InvalidRequest("Invalid Request: empty batch")))
            return
        batch = _Batch()
        for message in messages:
            reply = self._receive_message(message, batch)
            if reply is not None:
                batch.replies.append(reply)
        if batch.pending == 0 and batch.replies:
            self._write(batch.replies)

    def _receive_message(self, message: Any, batch: _Batch | None) -> dict[str, Any] | None:
        """Handle one message; return its immediate reply, if it has one."""
        if type(message) is not dict:
            return _error(None, InvalidRequest("Invalid Request: expected a JSON object"))
        raw_id = message.get("id", _NO_ID)
        notification = raw_id is _NO_ID
        valid_id = notification or _valid_id(raw_id)
        request_id: RequestId = raw_id if valid_id and not notification else None
        method = message.get("method")
        params = message.get("params", _NO_ID)
        problem = None
        if type(method) is not str:
            if method is None and ("result" in message or "error" in message):
                return None  # a response from the client; this server sends no requests
            problem = 'Invalid Request: "method" must be a string'
        elif message.get("jsonrpc") != "2.0":
            problem = 'Invalid Request: "jsonrpc" must be exactly "2.0"'
        elif not valid_id:
            problem = 'Invalid Request: "id" must be a string, a number or null'
        elif params is _NO_ID:
            params = None
        elif type(params) is not dict and type(params) is not list:
            problem = 'Invalid Request: "params" must be an object or an array'
        if problem is not None:
            # Not a valid request, so not a valid notification either: JSON-RPC
            # answers it, with a null id when none could be read.
            return _error(request_id, InvalidRequest(problem))
        assert isinstance(method, str)
        try:
            if notification:
                self._notification(method, params, batch)
                return None
            result = self._request(method, params, request_id, batch)
        except MCPError as exc:
            return None if notification else _error(request_id, exc)
        except Exception:
            incident = correlation_id()
            logger.exception(
                "unexpected error handling %r [correlation id %s]",
                method,
                incident,
                extra={"method": method, "trace_id": incident},
            )
            if notification:
                return None
            return _error(
                request_id,
                InternalError("Internal error", data={"correlationId": incident}),
            )
        return None if result is None else _response(request_id, result)

    def _notification(self, method: str, params: Any, batch: _Batch | None) -> None:
        if method == "notifications/cancelled":
            if isinstance(params, dict) and _valid_id(params.get("requestId", [])):
                call = self._running.get(_id_key(params["requestId"]))
                if call is not None and not call.cancelled:
                    call.cancelled = True
                    self._to_cancel.append(call)
        elif method == "tools/call":
            # JSON-RPC runs a notification and discards its result.
            self._request(method, params, None, batch, notification=True)

    def _request(
        self,
        method: str,
        params: Any,
        request_id: RequestId,
        batch: _Batch | None,
        *,
        notification: bool = False,
    ) -> dict[str, Any] | None:
        """Serve one request; ``None`` means its reply comes from ``complete``."""
        if params is None:
            params = {}
        elif type(params) is not dict:
            raise InvalidParams(f"Invalid params: {method} takes its params by name")
        meta = params.get("_meta")
        if type(meta) is not dict:
            meta = None
        client_info: Mapping[str, Any] | None
        if meta is not None and (META_PROTOCOL_VERSION in meta or META_CLIENT_CAPABILITIES in meta):
            feats = self._modern_features(meta)
            info = meta.get(META_CLIENT_INFO)
            client_info = info if isinstance(info, dict) else None
        elif method == "server/discover":
            raise InvalidParams(
                f"Invalid params: server/discover needs params._meta[{META_PROTOCOL_VERSION!r}]"
            )
        else:
            feats = self._features
            client_info = self._client_info

        if method == "tools/call":
            return self._tools_call(
                params, meta, request_id, feats, client_info, batch, notification
            )
        if method == "tools/list":
            return self._tools_list(params, feats)
        if method == "ping":
            return self._finish({}, feats)
        if method == "initialize" and not feats.modern:
            return self._initialize(params)
        if method == "server/discover":
            return self._discover(feats)
        raise MethodNotFound(f"Method not found: {method}")

    def _modern_features(self, meta: Mapping[str, Any]) -> Features:
        requested = meta.get(META_PROTOCOL_VERSION)
        if requested is None:
            raise InvalidParams(f"Invalid params: params._meta needs {META_PROTOCOL_VERSION!r}")
        if requested not in MODERN_VERSIONS:
            raise UnsupportedProtocolVersion(
                f"Unsupported protocol version: {requested!r}",
                data={"supported": list(ALL_VERSIONS), "requested": requested},
            )
        if not isinstance(meta.get(META_CLIENT_CAPABILITIES), dict):
            raise InvalidParams(
                f"Invalid params: params._meta needs {META_CLIENT_CAPABILITIES!r} (an object)"
            )
        return features(requested)

    @staticmethod
    def _finish(result: dict[str, Any], feats: Features) -> dict[str, Any]:
        if feats.result_type:
            result["resultType"] = "complete"
        return result

    def _capabilities(self) -> dict[str, Any]:
        return {"tools": {"listChanged": False}}

    def _initialize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        offered = params.get("protocolVersion")
        version = offered if offered in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION
        assert isinstance(version, str)
        self._version = version
        self._features = features(version)
        info = params.get("clientInfo")
        self._client_info = info if isinstance(info, dict) else None
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": self._capabilities(),
            "serverInfo": self._info.implementation(),
        }
        if self._info.instructions is not None:
            result["instructions"] = self._info.instructions
        return result

    def _discover(self, feats: Features) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": list(ALL_VERSIONS),
            "capabilities": self._capabilities(),
            "ttlMs": self._info.list_ttl_ms,
            "cacheScope": "public",
            "_meta": {META_SERVER_INFO: self._info.implementation()},
        }
        if self._info.instructions is not None:
            result["instructions"] = self._info.instructions
        return self._finish(result, feats)

    def _tools_list(self, params: Mapping[str, Any], feats: Features) -> dict[str, Any]:
        tools = self._routes.definitions(feats)
        start = 0
        cursor = params.get("cursor")
        if cursor is not None:
            start = self._decode_cursor(cursor, len(tools))
        size = self._info.page_size
        end = len(tools) if size is None else min(start + size, len(tools))
        result: dict[str, Any] = {"tools": tools[start:end]}
        if end < len(tools):
            result["nextCursor"] = base64.urlsafe_b64encode(str(end).encode()).decode()
        if feats.modern:
            result["ttlMs"] = self._info.list_ttl_ms
            result["cacheScope"] = "public"
        return self._finish(result, feats)

    @staticmethod
    def _decode_cursor(cursor: Any, count: int) -> int:
        try:
            position = int(base64.urlsafe_b64decode(str(cursor).encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            position = -1
        if not 0 <= position <= count:
            raise InvalidParams("Invalid params: unknown cursor")
        return position

    def _tools_call(
        self,
        params: Mapping[str, Any],
        meta: Mapping[str, Any] | None,
        request_id: RequestId,
        feats: Features,
        client_info: Mapping[str, Any] | None,
        batch: _Batch | None,
        notification: bool,
    ) -> dict[str, Any] | None:
        name = params.get("name")
        if type(name) is not str:
            log_refused(name, request_id, "invalid-params")
            raise InvalidParams('Invalid params: tools/call needs a string "name"')
        tool = self._tool_named(name)
        if tool is None:
            log_refused(name, request_id, "unknown-tool")
            raise InvalidParams(f"Unknown tool: {name}", data={"name": name})
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        elif type(arguments) is not dict:
            log_refused(name, request_id, "invalid-params")
            raise InvalidParams('Invalid params: "arguments" must be an object')
        try:
            kwargs = tool.prepare(arguments)
        except InvalidParams as exc:
            problems = exc.data["errors"]
            log_refused(name, request_id, "invalid-arguments", problems)
            if not feats.validation_as_tool_error:
                raise
            listing = "; ".join(f"{p['path'] or '/'}: {p['message']}" for p in problems)
            return error_result(f"{exc.message}: {listing}", feats, data=exc.data)
        if self._in_flight >= self._max_in_flight:
            log_refused(name, request_id, "busy")
            raise ServerBusy(
                f"Server busy: {self._in_flight} calls already running on this connection",
                data={"maxInFlight": self._max_in_flight},
            )
        token = None if meta is None else meta.get("progressToken")
        call = ToolCall(
            tool=tool,
            arguments=kwargs,
            request_id=request_id,
            features=feats,
            client_info=client_info,
            progress_token=token if isinstance(token, (str, int)) else None,
            notification=notification,
            batch=batch,
        )
        self._in_flight += 1
        if batch is not None:
            batch.pending += 1
        if not notification:
            self._running[_id_key(request_id)] = call
        self._to_run.append(call)
        return None
