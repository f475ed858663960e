"""``MCPClient``: call tools on any MCP server over one WebSocket.

Connecting is four steps, each a function here so that ``iccm-network doctor``
can run and time them one by one, and each failing with an
``MCPConnectionError`` whose message names the step and what to check::

    resolve()         DNS lookup of the host            step "dns"
    connect_tcp()     TCP connect to one of its addresses step "tcp" / "timeout"
    open_websocket()  the HTTP upgrade handshake        step "handshake" / "timeout"
    initialize()      MCP initialize + initialized      step "protocol" / "closed" / "timeout"

Once connected, one reader task owns the connection: it hands each reply to
the future of the request with that id, so any number of calls share the
connection concurrently. When the connection drops, calls in flight fail with
``MCPConnectionError`` and the next call reconnects, retrying a bounded
number of times with exponential backoff and jitter.

The client does its own DNS lookup and TCP connect (then hands the socket to
``websockets``), so it never goes through an HTTP proxy from the environment:
MCP servers live on the same network as their callers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.frames import CLOSE_CODE_EXPLANATIONS
from websockets.protocol import State
from websockets.typing import Subprotocol

from iccm_network.errors import MCPConnectionError, MCPError, ToolError, error_class_for_code
from iccm_network.versions import LATEST_HANDSHAKE_VERSION

__all__ = [
    "DEFAULT_PORT",
    "Endpoint",
    "MCPClient",
    "connect_tcp",
    "decode_result",
    "exchange",
    "failure_reason",
    "initialize",
    "open_websocket",
    "resolve",
]

logger = logging.getLogger("iccm_network.client")

DEFAULT_PORT: Final = 8000
"""The port used when none is given: the iccm-network server's default."""

ERROR_DATA_META_KEY: Final = "iccm-network/errorData"
"""Where an iccm-network server puts a ``ToolError``'s ``data`` (the result's ``_meta``).

Repeated from ``iccm_network.results`` so that the client imports no server module.
"""

_MCP: Final = Subprotocol("mcp")
_RETRYABLE_STATUS: Final = frozenset({502, 503, 504})
_Address = tuple[int, tuple[Any, ...]]
ProgressCallback = Callable[[float, float | None, str | None], object]


# -- where to connect ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed server address.

    Args:
        host: The host name or IP address (IPv6 without brackets).
        port: The TCP port.
        path: The request path, with its query string if any.
        secure: ``wss://`` rather than ``ws://``.
    """

    host: str
    port: int
    path: str = "/"
    secure: bool = False

    @classmethod
    def parse(cls, target: str, port: int | None = None, path: str | None = None) -> Endpoint:
        """Parse ``ws://host:port/path``, ``host:port`` or a bare host.

        A bare host gets ``port`` or, failing that, ``DEFAULT_PORT``. A URL
        without a port gets ``port`` or the scheme's default (80 or 443).
        ``http://`` and ``https://`` are read as ``ws://`` and ``wss://``.

        Args:
            target: A URL or a host name.
            port: The port, when ``target`` does not give one.
            path: The request path, when ``target`` does not give one.

        Raises:
            ValueError: ``target`` is not a usable address, or gives a port
                that contradicts ``port``.
        """
        if "://" not in target:
            target = f"ws://{target}"
            scheme_default = DEFAULT_PORT
        else:
            scheme_default = 0
        try:
            parts = urlsplit(target)
            url_port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a WebSocket URL: {target!r} ({exc})") from None
        scheme = {"ws": "ws", "http": "ws", "wss": "wss", "https": "wss"}.get(parts.scheme)
        if scheme is None:
            raise ValueError(f"not a WebSocket URL: {target!r} (use ws:// or wss://)")
        if not parts.hostname:
            raise ValueError(f"no host in {target!r}")
        if url_port is not None and port is not None and url_port != port:
            raise ValueError(f"{target!r} names port {url_port} but port={port} was given")
        secure = scheme == "wss"
        if not scheme_default:
            scheme_default = 443 if secure else 80
        resolved_port = url_port if url_port is not None else port
        url_path = parts.path or "/"
        if parts.query:
            url_path += "?" + parts.query
        if path is not None and url_path != "/":
            raise ValueError(f"{target!r} names path {url_path!r} but path={path!r} was given")
        return cls(
            host=parts.hostname,
            port=resolved_port if resolved_port is not None else scheme_default,
            path=path if path is not None else url_path,
            secure=secure,
        )

    @property
    def url(self) -> str:
        """The ``ws://`` or ``wss://`` URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.secure else 'ws'}://{host}:{self.port}{self.path}"


def _address(sockaddr: tuple[Any, ...]) -> str:
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


def _failure(step: str, problem: str, check: str) -> MCPConnectionError:
    return MCPConnectionError(f"{problem}\nCheck: {check}", step=step)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _excerpt(text: str | bytes, limit: int = 80) -> str:
    shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")


# -- the connection steps ------------------------------------------------------


async def resolve(endpoint: Endpoint, timeout: float) -> list[_Address]:
    """Look up the host's addresses: ``(family, sockaddr)`` pairs, in order.

    Args:
        endpoint: Where to connect.
        timeout: Seconds the lookup may take.

    Raises:
        MCPConnectionError: ``step="dns"`` when the name does not resolve,
            ``step="timeout"`` when the resolver does not answer.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM), timeout
        )
    except asyncio.TimeoutError as exc:
        raise _failure(
            "timeout",
            f"DNS lookup for {endpoint.host} timed out after {timeout:g} s.",
            "the DNS server this machine uses (/etc/resolv.conf) is reachable.",
        ) from exc
    except (socket.gaierror, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise _failure(
            "dns",
            f"DNS lookup failed for {endpoint.host} ({detail}).",
            "the host name is spelled right and this machine is on the same (Docker) "
            "network as the server; use the service or container name, not localhost.",
        ) from exc
    addresses: list[_Address] = []
    for family, _, _, _, sockaddr in infos:
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    return addresses


async def connect_tcp(
    endpoint: Endpoint, addresses: list[_Address], timeout: float
) -> socket.socket:
    """Open a TCP connection to the first address that accepts one.

    Args:
        endpoint: Where to connect (for messages).
        addresses: What ``resolve`` returned.
        timeout: Seconds for all attempts together.

    Raises:
        MCPConnectionError: ``step="tcp"`` when every address refuses or is
            unreachable, ``step="timeout"`` when the connect gets no answer.
    """
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    refused: list[str] = []
    unreachable: list[tuple[str, OSError]] = []
    timed_out: list[str] = []
    last: BaseException | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setblocking(False)
        # asyncio sets TCP_NODELAY only on sockets it creates; without it, Nagle's
        # algorithm and delayed ACKs stall back-to-back small frames by ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), _remaining(deadline))
        except asyncio.TimeoutError as exc:
            sock.close()
            timed_out.append(_address(sockaddr))
            last = exc
            break  # the deadline is spent
        except ConnectionRefusedError as exc:
            sock.close()
            refused.append(_address(sockaddr))
            last = exc
        except OSError as exc:
            sock.close()
            unreachable.append((_address(sockaddr), exc))
            last = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    if refused:
        others = [a for a in (*refused[1:], *timed_out, *(a for a, _ in unreachable))]
        also = f" (also tried {', '.join(others)})" if others else ""
        raise _failure(
            "tcp",
            f"TCP connect to {refused[0]} refused{also}.",
            f"a server is running and listening on port {endpoint.port}; a server bound to "
            "127.0.0.1 inside a container refuses everyone else, so it must bind 0.0.0.0 "
            "(iccm-network does unless MCP_HOST says otherwise) and publish the port.",
        ) from last
    if timed_out:
        raise _failure(
            "timeout",
            f"TCP connect to {timed_out[0]} timed out after {timeout:g} s.",
            "a firewall or security group is not dropping the packets, and the client is on "
            "the server's network (a wrong Docker network or host IP times out like this).",
        ) from last
    if unreachable:
        where, error = unreachable[0]
        raise _failure(
            "tcp",
            f"TCP connect to {where} failed: {error.strerror or error}.",
            "the host is up and routable from here (network, VPN, Docker network).",
        ) from last
    raise _failure("dns", f"DNS lookup for {endpoint.host} returned no address.", "the DNS record.")


def _status_hint(status: int) -> str:
    if status == 401:
        return (
            "the token: the server requires a bearer token (its MCP_AUTH_TOKEN); pass the same "
            "one (MCPClient(auth_token=...), iccm-network --token)."
        )
    if status == 403:
        return (
            "the server's MCP_ALLOWED_ORIGINS and MCP_ALLOWED_HOSTS: it refused this client's "
            "Origin or Host header (an Origin header is refused unless allowed)."
        )
    if status == 503:
        return (
            "the server's state: it is shutting down or at its connection limit "
            "(MCP_MAX_CONNECTIONS); retry shortly."
        )
    return (
        "the port: it serves plain HTTP, not WebSocket (a web or REST port rather than the "
        "MCP port?), and that any reverse proxy forwards WebSocket upgrades."
    )


async def open_websocket(
    endpoint: Endpoint,
    sock: socket.socket,
    timeout: float,
    *,
    headers: Mapping[str, str] | None = None,
    max_size: int | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> ClientConnection:
    """Perform the WebSocket (HTTP upgrade) handshake on a connected socket.

    The ``mcp`` subprotocol is offered; servers that select none are fine.

    Args:
        endpoint: Where to connect.
        sock: A connected TCP socket; it belongs to the connection from now on.
        timeout: Seconds the handshake may take.
        headers: Extra HTTP headers, such as ``Authorization`` or ``Origin``.
        max_size: Largest message accepted, in bytes; ``None`` for no limit.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before dropping the connection.

    Raises:
        MCPConnectionError: ``step="handshake"`` when the answer is not a
            WebSocket upgrade, ``step="timeout"`` when there is no answer.
    """
    where = _address(sock.getpeername())
    try:
        return await asyncio.wait_for(
            connect(
                endpoint.url,
                sock=sock,
                additional_headers=dict(headers or {}),
                subprotocols=[_MCP],
                open_timeout=None,
                max_size=max_size,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                logger=logging.getLogger("iccm_network.websockets"),
            ),
            timeout,
        )
    except asyncio.TimeoutError as exc:
        sock.close()
        raise _failure(
            "timeout",
            f"WebSocket handshake with {where} timed out after {timeout:g} s: the TCP "
            "connection opened but nothing answered the HTTP upgrade request.",
            "the port: something listens there that does not speak HTTP (another protocol, "
            "or TLS where ws:// was used); a blocked server event loop also looks like this.",
        ) from exc
    except InvalidStatus as exc:
        sock.close()
        response = exc.response
        status = f"{response.status_code} {response.reason_phrase}".strip()
        body = (
            response.body.decode("utf-8", "replace").strip().splitlines() if response.body else []
        )
        # The body often just repeats the reason phrase; show it only when it adds something.
        said = f" ({body[0][:80]})" if body and body[0] != response.reason_phrase else ""
        raise _failure(
            "handshake",
            f"HTTP handshake with {where} answered {status}{said} instead of 101 "
            "Switching Protocols.",
            _status_hint(response.status_code),
        ) from exc
    except InvalidMessage as exc:
        sock.close()
        status_line = _old_http_status(exc)
        if status_line is not None:
            raise _failure(
                "handshake",
                f"HTTP handshake with {where} answered {status_line} instead of 101 "
                "Switching Protocols.",
                _status_hint(0),
            ) from exc
        cause = str(exc.__cause__ or "")
        raise _failure(
            "handshake",
            f"HTTP handshake with {where} got no valid HTTP answer ({cause or exc}): "
            "the server on that port is not a WebSocket server.",
            "the port, and that the server there speaks WebSocket (ws://) rather than TLS "
            "(wss://) or another protocol.",
        ) from exc
    except (InvalidHandshake, InvalidURI, OSError) as exc:
        sock.close()
        raise _failure(
            "handshake",
            f"WebSocket handshake with {where} failed: {exc}.",
            "that the URL points at a WebSocket server and any proxy forwards WebSocket.",
        ) from exc


def _old_http_status(exc: InvalidMessage) -> str | None:
    """The status line of an HTTP/1.0 answer, which websockets refuses to parse.

    http.server and many embedded servers answer HTTP/1.0; they are still HTTP.
    """
    cause = str(exc.__cause__ or "")
    marker = "expected HTTP/1.1: "
    if marker in cause:
        line = cause.split(marker, 1)[1].strip()
        if line.startswith("HTTP/"):
            return line
    return None


def _close_description(exc: ConnectionClosed) -> tuple[int, str, bool]:
    """The close code, its reason, and whether this side (not the server) closed."""
    if exc.rcvd is not None:
        close, by_client = exc.rcvd, False
    elif exc.sent is not None:
        close, by_client = exc.sent, True
    else:
        return 1006, "abnormal closure, no close frame", False
    return close.code, close.reason or CLOSE_CODE_EXPLANATIONS.get(close.code, ""), by_client


def _closed_hint(code: int) -> str:
    if code == 1011:
        return (
            "the server's log: it crashed handling the connection. A legacy handler "
            "`async def handler(websocket, path)` does this on websockets 13 and later, "
            "which call it with one argument; port the server to iccm-network."
        )
    if code == 1001:
        return "the server is restarting or shutting down; the next call reconnects."
    if code == 1009:
        return (
            "message sizes: a message exceeded a max size (the client's max_message_size, "
            "the server's MCP_MAX_MESSAGE_SIZE, or a relay's 1 MiB default)."
        )
    if code == 1006:
        return (
            "the server's log and health: the process died or a proxy or firewall cut the "
            "connection without a close frame."
        )
    return "the server's log for why it closed the connection."


def _closed(endpoint: Endpoint, exc: ConnectionClosed, during: str) -> MCPConnectionError:
    code, reason, by_client = _close_description(exc)
    if by_client:
        # Keepalive timeouts and oversized messages: this side gave up.
        check = (
            "the server: it stopped answering keepalive pings (a blocked event loop or a "
            "dropped network)."
            if code == 1011
            else _closed_hint(code)
        )
        return _failure(
            "closed",
            f"WebSocket to {endpoint.url} closed by this client with {code} {reason} {during}.",
            check,
        )
    return _failure(
        "closed",
        f"WebSocket to {endpoint.url} closed with {code} {reason} {during}.",
        _closed_hint(code),
    )


def _not_mcp(endpoint: Endpoint, method: str, what: str) -> MCPConnectionError:
    return _failure(
        "protocol",
        f"{endpoint.url} is a WebSocket server but does not speak MCP: {method} was "
        f"answered with {what}.",
        "that the URL points at the MCP server (not another WebSocket service on the same "
        "host) and that it speaks JSON-RPC 2.0.",
    )


async def exchange(
    connection: ClientConnection,
    endpoint: Endpoint,
    request_id: int,
    method: str,
    params: Mapping[str, Any] | None,
    timeout: float,
) -> tuple[dict[str, Any], str]:
    """Send one request and read frames until its reply: for use before a reader runs.

    Notifications are skipped and the server's ``ping`` requests answered.

    Args:
        connection: An open connection no other task reads from.
        endpoint: Where it goes (for messages).
        request_id: The request's id.
        method: The JSON-RPC method.
        params: Its params, if any.
        timeout: Seconds to wait for the reply.

    Returns:
        The reply message (with ``result`` or ``error``) and its frame's text.

    Raises:
        MCPConnectionError: ``step="closed"``, ``"timeout"`` or ``"protocol"``
            (the answer is not JSON-RPC).
    """
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        request["params"] = dict(params)
    deadline = time.monotonic() + timeout
    try:
        await connection.send(json.dumps(request, separators=(",", ":")))
        while True:
            frame = await asyncio.wait_for(connection.recv(), _remaining(deadline))
            if not isinstance(frame, str):
                raise _not_mcp(endpoint, method, f"a binary frame {_excerpt(frame)}")
            try:
                message = json.loads(frame)
            except ValueError:
                raise _not_mcp(
                    endpoint, method, f"text that is not JSON: {_excerpt(frame)}"
                ) from None
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                raise _not_mcp(
                    endpoint, method, f"JSON that is not JSON-RPC 2.0: {_excerpt(frame)}"
                )
            if "method" in message:
                if message.get("id") == request_id and message["method"] == method:
                    raise _not_mcp(endpoint, method, "the request itself (an echo server?)")
                if "id" in message:
                    await connection.send(json.dumps(_reply_to_server_request(message)))
                continue
            if message.get("id") != request_id or not ("result" in message or "error" in message):
                raise _not_mcp(endpoint, method, f"an unexpected reply {_excerpt(frame)}")
            return message, frame
    except asyncio.TimeoutError as exc:
        raise _failure(
            "timeout",
            f"{endpoint.url} accepted the WebSocket but did not answer {method} within "
            f"{timeout:g} s.",
            "that the server speaks MCP and that its event loop is not blocked (a synchronous "
            "tool or a slow start-up).",
        ) from exc
    except ConnectionClosed as exc:
        raise _closed(endpoint, exc, f"before answering {method}") from exc


def _reply_to_server_request(message: Mapping[str, Any]) -> dict[str, Any]:
    if message.get("method") == "ping":
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": {}}
    return {
        "jsonrpc": "2.0",
        "id": message.get("id"),
        "error": {"code": -32601, "message": f"Method not found: {message.get('method')}"},
    }


async def initialize(
    connection: ClientConnection,
    endpoint: Endpoint,
    timeout: float,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    client_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run MCP's ``initialize`` handshake and send ``notifications/initialized``.

    Args:
        connection: An open connection no other task reads from.
        endpoint: Where it goes (for messages).
        timeout: Seconds to wait for the answer.
        protocol_version: The revision offered.
        client_info: ``clientInfo`` (``name``, ``version``).

    Returns:
        The ``initialize`` result: ``protocolVersion``, ``serverInfo``, ...

    Raises:
        MCPConnectionError: ``step="protocol"``, ``"closed"`` or ``"timeout"``.
    """
    params = {
        "protocolVersion": protocol_version,
        "capabilities": {},
        "clientInfo": dict(client_info or {"name": "iccm-network", "version": _version()}),
    }
    reply, frame = await exchange(connection, endpoint, 0, "initialize", params, timeout)
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        raise _not_mcp(
            endpoint,
            "initialize",
            f"error {error.get('code')} {error.get('message', '')!r}".rstrip(),
        )
    result = reply.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
        raise _not_mcp(
            endpoint, "initialize", f"a result without protocolVersion {_excerpt(frame)}"
        )
    try:
        await connection.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    except ConnectionClosed as exc:
        raise _closed(endpoint, exc, "right after initialize") from exc
    return result


def _version() -> str:
    from iccm_network import __version__

    return __version__


def failure_reason(error: MCPConnectionError) -> str:
    """A stable, machine-readable name for what went wrong.

    One of ``name-not-resolved``, ``connection-refused``, ``unreachable``,
    ``timeout``, ``not-http``, ``not-websocket``, ``unauthorized``,
    ``forbidden``, ``unavailable``, ``closed-1011``, ``closed`` and ``not-mcp``.

    Args:
        error: An error raised by this module.
    """
    cause = error.__cause__
    if error.step == "dns":
        return "name-not-resolved"
    if error.step == "tcp":
        return "connection-refused" if isinstance(cause, ConnectionRefusedError) else "unreachable"
    if error.step == "handshake":
        if isinstance(cause, InvalidStatus):
            status = cause.response.status_code
            return {401: "unauthorized", 403: "forbidden", 503: "unavailable"}.get(
                status, "not-websocket"
            )
        if isinstance(cause, InvalidMessage) and _old_http_status(cause) is not None:
            return "not-websocket"
        return "not-http"
    if error.step == "closed":
        if isinstance(cause, ConnectionClosed) and _close_description(cause)[:3:2] == (1011, False):
            return "closed-1011"
        return "closed"
    if error.step == "protocol":
        return "not-mcp"
    return "timeout"


def _retryable(error: MCPConnectionError) -> bool:
    if error.step in ("dns", "tcp", "timeout", "closed"):
        return True
    cause = error.__cause__
    return isinstance(cause, InvalidStatus) and cause.response.status_code in _RETRYABLE_STATUS


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
        self.client_info = {"name": client_name, "version": client_version or _version()}
        self._headers = dict(headers or {})
        if auth_token is not None:
            self._headers["Authorization"] = f"Bearer {auth_token}"
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
                if attempt >= self.retries or not _retryable(exc):
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
        deadline = time.monotonic() + self.connect_timeout
        addresses = await resolve(endpoint, _remaining(deadline))
        sock = await connect_tcp(endpoint, addresses, _remaining(deadline))
        connection = await open_websocket(
            endpoint,
            sock,
            _remaining(deadline),
            headers=self._headers,
            max_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )
        try:
            result = await initialize(
                connection,
                endpoint,
                _remaining(deadline),
                protocol_version=self.protocol_version,
                client_info=self.client_info,
            )
        except BaseException:
            await connection.close()
            raise
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
            error = _closed(self.endpoint, exc, "while requests were in flight")
            error.__cause__ = exc
        finally:
            if session.closing:
                error = _failure(
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
                error = _closed(self.endpoint, closed, "while requests were in flight")
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
            reply = json.dumps(_reply_to_server_request(message))
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
                raise _closed(self.endpoint, exc, f"while sending {method}") from exc
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
