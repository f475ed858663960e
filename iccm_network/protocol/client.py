"""The client's JSON-RPC core: requests out, replies and notifications in, no I/O.

``ClientProtocol`` is to every client what ``ServerProtocol`` is to the
server: it allocates ids, encodes requests (one by one or as a batch),
queues what is to be sent, matches replies to their requests, routes
``notifications/progress`` to the request they are about, answers the
server's own requests (``ping``), keeps each request's deadline as data and
turns errors into the typed exceptions. It never reads, writes or sleeps:
``MCPClient``, the Godot shipper, ``doctor`` and the in-memory connection
drive it, each with its own transport::

    protocol = ClientProtocol()
    request = protocol.initialize()
    transport.send(*protocol.data_to_send())
    for event in protocol.receive_text(transport.receive()):
        ...                                     # Reply, Progress, Notification, Stray

``tool_result`` shapes a ``tools/call`` reply into a value with
``iccm_network.protocol.client_results.decode_result`` (SPEC 8: ``structuredContent``,
else the text parsed as JSON, else the text).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from iccm_network.protocol.client_events import (
    ClientProtocolError,
    Event,
    LogMessage,
    Notification,
    Progress,
    Reply,
    Request,
    Stray,
    excerpt,
)
from iccm_network.protocol.client_results import decode_result, error_from
from iccm_network.protocol.versions import (
    LATEST_HANDSHAKE_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    MODERN_VERSIONS,
)

__all__ = [
    "ClientProtocol",
    "ClientProtocolError",
    "Event",
    "LogMessage",
    "Notification",
    "Progress",
    "Reply",
    "Request",
    "Stray",
    "decode_result",
    "error_from",
    "excerpt",
]

_encode: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
"""One encoder for every request, rather than one made per ``json.dumps`` call."""

_INITIALIZED: Final = '{"jsonrpc":"2.0","method":"notifications/initialized"}'


class ClientProtocol:
    """One client connection's JSON-RPC state, with no I/O.

    Args:
        protocol_version: The MCP revision spoken. A stateless revision
            (2026-07-28) needs no ``initialize``; every request then carries
            the ``_meta`` envelope instead.
        client_info: ``clientInfo`` (``name``, ``version``).
        first_id: The first request id.
        default: Called for a value JSON cannot encode (``json.dumps``'
            ``default``); by default such a value raises ``TypeError``.
    """

    def __init__(
        self,
        *,
        protocol_version: str = LATEST_HANDSHAKE_VERSION,
        client_info: Mapping[str, Any] | None = None,
        first_id: int = 1,
        default: Callable[[Any], Any] | None = None,
    ) -> None:
        self._encode = (
            _encode
            if default is None
            else json.JSONEncoder(
                separators=(",", ":"), default=default, check_circular=False
            ).encode
        )
        self.protocol_version = protocol_version
        self.client_info = dict(client_info or {"name": "iccm-network", "version": "0"})
        self._ids = itertools.count(first_id)
        self._pending: dict[int, Request] = {}
        self._writes: list[str] = []
        self._call_heads: dict[str, str] = {}
        self._envelope: dict[str, Any] | None = (
            {
                META_PROTOCOL_VERSION: protocol_version,
                META_CLIENT_CAPABILITIES: {},
                META_CLIENT_INFO: self.client_info,
            }
            if protocol_version in MODERN_VERSIONS
            else None
        )

    @property
    def needs_initialize(self) -> bool:
        """Whether the revision spoken starts with the ``initialize`` handshake."""
        return self._envelope is None

    @property
    def pending(self) -> Sequence[Request]:
        """The requests awaiting a reply, oldest first."""
        return list(self._pending.values())

    # -- requests out --------------------------------------------------------

    def prepare(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        progress: bool = False,
    ) -> Request:
        """Allocate an id and encode a request, awaiting its reply, without queueing it.

        Queue it with ``send`` or, together with others, ``send_batch``.

        Args:
            method: The method, such as ``"tools/list"``.
            params: Its params.
            deadline: When it expires, on the caller's clock (see ``expired``).
            progress: Ask for ``notifications/progress`` (a ``progressToken``).
        """
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if progress or (self._envelope is not None and method != "initialize"):
            body = dict(params or {})
            meta: dict[str, Any] = {}
            if self._envelope is not None and method != "initialize":
                meta.update(self._envelope)
            meta.update(body.get("_meta") or {})
            if progress:
                meta["progressToken"] = request_id
            body["_meta"] = meta
            message["params"] = body
        elif params is not None:
            message["params"] = params  # encoded at once: no copy needed
        name = params.get("name") if method == "tools/call" and params is not None else None
        request = Request(
            request_id,
            method,
            self._encode(message),
            deadline,
            progress,
            name if isinstance(name, str) else None,
        )
        self._pending[request_id] = request
        return request

    def prepare_call(
        self, name: str, arguments: Mapping[str, Any], *, deadline: float | None = None
    ) -> Request:
        """``prepare("tools/call", ...)`` for many calls to one tool, encoded faster.

        Every such request is the same up to its arguments and id, so only
        those are encoded per call (the Godot shipper sends hundreds at once).
        A revision with a ``_meta`` envelope takes the general path.

        Args:
            name: The tool's name.
            arguments: Its arguments.
            deadline: When it expires, on the caller's clock.
        """
        if self._envelope is not None:
            return self.prepare(
                "tools/call", {"name": name, "arguments": arguments}, deadline=deadline
            )
        head = self._call_heads.get(name)
        if head is None:
            head = self._call_heads[name] = (
                '{"jsonrpc":"2.0","method":"tools/call","params":{"name":'
                + self._encode(name)
                + ',"arguments":'
            )
        request_id = next(self._ids)
        text = f'{head}{self._encode(arguments)}}},"id":{request_id}}}'
        request = Request(request_id, "tools/call", text, deadline, False, name)
        self._pending[request_id] = request
        return request

    def send(self, request: Request) -> None:
        """Queue a prepared request as a message of its own.

        Args:
            request: What ``prepare`` returned.
        """
        self._writes.append(request.text)

    def send_batch(self, requests: Sequence[Request]) -> None:
        """Queue prepared requests as one JSON-RPC batch message (one alone goes as is).

        Args:
            requests: What ``prepare`` returned, in order.
        """
        if len(requests) == 1:
            self._writes.append(requests[0].text)
        elif requests:
            self._writes.append(f"[{','.join(request.text for request in requests)}]")

    def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        progress: bool = False,
    ) -> Request:
        """Prepare a request and queue it.

        Args:
            method: The method, such as ``"tools/list"``.
            params: Its params.
            deadline: When it expires, on the caller's clock (see ``expired``).
            progress: Ask for ``notifications/progress`` (a ``progressToken``).
        """
        request = self.prepare(method, params, deadline=deadline, progress=progress)
        self.send(request)
        return request

    def initialize(self, *, deadline: float | None = None) -> Request:
        """Queue MCP's ``initialize`` request.

        Args:
            deadline: When it expires, on the caller's clock.
        """
        return self.request("initialize", self.initialize_params(), deadline=deadline)

    def initialize_params(self) -> dict[str, Any]:
        """The params of ``initialize``: the revision offered, capabilities, ``clientInfo``."""
        return {
            "protocolVersion": self.protocol_version,
            "capabilities": {},
            "clientInfo": self.client_info,
        }

    def initialized(self) -> None:
        """Queue ``notifications/initialized``, which ends the handshake."""
        self._writes.append(_INITIALIZED)

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        progress: bool = False,
    ) -> Request:
        """Queue a ``tools/call`` request.

        Args:
            name: The tool's name.
            arguments: Its arguments.
            deadline: When it expires, on the caller's clock.
            progress: Ask for ``notifications/progress``.
        """
        params = {"name": name, "arguments": dict(arguments or {})}
        return self.request("tools/call", params, deadline=deadline, progress=progress)

    def list_tools(self, cursor: Any = None, *, deadline: float | None = None) -> Request:
        """Queue a ``tools/list`` request for one page.

        Args:
            cursor: The ``nextCursor`` of the previous page, if any.
            deadline: When it expires, on the caller's clock.
        """
        return self.request(
            "tools/list", {} if cursor is None else {"cursor": cursor}, deadline=deadline
        )

    def set_log_level(self, level: str, *, deadline: float | None = None) -> Request | None:
        """Ask for log messages of ``level`` and above.

        In the handshake era this queues ``logging/setLevel`` (returned, to
        await its reply); under 2026-07-28 every later request carries the
        level in its ``_meta`` instead, and ``None`` is returned.

        Args:
            level: ``"debug"`` to ``"emergency"``.
            deadline: When the request expires, on the caller's clock.
        """
        if self._envelope is not None:
            self._envelope[META_LOG_LEVEL] = level
            return None
        return self.request("logging/setLevel", {"level": level}, deadline=deadline)

    def ping(self, *, deadline: float | None = None) -> Request:
        """Queue a ``ping`` request.

        Args:
            deadline: When it expires, on the caller's clock.
        """
        return self.request("ping", deadline=deadline)

    def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Queue a notification.

        Args:
            method: The method, such as ``"notifications/initialized"``.
            params: Its params.
        """
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        self._writes.append(self._encode(message))

    def cancel(self, request: Request, reason: str, *, notify: bool = True) -> None:
        """Stop waiting for ``request``; tell the server with ``notifications/cancelled``.

        Args:
            request: A request awaiting its reply.
            reason: Why, for the server's log.
            notify: Queue ``notifications/cancelled`` (not when the connection is gone).
        """
        if self._pending.pop(request.id, None) is not None and notify:
            self.notify("notifications/cancelled", {"requestId": request.id, "reason": reason})

    def expired(self, now: float) -> list[Request]:
        """The requests whose deadline is ``now`` or earlier; each is cancelled.

        Args:
            now: The time on the clock the deadlines were given on.
        """
        late = [r for r in self._pending.values() if r.deadline is not None and r.deadline <= now]
        for request in late:
            self.cancel(request, f"no reply within its deadline ({request.what})")
        return late

    def next_deadline(self) -> float | None:
        """The earliest deadline of a request awaiting its reply, if any."""
        deadlines = [r.deadline for r in self._pending.values() if r.deadline is not None]
        return min(deadlines, default=None)

    def abandon(self) -> list[Request]:
        """Forget every request awaiting a reply (the connection is gone); return them."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def data_to_send(self) -> list[str]:
        """The messages queued since the last call, in order; the queue is emptied."""
        writes, self._writes = self._writes, []
        return writes

    # -- messages in ---------------------------------------------------------

    def receive_text(self, text: str | bytes) -> list[Event]:
        """Read one message (a single message or a batch) from the server.

        Args:
            text: The message's text.

        Raises:
            ClientProtocolError: The text is not JSON-RPC 2.0.
        """
        if not isinstance(text, str):
            raise ClientProtocolError(f"a binary frame {excerpt(text)}")
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            raise ClientProtocolError(f"text that is not JSON: {excerpt(text)}") from None
        if isinstance(message, list):
            if not message:
                raise ClientProtocolError("an empty batch")
            return [self.receive_message(item) for item in message]
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise ClientProtocolError(f"JSON that is not JSON-RPC 2.0: {excerpt(text)}")
        return [self.receive_message(message)]

    def receive_message(self, message: Any) -> Event:
        """Read one decoded message (for callers that decode batches themselves).

        A request from the server is answered (``ping``) or refused, and the
        answer queued; it then reads as a ``Notification`` of its method.

        Args:
            message: One JSON-RPC message, decoded.

        Raises:
            ClientProtocolError: The message repeats one of our requests (an
                echo server).
        """
        if not isinstance(message, dict):
            return Stray(message)
        if "method" in message and isinstance(message["method"], str):
            return self._server_message(message, message["method"])
        request_id = message.get("id")
        # Replies come by the hundred (the Godot shipper's batches): the common
        # case, an int id of ours with a result, is checked first and cheaply.
        request = self._pending.pop(request_id, None) if type(request_id) is int else None
        if request is None:
            return Stray(message)
        if "result" not in message and "error" not in message:
            self._pending[request.id] = request  # not a reply after all
            return Stray(message)
        return Reply(request, message)

    def _server_message(self, message: Mapping[str, Any], method: str) -> Event:
        raw = message.get("params")
        params: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        if "id" in message:
            request_id = message["id"]
            ours = self._pending.get(request_id) if isinstance(request_id, int) else None
            if ours is not None and ours.method == method:
                raise ClientProtocolError("the request itself (an echo server?)")
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
            if method == "ping":
                reply["result"] = {}
            else:
                reply["error"] = {"code": -32601, "message": f"Method not found: {method}"}
            self._writes.append(_encode(reply))
            return Notification(method, params)
        if method == "notifications/message":
            logger = params.get("logger")
            return LogMessage(
                str(params.get("level", "info")),
                params.get("data"),
                logger if isinstance(logger, str) else None,
            )
        if method == "notifications/progress":
            token = params.get("progressToken")
            request = self._pending.get(token) if isinstance(token, int) else None
            if request is not None and request.progress:
                progress = params.get("progress", 0)
                total = params.get("total")
                text = params.get("message")
                return Progress(
                    request,
                    progress if isinstance(progress, int | float) else 0,
                    total if isinstance(total, int | float) else None,
                    text if isinstance(text, str) else None,
                )
        return Notification(method, params)
