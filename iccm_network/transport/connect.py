"""Reaching an MCP server step by step, each failure a diagnosis.

Opening a connection is three steps, each a function here so that
``iccm-network doctor`` can run and time them one by one, and each failing
with an ``MCPConnectionError`` whose ``problem`` and ``check`` say what went
wrong and what to look at::

    resolve()         DNS lookup of the host              step "dns"
    connect_tcp()     TCP connect to one of its addresses step "tcp" / "timeout"
    open_websocket()  the HTTP upgrade handshake          step "handshake" / "timeout"

``open_connection()`` runs the three against one deadline, as ``MCPClient``'s
WebSocket transport does; MCP's ``initialize`` then follows
(``iccm_network.transport.handshake``). What a failure means in words lives in
``iccm_network.transport.failures``.

The DNS lookup and TCP connect are done here (then the socket is handed to
``websockets``), so a connection never goes through an HTTP proxy from the
environment: MCP servers live on the same network as their callers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from iccm_network.errors import MCPConnectionError
from iccm_network.transport.failures import old_http_status, status_hint, status_reason

__all__ = [
    "DEFAULT_PORT",
    "Endpoint",
    "connect_tcp",
    "describe_client",
    "failure_reason",
    "format_address",
    "handshake_headers",
    "open_connection",
    "open_websocket",
    "remaining",
    "resolve",
]

DEFAULT_PORT: Final = 8000
"""The port used when none is given: the iccm-network server's default."""

_MCP: Final = Subprotocol("mcp")
_Address = tuple[int, tuple[Any, ...]]
_diagnosed: Final = MCPConnectionError.diagnosed

# -- where to connect ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed server address.

    Args:
        host: The host name or IP address (IPv6 without brackets).
        port: The TCP port.
        path: The request path, with its query string if any.
        secure: ``wss://`` rather than ``ws://``.
        http: Streamable HTTP (``http://``, ``https://``) rather than WebSocket.
    """

    host: str
    port: int
    path: str = "/"
    secure: bool = False
    http: bool = False

    @classmethod
    def parse(cls, target: str, port: int | None = None, path: str | None = None) -> Endpoint:
        """Parse ``ws://host:port/path``, ``host:port`` or a bare host.

        A bare host gets ``port`` or, failing that, ``DEFAULT_PORT``. A URL
        without a port gets ``port`` or the scheme's default (80 or 443).
        ``http://`` and ``https://`` mean Streamable HTTP (``http=True``).

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
            raise ValueError(f"not an MCP URL: {target!r} (use ws://, wss://, http:// or https://)")
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
            http=parts.scheme in ("http", "https"),
        )

    @property
    def url(self) -> str:
        """The ``ws://``, ``wss://``, ``http://`` or ``https://`` URL."""
        plain, tls = ("http", "https") if self.http else ("ws", "wss")
        scheme = tls if self.secure else plain
        return f"{scheme}://{format_address((self.host, self.port))}{self.path}"


# -- shared pieces -------------------------------------------------------------


def format_address(sockaddr: tuple[Any, ...]) -> str:
    """``host:port`` from a socket address, with an IPv6 host in brackets.

    Args:
        sockaddr: A socket address such as ``getpeername()`` returns.
    """
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


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


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` on the monotonic clock, never negative.

    Args:
        deadline: A ``time.monotonic()`` value.
    """
    return max(0.0, deadline - time.monotonic())


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
        raise _diagnosed(
            "timeout",
            "timeout",
            f"DNS lookup for {endpoint.host} timed out after {timeout:g} s.",
            "the DNS server this machine uses (/etc/resolv.conf) is reachable.",
        ) from exc
    except (socket.gaierror, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise _diagnosed(
            "dns",
            "name-not-resolved",
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
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), remaining(deadline))
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
        raise _diagnosed(
            "tcp",
            "connection-refused",
            f"TCP connect to {refused[0]} refused{also}.",
            f"a server is running and listening on port {endpoint.port}; a server bound to "
            "127.0.0.1 inside a container refuses everyone else, so it must bind 0.0.0.0 "
            "(iccm-network does unless MCP_HOST says otherwise) and publish the port.",
        ) from last
    if timed_out:
        raise _diagnosed(
            "timeout",
            "timeout",
            f"TCP connect to {timed_out[0]} timed out after {timeout:g} s.",
            "a firewall or security group is not dropping the packets, and the client is on "
            "the server's network (a wrong Docker network or host IP times out like this).",
        ) from last
    if unreachable:
        where, error = unreachable[0]
        raise _diagnosed(
            "tcp",
            "unreachable",
            f"TCP connect to {where} failed: {error.strerror or error}.",
            "the host is up and routable from here (network, VPN, Docker network).",
        ) from last
    raise _diagnosed(
        "dns",
        "name-not-resolved",
        f"DNS lookup for {endpoint.host} returned no address.",
        "the DNS record.",
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
        raise _diagnosed(
            "timeout",
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
        raise _diagnosed(
            "handshake",
            status_reason(response.status_code),
            f"HTTP handshake with {where} answered {status}{said} instead of 101 "
            "Switching Protocols.",
            status_hint(response.status_code),
        ) from exc
    except InvalidMessage as exc:
        sock.close()
        status_line = old_http_status(exc)
        if status_line is not None:
            raise _diagnosed(
                "handshake",
                "not-websocket",
                f"HTTP handshake with {where} answered {status_line} instead of 101 "
                "Switching Protocols.",
                status_hint(0),
            ) from exc
        cause = str(exc.__cause__ or "")
        raise _diagnosed(
            "handshake",
            "not-http",
            f"HTTP handshake with {where} got no valid HTTP answer ({cause or exc}): "
            "the server on that port is not a WebSocket server.",
            "the port, and that the server there speaks WebSocket (ws://) rather than TLS "
            "(wss://) or another protocol.",
        ) from exc
    except (InvalidHandshake, InvalidURI, OSError) as exc:
        sock.close()
        if endpoint.secure and _tls_failed(exc):
            raise _diagnosed(
                "handshake",
                "not-tls",
                f"TLS handshake with {where} failed ({_describe(exc)}): wss:// was used, "
                "but the server there does not speak TLS.",
                "the scheme: an iccm-network server speaks plain ws:// unless a TLS proxy "
                "stands in front of it; use ws://, or the proxy's address for wss://.",
            ) from exc
        raise _diagnosed(
            "handshake",
            "not-http",
            f"WebSocket handshake with {where} failed: {_describe(exc)}.",
            "that the URL points at a WebSocket server and any proxy forwards WebSocket.",
        ) from exc


def _tls_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is the TLS handshake failing (a plain server answers TLS with HTTP)."""
    while exc is not None:
        if isinstance(exc, ssl.SSLError | ConnectionResetError | EOFError):
            return True
        if isinstance(exc, InvalidMessage | InvalidHandshake) and exc.__cause__ is None:
            return False
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def _describe(exc: BaseException) -> str:
    """``exc`` in words, never empty: some exceptions have no message at all."""
    return str(exc) or type(exc).__name__


async def open_connection(
    endpoint: Endpoint,
    timeout: float,
    *,
    headers: Mapping[str, str] | None = None,
    max_size: int | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> ClientConnection:
    """Run the three steps in order, all within ``timeout``.

    Args:
        endpoint: Where to connect.
        timeout: Seconds for the three steps together.
        headers: Extra HTTP headers for the handshake.
        max_size: Largest message accepted, in bytes; ``None`` for no limit.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before dropping the connection.

    Returns:
        The open WebSocket.

    Raises:
        MCPConnectionError: The step that failed, with what to check.
    """
    deadline = time.monotonic() + timeout
    addresses = await resolve(endpoint, remaining(deadline))
    sock = await connect_tcp(endpoint, addresses, remaining(deadline))
    return await open_websocket(
        endpoint,
        sock,
        remaining(deadline),
        headers=headers,
        max_size=max_size,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )


def failure_reason(error: MCPConnectionError) -> str:
    """A stable, machine-readable name for what went wrong: ``error.reason``.

    One of ``name-not-resolved``, ``connection-refused``, ``unreachable``,
    ``timeout``, ``not-http``, ``not-websocket``, ``not-tls``, ``unauthorized``,
    ``forbidden``, ``unavailable``, ``closed-1011``, ``closed`` and ``not-mcp``.

    Args:
        error: A connection failure.
    """
    return error.reason
