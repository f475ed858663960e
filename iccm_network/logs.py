"""The logging vocabulary: stderr setup, startup lines, and what records carry.

The library logs through standard ``logging`` under the ``iccm_network``
logger tree and configures nothing itself; ``App.run()`` calls
``configure_logging()``, which sets up stderr only when the application has
not configured logging already.

Structured fields. The transport attaches ``extra=`` fields to its records so
that handlers (the Godot shipper among them) can act on them without parsing
messages:

- connection open/close: ``peer``, ``path``, ``subprotocol``, ``origin``;
  on close also ``duration`` (seconds), ``close_code``, ``close_reason``;
- calls, on the ``iccm_network.transport.calls`` logger (``CallLog``): one INFO line
  per call that failed, timed out, was cancelled or was refused before it
  ran, with ``tool``, ``request_id``, ``ms`` (not for refusals) and
  ``outcome`` (``error:<Type>``, ``timeout``, ``cancelled``,
  ``cancelled:shutdown``, ``refused:unknown-tool``,
  ``refused:invalid-arguments``, ``refused:invalid-params``,
  ``refused:busy``); successful calls (``outcome`` ``ok``) one DEBUG line
  each, and at INFO one summary line per ``log_summary_interval`` with a
  ``calls`` field (per tool: ``ok``, ``ms_avg``, ``ms_max``);
- errors with a correlation id: ``trace_id``.

A connection opened by a log shipper announces itself with the
``SHIPPER_HEADER`` request header; the transport calls
``mark_shipper_connection()`` for it, so that every record logged while
serving that connection can be recognised (``in_shipper_connection()``) and
kept out of the shipping queue. That is what stops a Godot built with this
library from shipping its own ``logger_log`` traffic back to itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from iccm_network.config import Settings
from iccm_network.levels import TRACE, parse_level
from iccm_network.protocol.versions import HANDSHAKE_VERSIONS, MODERN_VERSIONS


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


class Started(Protocol):
    """What ``startup_lines`` reads of a started server (a websocket ``Server``).

    An interface rather than the class, so that this module imports no server
    module (the server imports this one).
    """

    @property
    def info(self) -> _Named: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def routes(self) -> Iterable[str]: ...
    @property
    def sockets(self) -> Sequence[socket.socket]: ...


__all__ = [
    "LOG_FORMAT",
    "CallLog",
    "SHIPPER_HEADER",
    "TRACE",
    "configure_logging",
    "in_shipper_connection",
    "log_startup",
    "mark_shipper_connection",
    "parse_level",
    "redact_url",
    "startup_lines",
]

logger = logging.getLogger("iccm_network.server")
calls_logger = logging.getLogger("iccm_network.calls")

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The stderr format ``configure_logging()`` sets up."""

SHIPPER_HEADER: Final = "X-ICCM-Log-Shipper"
"""Request header a log shipper sends when it connects (value: its component)."""


_shipper_connection: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "iccm_network_shipper_connection", default=False
)


def mark_shipper_connection(headers: Mapping[str, str]) -> bool:
    """Mark the current context as serving a log shipper, if it is one.

    The transport calls this at the start of each connection's handler task;
    the mark then holds for that task and for the call tasks it starts (they
    copy its context), and nowhere else.

    Args:
        headers: The connection's HTTP request headers.

    Returns:
        Whether the connection is a log shipper's.
    """
    shipper = headers.get(SHIPPER_HEADER) is not None
    if shipper:
        _shipper_connection.set(True)
    return shipper


def in_shipper_connection() -> bool:
    """Whether the code running now serves a log shipper's connection."""
    return _shipper_connection.get()


def configure_logging(level: str | int = "INFO") -> bool:
    """Log to stderr at ``level``, unless the application configured logging.

    Nothing happens when the root logger or the ``iccm_network`` logger
    already has a handler: the application's own setup wins.

    Args:
        level: The level name or number (``MCP_LOG_LEVEL``).

    Returns:
        Whether logging was configured here.

    Raises:
        ValueError: ``level`` is not a level.
    """
    levelno = parse_level(level)
    if logging.getLogger().handlers or logging.getLogger("iccm_network").handlers:
        return False
    if levelno < logging.DEBUG and logging.getLevelName(levelno) == f"Level {levelno}":
        logging.addLevelName(levelno, "TRACE")
    logging.basicConfig(level=levelno, format=LOG_FORMAT, stream=sys.stderr)
    return True


def redact_url(url: str) -> str:
    """``url`` without any password it carries, for log lines.

    Args:
        url: A URL, such as ``GODOT_URL``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{path}"


def _describe_socket(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        url = f"ws://[{host}]:{port}"
        if host == "::":
            dual = not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            scope = "every interface, IPv6 and IPv4" if dual else "every IPv6 interface only"
        elif host == "::1":
            scope = "IPv6 loopback only"
        else:
            scope = "this IPv6 address only"
    else:
        url = f"ws://{host}:{port}"
        if host == "0.0.0.0":
            scope = "every IPv4 interface, no IPv6"
        elif host.startswith("127."):
            scope = "IPv4 loopback only"
        else:
            scope = "this IPv4 address only"
    http_url = url.replace("ws://", "http://", 1)
    return (
        f"listening on {url} ({scope}): WebSocket, and Streamable HTTP at {http_url}/mcp;"
        " health check at GET /healthz"
    )


def _size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def startup_lines(server: Started) -> list[str]:
    """What a started server states at startup, one log line each.

    What is served, every bound address and port, the protocol versions, the
    security options and limits, and whether logs go to Godot.

    Args:
        server: A started server.
    """
    info, settings = server.info, server.settings
    names = list(server.routes)
    tools = f": {', '.join(names)}" if names else ""
    lines = [f"serving {info.name} {info.version} with {len(names)} tools{tools}"]
    lines.extend(_describe_socket(sock) for sock in server.sockets)
    lines.append(
        f"MCP versions: {', '.join(HANDSHAKE_VERSIONS)} (initialize handshake); "
        f"{', '.join(MODERN_VERSIONS)} (stateless)"
    )
    if "*" in settings.allowed_origins:
        origins = "any browser origin accepted"
    elif settings.allowed_origins:
        origins = "browser origins accepted: " + ", ".join(settings.allowed_origins)
    else:
        origins = "browser origins refused (MCP_ALLOWED_ORIGINS unset)"
    hosts = (
        "Host accepted: " + ", ".join(settings.allowed_hosts)
        if settings.allowed_hosts
        else "any Host accepted"
    )
    token = "bearer token required" if settings.auth_token is not None else "no bearer token"
    lines.append(f"security: {origins}; {hosts}; {token}")
    timeout = "none" if settings.tool_timeout is None else f"{settings.tool_timeout:g} s"
    lines.append(
        f"limits: max message {_size(settings.max_message_size)}, "
        f"{settings.max_connections} connections, "
        f"{settings.max_in_flight} calls in flight per connection, tool timeout {timeout}, "
        f"shutdown grace {settings.shutdown_grace:g} s, "
        f"batches of {settings.max_batch}, {_size(settings.max_unsent_bytes)} of unsent replies, "
        f"compression {settings.compression}"
    )
    try:
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    except RuntimeError:
        loop = "none"
    summary = settings.log_summary_interval
    calls = (
        "one INFO line per call"
        if summary is None
        else f"failed calls one INFO line each, successful ones summed up every {summary:g} s"
    )
    lines.append(f"event loop: {loop}; call log: {calls}")
    if settings.godot_url is None:
        lines.append("log shipping to Godot: off (GODOT_URL unset)")
    elif not settings.logging_enabled:
        lines.append("log shipping to Godot: off (LOGGING_ENABLED=false)")
    else:
        lines.append(f"log shipping to Godot: on, to {redact_url(settings.godot_url)}")
    return lines


def log_startup(server: Started) -> None:
    """Log ``startup_lines(server)`` at INFO on ``iccm_network.transport.websocket``.

    A server reachable beyond loopback with no bearer token also gets a
    WARNING: anyone who can reach the port can call every tool.

    Args:
        server: A started server.
    """
    if logger.isEnabledFor(logging.INFO):
        for line in startup_lines(server):
            logger.info("%s", line)
    exposed = [sock for sock in server.sockets if not _loopback(sock)]
    if exposed and server.settings.auth_token is None:
        host, port = exposed[0].getsockname()[:2]
        logger.warning(
            "listening beyond loopback (%s port %s) with no bearer token: anyone who can "
            "reach this port can call every tool; set MCP_AUTH_TOKEN, or MCP_HOST=127.0.0.1 "
            "to serve this machine only",
            host,
            port,
        )


def _loopback(sock: socket.socket) -> bool:
    host = sock.getsockname()[0]
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


class CallLog:
    """How finished calls are logged: failures one line each, successes summed up.

    A line per successful call costs a server more CPU than everything else
    it does for an ``echo``; so successes are one DEBUG line each, and at
    INFO they are counted per tool and written as one summary line every
    ``interval`` seconds (none for an interval without calls). With
    ``interval=None`` every success is an INFO line of its own, as failures
    always are.

    Args:
        interval: Seconds between summary lines, or ``None`` for a line per call.
    """

    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        # Per tool: successful calls, their total and their largest milliseconds.
        self._ok: dict[str, list[float]] = {}
        self._failed = 0
        self._since = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Write a summary every ``interval`` seconds from now on (on the running loop)."""
        if self.interval is not None and self._timer is None:
            self._since = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Write what is counted and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def _tick(self) -> None:
        assert self.interval is not None
        self.flush()
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def finished(self, tool: str, request_id: Any, ms: float, outcome: str) -> None:
        """Account for one finished call.

        Args:
            tool: The tool's name.
            request_id: The request's id.
            ms: Milliseconds the call took.
            outcome: ``ok`` or what went wrong (see the module docstring).
        """
        if outcome == "ok":
            if self.interval is not None:
                counts = self._ok.get(tool)
                if counts is None:
                    self._ok[tool] = [1, ms, ms]
                else:
                    counts[0] += 1
                    counts[1] += ms
                    if ms > counts[2]:
                        counts[2] = ms
                level = logging.DEBUG
            else:
                level = logging.INFO
        else:
            self._failed += 1
            level = logging.INFO
        if calls_logger.isEnabledFor(level):
            calls_logger.log(
                level,
                "call tool=%s id=%r ms=%.1f outcome=%s",
                tool,
                request_id,
                ms,
                outcome,
                extra={
                    "tool": tool,
                    "request_id": request_id,
                    "ms": round(ms, 1),
                    "outcome": outcome,
                },
            )

    def flush(self) -> None:
        """Write the summary of the successes counted since the last one, if any."""
        now = time.monotonic()
        ok, failed, seconds = self._ok, self._failed, now - self._since
        self._ok, self._failed, self._since = {}, 0, now
        if not ok or not calls_logger.isEnabledFor(logging.INFO):
            return
        summary = {
            tool: {"ok": int(n), "ms_avg": round(total / n, 3), "ms_max": round(top, 1)}
            for tool, (n, total, top) in ok.items()
        }
        parts = ", ".join(
            f"{tool} {entry['ok']} (avg {entry['ms_avg']:.3f} ms, max {entry['ms_max']:.1f} ms)"
            for tool, entry in summary.items()
        )
        calls_logger.info(
            "calls in the last %.0f s: %d ok, %d failed (one line each); %s",
            seconds,
            sum(entry["ok"] for entry in summary.values()),
            failed,
            parts,
            extra={"calls": summary, "failed": failed, "seconds": round(seconds, 1)},
        )
