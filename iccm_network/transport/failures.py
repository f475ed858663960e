"""What a connection failure means, in words: the checks to suggest and the reasons.

The dialling steps (``iccm_network.transport.connect``) and the MCP handshake
(``iccm_network.transport.handshake``) fail with an ``MCPConnectionError`` whose
``problem`` and ``check`` come from here: why a WebSocket closed, what an
HTTP status means for an MCP client, and whether trying again may help.
"""

from __future__ import annotations

from typing import Final

from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.frames import CLOSE_CODE_EXPLANATIONS

from iccm_network.errors import MCPConnectionError

__all__ = [
    "closed_diagnosis",
    "is_retryable",
    "not_mcp",
    "old_http_status",
    "status_hint",
    "status_reason",
]

_RETRYABLE_STATUS: Final = frozenset({502, 503, 504})


def status_reason(status: int) -> str:
    """The stable reason for an HTTP status answered instead of 101.

    Args:
        status: The HTTP status code.
    """
    return {401: "unauthorized", 403: "forbidden", 503: "unavailable"}.get(status, "not-websocket")


def status_hint(status: int) -> str:
    """What to check when the handshake is answered with ``status``.

    Args:
        status: The HTTP status code (0 when unknown).
    """
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


def old_http_status(exc: InvalidMessage) -> str | None:
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


def closed_diagnosis(url: str, exc: ConnectionClosed, during: str) -> MCPConnectionError:
    """The ``step="closed"`` failure for a connection that closed ``during`` something.

    Args:
        url: Where the connection went.
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
        return MCPConnectionError.diagnosed(
            "closed",
            "closed",
            f"WebSocket to {url} closed by this client with {code} {reason} {during}.",
            check,
        )
    return MCPConnectionError.diagnosed(
        "closed",
        "closed-1011" if code == 1011 else "closed",
        f"WebSocket to {url} closed with {code} {reason} {during}.",
        _closed_hint(code),
    )


def not_mcp(url: str, method: str, what: str) -> MCPConnectionError:
    """The ``step="protocol"`` failure: the server answered ``method`` with ``what``.

    Args:
        url: The server's URL.
        method: The request it answered.
        what: What it answered with, in words.
    """
    return MCPConnectionError.diagnosed(
        "protocol",
        "not-mcp",
        f"{url} is a WebSocket server but does not speak MCP: {method} was answered with {what}.",
        "that the URL points at the MCP server (not another WebSocket service on the same "
        "host) and that it speaks JSON-RPC 2.0.",
    )


def is_retryable(error: MCPConnectionError) -> bool:
    """Whether trying again may help: DNS, refused, timed out, closed, HTTP 502/503/504.

    Args:
        error: A connection failure.
    """
    if error.step in ("dns", "tcp", "timeout", "closed"):
        return True
    cause = error.__cause__
    return isinstance(cause, InvalidStatus) and cause.response.status_code in _RETRYABLE_STATUS


def reword(error: MCPConnectionError, during: str) -> MCPConnectionError:
    """``error`` saying what the connection was doing when it closed: ``during``.

    A transport says a connection closed "while sending" or "while requests
    were in flight"; its caller knows which request that was.

    Args:
        error: A ``step="closed"`` failure from a transport.
        during: What was going on, such as ``"before answering initialize"``.
    """
    cut = error.problem.rfind(" while ")
    if error.step != "closed" or cut < 0:
        return error
    reworded = MCPConnectionError(
        step=error.step,
        reason=error.reason,
        problem=f"{error.problem[:cut]} {during}.",
        check=error.check,
    )
    reworded.__cause__ = error.__cause__
    return reworded
