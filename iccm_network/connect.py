"""Reaching an MCP server step by step, each failure a diagnosis.

Connecting is four steps, each a function here so that ``iccm-network doctor``
can run and time them one by one, and each failing with an
``MCPConnectionError`` whose message names the step and what to check::

    resolve()         DNS lookup of the host            step "dns"
    connect_tcp()     TCP connect to one of its addresses step "tcp" / "timeout"
    open_websocket()  the HTTP upgrade handshake        step "handshake" / "timeout"
    initialize()      MCP initialize + initialized      step "protocol" / "closed" / "timeout"

``connect_and_initialize()`` runs all four against one deadline, as
``MCPClient`` does; ``failure_reason()`` names a failure for machines and
``is_retryable()`` says whether trying again may help.

The DNS lookup and TCP connect are done here (then the socket is handed to
``websockets``), so a connection never goes through an HTTP proxy from the
environment: MCP servers live on the same network as their callers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
from websockets.typing import Subprotocol

from iccm_network.errors import MCPConnectionError
from iccm_network.versions import LATEST_HANDSHAKE_VERSION

__all__ = [
    "DEFAULT_PORT",
    "Endpoint",
    "closed_diagnosis",
    "connect_and_initialize",
    "connect_tcp",
    "describe_client",
    "diagnosis",
    "exchange",
    "failure_reason",
    "format_address",
    "handshake_headers",
    "initialize",
    "is_retryable",
    "open_websocket",
    "reply_to_server_request",
    "resolve",
    "split_diagnosis",
]

DEFAULT_PORT: Final = 8000
"""The port used when none is given: the iccm-network server's default."""

_MCP: Final = Subprotocol("mcp")
_RETRYABLE_STATUS: Final = frozenset({502, 503, 504})
_CHECK: Final = "\nCheck: "
_Address = tuple[int, tuple[Any, ...]]


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
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{format_address((self.host, self.port))}{self.path}"


# -- shared pieces -------------------------------------------------------------


def format_address(sockaddr: tuple[Any, ...]) -> str:
    """``host:port`` from a socket address, with an IPv6 host in brackets.

    Args:
        sockaddr: A socket address such as ``getpeername()`` returns.
    """
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


def diagnosis(step: str, problem: str, check: str) -> MCPConnectionError:
    """A connection failure whose message says what went wrong and what to check.

    Args:
        step: The step that failed, such as ``"tcp"``.
        problem: What went wrong, in plain words.
        check: What to check, in plain words.
    """
    return MCPConnectionError(f"{problem}{_CHECK}{check}", step=step)


def split_diagnosis(error: MCPConnectionError) -> tuple[str, str | None]:
    """The problem and the check of a ``diagnosis`` (``None`` when it gives none).

    Args:
        error: A connection failure.
    """
    problem, _, check = error.message.partition(_CHECK)
    return problem, check or None


def handshake_headers(headers: Mapping[str, str] | None, auth_token: str | None) -> dict[str, str]:
    """The handshake's extra HTTP headers: ``headers`` plus a bearer token, if any.

    Args:
        headers: Extra headers, such as ``Origin``.
        auth_token: Sent as ``Authorization: Bearer <token>``.
    """
    combined = dict(headers or {})
    if auth_token is not None:
        combined["Authorization"] = f"Bearer {auth_token}"
    return combined


def describe_client(name: str = "iccm-network", version: str | None = None) -> dict[str, str]:
    """``clientInfo`` for ``initialize``; the library's version by default.

    Args:
        name: The client's name.
        version: Its version.
    """
    if version is None:
        from iccm_network import __version__

        version = __version__
    return {"name": name, "version": version}


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
        raise diagnosis(
            "timeout",
            f"DNS lookup for {endpoint.host} timed out after {timeout:g} s.",
            "the DNS server this machine uses (/etc/resolv.conf) is reachable.",
        ) from exc
    except (socket.gaierror, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise diagnosis(
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
            timed_out.append(format_address(sockaddr))
            last = exc
            break  # the deadline is spent
        except ConnectionRefusedError as exc:
            sock.close()
            refused.append(format_address(sockaddr))
            last = exc
        except OSError as exc:
            sock.close()
            unreachable.append((format_address(sockaddr), exc))
            last = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    if refused:
        others = [a for a in (*refused[1:], *timed_out, *(a for a, _ in unreachable))]
        also = f" (also tried {', '.join(others)})" if others else ""
        raise diagnosis(
            "tcp",
            f"TCP connect to {refused[0]} refused{also}.",
            f"a server is running and listening on port {endpoint.port}; a server bound to "
            "127.0.0.1 inside a container refuses everyone else, so it must bind 0.0.0.0 "
            "(iccm-network does unless MCP_HOST says otherwise) and publish the port.",
        ) from last
    if timed_out:
        raise diagnosis(
            "timeout",
            f"TCP connect to {timed_out[0]} timed out after {timeout:g} s.",
            "a firewall or security group is not dropping the packets, and the client is on "
            "the server's network (a wrong Docker network or host IP times out like this).",
        ) from last
    if unreachable:
        where, error = unreachable[0]
        raise diagnosis(
            "tcp",
            f"TCP connect to {where} failed: {error.strerror or error}.",
            "the host is up and routable from here (network, VPN, Docker network).",
        ) from last
    raise diagnosis(
        "dns", f"DNS lookup for {endpoint.host} returned no address.", "the DNS record."
    )


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
    where = format_address(sock.getpeername())
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
        raise diagnosis(
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
        raise diagnosis(
            "handshake",
            f"HTTP handshake with {where} answered {status}{said} instead of 101 "
            "Switching Protocols.",
            _status_hint(response.status_code),
        ) from exc
    except InvalidMessage as exc:
        sock.close()
        status_line = _old_http_status(exc)
        if status_line is not None:
            raise diagnosis(
                "handshake",
                f"HTTP handshake with {where} answered {status_line} instead of 101 "
                "Switching Protocols.",
                _status_hint(0),
            ) from exc
        cause = str(exc.__cause__ or "")
        raise diagnosis(
            "handshake",
            f"HTTP handshake with {where} got no valid HTTP answer ({cause or exc}): "
            "the server on that port is not a WebSocket server.",
            "the port, and that the server there speaks WebSocket (ws://) rather than TLS "
            "(wss://) or another protocol.",
        ) from exc
    except (InvalidHandshake, InvalidURI, OSError) as exc:
        sock.close()
        raise diagnosis(
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


def closed_diagnosis(endpoint: Endpoint, exc: ConnectionClosed, during: str) -> MCPConnectionError:
    """The ``step="closed"`` failure for a connection that closed ``during`` something.

    Args:
        endpoint: Where the connection went.
        exc: How it closed.
        during: What was going on, such as ``"while sending tools/call"``.
    """
    code, reason, by_client = _close_description(exc)
    if by_client:
        # Keepalive timeouts and oversized messages: this side gave up.
        check = (
            "the server: it stopped answering keepalive pings (a blocked event loop or a "
            "dropped network)."
            if code == 1011
            else _closed_hint(code)
        )
        return diagnosis(
            "closed",
            f"WebSocket to {endpoint.url} closed by this client with {code} {reason} {during}.",
            check,
        )
    return diagnosis(
        "closed",
        f"WebSocket to {endpoint.url} closed with {code} {reason} {during}.",
        _closed_hint(code),
    )


def _not_mcp(endpoint: Endpoint, method: str, what: str) -> MCPConnectionError:
    return diagnosis(
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
                    await connection.send(json.dumps(reply_to_server_request(message)))
                continue
            if message.get("id") != request_id or not ("result" in message or "error" in message):
                raise _not_mcp(endpoint, method, f"an unexpected reply {_excerpt(frame)}")
            return message, frame
    except asyncio.TimeoutError as exc:
        raise diagnosis(
            "timeout",
            f"{endpoint.url} accepted the WebSocket but did not answer {method} within "
            f"{timeout:g} s.",
            "that the server speaks MCP and that its event loop is not blocked (a synchronous "
            "tool or a slow start-up).",
        ) from exc
    except ConnectionClosed as exc:
        raise closed_diagnosis(endpoint, exc, f"before answering {method}") from exc


def reply_to_server_request(message: Mapping[str, Any]) -> dict[str, Any]:
    """A client's answer to a request from the server: ``ping`` is answered, others refused.

    Args:
        message: The server's JSON-RPC request.
    """
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
        "clientInfo": dict(client_info or describe_client()),
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
        raise closed_diagnosis(endpoint, exc, "right after initialize") from exc
    return result


async def connect_and_initialize(
    endpoint: Endpoint,
    timeout: float,
    *,
    headers: Mapping[str, str] | None = None,
    max_size: int | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    client_info: Mapping[str, Any] | None = None,
) -> tuple[ClientConnection, dict[str, Any]]:
    """Run the four steps in order, all within ``timeout``.

    Args:
        endpoint: Where to connect.
        timeout: Seconds for the four steps together.
        headers: Extra HTTP headers for the handshake.
        max_size: Largest message accepted, in bytes; ``None`` for no limit.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before dropping the connection.
        protocol_version: The revision offered in ``initialize``.
        client_info: ``clientInfo`` (``name``, ``version``).

    Returns:
        The open, initialized connection and the ``initialize`` result.

    Raises:
        MCPConnectionError: The step that failed, with what to check.
    """
    deadline = time.monotonic() + timeout
    addresses = await resolve(endpoint, _remaining(deadline))
    sock = await connect_tcp(endpoint, addresses, _remaining(deadline))
    connection = await open_websocket(
        endpoint,
        sock,
        _remaining(deadline),
        headers=headers,
        max_size=max_size,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    try:
        result = await initialize(
            connection,
            endpoint,
            _remaining(deadline),
            protocol_version=protocol_version,
            client_info=client_info,
        )
    except BaseException:
        await connection.close()
        raise
    return connection, result


# -- what a failure means ------------------------------------------------------


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


def is_retryable(error: MCPConnectionError) -> bool:
    """Whether trying again may help: DNS, refused, timed out, closed, HTTP 502/503/504.

    Args:
        error: An error raised by this module.
    """
    if error.step in ("dns", "tcp", "timeout", "closed"):
        return True
    cause = error.__cause__
    return isinstance(cause, InvalidStatus) and cause.response.status_code in _RETRYABLE_STATUS
