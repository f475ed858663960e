"""JSON-RPC 2.0 and MCP for one connection, without any I/O.

``ServerProtocol`` takes received text frames and produces text frames to
send and tool calls to run; the transport does the running and the sending::

    protocol.receive_text(frame)
    for call in protocol.calls_to_run(): start it, later protocol.complete(call, outcome)
    for call in protocol.calls_to_cancel(): cancel it
    for frame in protocol.data_to_send(): send it
    while protocol.more_to_process: let others run, then protocol.process_more()

A batch is handled ``batch_slice`` entries at a time, so the transport can
let other connections run between slices; a batch of more than ``max_batch``
entries is refused whole.

Two eras of MCP share the connection. Handshake-era requests follow the
revision negotiated by ``initialize`` (2024-11-05 rules before it). A request
whose ``params._meta`` carries the 2026-07-28 envelope is served by that
revision's stateless rules and depends on nothing sent before it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from iccm_network.catalog.table import META_SUBSCRIPTION_ID, Catalog
from iccm_network.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MCPError,
    MethodNotFound,
    ParseError,
    UnsupportedProtocolVersion,
)
from iccm_network.protocol.calls import Batch, ServerInfo, ToolCall
from iccm_network.protocol.capabilities import LOG_LEVELS, log_level_index, server_capabilities
from iccm_network.protocol.catalog_methods import CATALOG_METHODS, CatalogMethods, Listen
from iccm_network.protocol.outcomes import (
    Cancelled,
    Outcome,
    Raised,
    Returned,
    ShutDown,
    TimedOut,
)
from iccm_network.protocol.results import correlation_id, outcome_result
from iccm_network.protocol.tool_methods import ToolMethods
from iccm_network.protocol.versions import (
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
from iccm_network.protocol.wire import (
    NO_ID,
    RequestId,
    decode,
    encode,
    error_message,
    finish_result,
    id_key,
    notification_message,
    result_message,
    valid_id,
)
from iccm_network.tools.routes import RouteTable

__all__ = [
    "Cancelled",
    "Outcome",
    "Raised",
    "Returned",
    "ServerInfo",
    "ServerProtocol",
    "ShutDown",
    "TimedOut",
    "ToolCall",
    "decode",
    "encode",
]

logger = logging.getLogger("iccm_network.protocol")


class ServerProtocol(ToolMethods, CatalogMethods):
    """The server side of one MCP connection, as a pure state machine.

    Args:
        routes: The tools to serve.
        info: What the server says about itself.
        max_in_flight: Calls that may run at once before new ones are refused
            with a ``ServerBusy`` error.
        max_batch: Entries a batch may hold; a larger one is refused whole.
        max_subscriptions: Resource subscriptions the connection may hold
            (URIs subscribed to, open listen streams and the URIs they name).
        batch_slice: Batch entries handled per ``receive_text`` or
            ``process_more``; ``None`` handles a whole batch at once.
        catalog: The resources, prompts and completion hooks to serve.
        version: The handshake-era revision requests are served under
            until an ``initialize`` says otherwise (2024-11-05 when ``None``);
            a transport without sessions (Streamable HTTP) gives the one its
            request names.
    """

    def __init__(
        self,
        routes: RouteTable,
        info: ServerInfo,
        *,
        max_in_flight: int = 256,
        max_batch: int = 1000,
        max_subscriptions: int = 1000,
        batch_slice: int | None = None,
        catalog: Catalog | None = None,
        version: str | None = None,
    ) -> None:
        self._routes = routes
        self._tool_named = routes.lookup  # a plain dict's get: the hot path's lookup
        # Handshake era: every level goes out until logging/setLevel raises it.
        self._log_threshold = 0
        self._info = info
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._max_subscriptions = max_subscriptions
        self._batch_slice = batch_slice
        # At most one batch waits at a time (the read loop finishes one before
        # reading on); a list is far smaller than an empty deque per connection.
        self._batches: list[Batch] = []
        self._version: str | None = None
        self._features = features(DEFAULT_VERSION if version is None else version)
        self._client_info: Mapping[str, Any] | None = None
        self._writes: list[str] = []
        self._to_run: list[ToolCall] = []
        self._to_cancel: list[ToolCall] = []
        self._running: dict[tuple[type, Any], ToolCall] = {}
        self._in_flight = 0
        self._catalog = catalog if catalog is not None else Catalog()
        self._subscribed: set[str] = set()  # resources/subscribe, handshake era
        # Open subscriptions/listen streams (2026-07-28) by id key.
        self._listens: dict[tuple[type, Any], Listen] = {}

    @property
    def protocol_version(self) -> str | None:
        """The revision negotiated by ``initialize``, or ``None`` before it."""
        return self._version

    @property
    def client_info(self) -> Mapping[str, Any] | None:
        """The ``clientInfo`` sent with ``initialize``, if any."""
        return self._client_info

    @property
    def more_to_process(self) -> bool:
        """True while batch entries wait for ``process_more``."""
        return bool(self._batches)

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
            message = decode(text)
        except (ValueError, RecursionError):
            self._write(error_message(None, ParseError("Parse error: the frame is not valid JSON")))
            return
        self.receive_message(message)

    def receive_message(self, message: Any) -> None:
        """Handle one message or batch that the transport decoded already.

        Args:
            message: What ``decode`` returned for the frame.
        """
        if isinstance(message, list):
            self._receive_batch(message)
            self.process_more()
        else:
            reply = self._receive_message(message, None)
            if reply is not None:
                self._write(reply)

    def process_more(self) -> None:
        """Handle the next slice of the batches received so far."""
        budget = self._batch_slice
        while self._batches and (budget is None or budget > 0):
            batch = self._batches[0]
            end = len(batch.messages) if budget is None else batch.position + budget
            for message in batch.messages[batch.position : end]:
                reply = self._receive_message(message, batch)
                if reply is not None:
                    batch.replies.append(reply)
            handled = min(end, len(batch.messages)) - batch.position
            batch.position += handled
            if budget is not None:
                budget -= handled
            if not batch.reading:
                self._batches.pop(0)
                batch.messages = []
                if batch.pending == 0 and batch.replies:
                    self._write(batch.replies)

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

    def complete(self, call: ToolCall, outcome: Outcome) -> None:
        """Record how a call ended and queue its reply.

        Args:
            call: A call from ``calls_to_run``.
            outcome: How it ended; a ``Cancelled`` call gets no reply.
        """
        self._in_flight -= 1
        key = id_key(call.request_id)
        if self._running.get(key) is call:
            del self._running[key]
        reply: dict[str, Any] | None = None
        if not (call.cancelled or isinstance(outcome, Cancelled) or call.notification):
            if call.render is None:
                result = outcome_result(call.tool, outcome, call.features)
                reply = result_message(call.request_id, result)
            else:
                shaped = call.render(outcome, call.features)
                if isinstance(shaped, MCPError):
                    reply = error_message(call.request_id, shaped)
                else:
                    reply = result_message(call.request_id, finish_result(shaped, call.features))
        batch = call.batch
        if batch is None:
            if reply is not None:
                self._write(reply)
            return
        if reply is not None:
            batch.replies.append(reply)
        batch.pending -= 1
        if batch.pending == 0 and batch.replies and not batch.reading:
            self._write(batch.replies)

    @staticmethod
    def error_frame(request_id: RequestId, error: MCPError) -> str:
        """An error reply the transport sends itself (a request it refuses).

        Args:
            request_id: The request's id, ``None`` when it cannot be read.
            error: The error to send.
        """
        return encode(error_message(request_id, error))

    def progress_frame(self, params: Mapping[str, Any]) -> str:
        """A ``notifications/progress`` frame, for a call's ``Context``.

        Args:
            params: The notification's params.
        """
        return encode(notification_message("notifications/progress", params))

    def resource_updated(self, uri: str) -> None:
        """Queue ``notifications/resources/updated`` if this connection subscribed to ``uri``.

        Handshake-era subscriptions (``resources/subscribe``) get a plain
        notification; each 2026-07-28 ``subscriptions/listen`` stream that
        names ``uri`` gets one carrying its subscription id.

        Args:
            uri: The resource that changed.
        """
        if uri in self._subscribed:
            self._notify("notifications/resources/updated", {"uri": uri})
        for listen in self._listens.values():
            if uri in listen.uris:
                meta = {META_SUBSCRIPTION_ID: listen.request_id}
                self._notify("notifications/resources/updated", {"_meta": meta, "uri": uri})

    @property
    def listening(self) -> bool:
        """True while a 2026-07-28 ``subscriptions/listen`` stream is open."""
        return bool(self._listens)

    def end_listens(self) -> None:
        """End every open ``subscriptions/listen`` stream: queue the result of each.

        The server does this when it shuts down, so that each client knows
        its stream ended gracefully rather than with the connection.
        """
        for listen in self._listens.values():
            self._write(result_message(listen.request_id, listen.closing))
        self._listens.clear()

    def log_frame(self, call: ToolCall, params: Mapping[str, Any]) -> str | None:
        """A ``notifications/message`` frame for a call's log message, if it is wanted.

        ``None`` when the message is below the level the client asked for:
        the connection's ``logging/setLevel`` in the handshake era, the
        request's ``_meta`` level under 2026-07-28 (none asked, none sent).

        Args:
            call: The call that logs.
            params: ``level``, ``logger`` and ``data``.
        """
        if call.features.modern:
            if call.log_level is None:
                return None
            threshold = LOG_LEVELS.index(call.log_level)
        else:
            threshold = self._log_threshold
        if LOG_LEVELS.index(params["level"]) < threshold:
            return None
        return encode(notification_message("notifications/message", params))

    def replace_routes(self, routes: RouteTable) -> None:
        """Serve ``routes`` from now on (tools added or removed after start).

        Calls already running keep the tool they started with.

        Args:
            routes: The new route table.
        """
        self._routes = routes
        self._tool_named = routes.lookup

    def list_changed_frames(self, kind: str) -> list[str]:
        """The ``notifications/<kind>/list_changed`` frames this connection takes.

        One if it completed the handshake-era ``initialize``, and one for
        each 2026-07-28 ``subscriptions/listen`` stream that asked for the
        kind's changes (carrying its subscription id). Other 2026-07-28
        clients re-list when their cache expires.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
        """
        method = f"notifications/{kind}/list_changed"
        frames = [encode(notification_message(method))] if self._version is not None else []
        for listen in self._listens.values():
            if kind in listen.lists:
                params = {"_meta": {META_SUBSCRIPTION_ID: listen.request_id}}
                frames.append(encode(notification_message(method, params)))
        return frames

    # -- dispatch ------------------------------------------------------------

    def _write(self, message: Any) -> None:
        self._writes.append(encode(message))

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        self._write(notification_message(method, params))

    def _receive_batch(self, messages: list[Any]) -> None:
        if not messages:
            self._write(error_message(None, InvalidRequest("Invalid Request: empty batch")))
            return
        if len(messages) > self._max_batch:
            problem = (
                f"Invalid Request: a batch may hold at most {self._max_batch} messages"
                f" (max_batch), this one holds {len(messages)}"
            )
            self._write(
                error_message(None, InvalidRequest(problem, data={"maxBatch": self._max_batch}))
            )
            return
        self._batches.append(Batch(messages))

    def _receive_message(self, message: Any, batch: Batch | None) -> dict[str, Any] | None:
        """Handle one message; return its immediate reply, if it has one."""
        if type(message) is not dict:
            return error_message(None, InvalidRequest("Invalid Request: expected a JSON object"))
        raw_id = message.get("id", NO_ID)
        notification = raw_id is NO_ID
        id_ok = notification or valid_id(raw_id)
        request_id: RequestId = raw_id if id_ok and not notification else None
        method = message.get("method")
        params = message.get("params", NO_ID)
        problem = None
        if type(method) is not str:
            if method is None and ("result" in message or "error" in message):
                return None  # a response from the client; this server sends no requests
            problem = 'Invalid Request: "method" must be a string'
        elif message.get("jsonrpc") != "2.0":
            problem = 'Invalid Request: "jsonrpc" must be exactly "2.0"'
        elif not id_ok:
            problem = 'Invalid Request: "id" must be a string, a number or null'
        elif params is NO_ID:
            params = None
        elif type(params) is not dict and type(params) is not list:
            problem = 'Invalid Request: "params" must be an object or an array'
        if problem is not None:
            # Not a valid request, so not a valid notification either: JSON-RPC
            # answers it, with a null id when none could be read.
            return error_message(request_id, InvalidRequest(problem))
        assert isinstance(method, str)
        try:
            if notification:
                self._notification(method, params, batch)
                return None
            result = self._request(method, params, request_id, batch)
        except MCPError as exc:
            return None if notification else error_message(request_id, exc)
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
            return error_message(
                request_id,
                InternalError("Internal error", data={"correlationId": incident}),
            )
        return None if result is None else result_message(request_id, result)

    def _notification(self, method: str, params: Any, batch: Batch | None) -> None:
        if method == "notifications/cancelled":
            if isinstance(params, dict) and valid_id(params.get("requestId", [])):
                call = self._running.get(id_key(params["requestId"]))
                if call is not None and not call.cancelled:
                    call.cancelled = True
                    self._to_cancel.append(call)
                # Cancelling a subscriptions/listen request closes its stream.
                self._listens.pop(id_key(params["requestId"]), None)
        elif method == "tools/call":
            # JSON-RPC runs a notification and discards its result.
            self._request(method, params, None, batch, notification=True)

    def _request(
        self,
        method: str,
        params: Any,
        request_id: RequestId,
        batch: Batch | None,
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
        if method == "ping" and not feats.modern:
            return {}
        if method == "logging/setLevel" and not feats.modern:
            self._log_threshold = log_level_index(params.get("level"))
            return {}
        if method in CATALOG_METHODS:
            return self._catalog_request(
                method, params, meta, request_id, feats, client_info, batch
            )
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

    def _capabilities(self) -> dict[str, Any]:
        catalog = self._catalog
        return server_capabilities(
            tools=bool(self._routes),
            resources=catalog.has_resources,
            resource_subscribe=True,
            prompts=bool(catalog.prompts),
            completions=catalog.has_completions,
        )

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
        return finish_result(result, feats)
