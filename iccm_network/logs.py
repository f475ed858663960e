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
- one line per call: ``tool``, ``request_id``, ``ms``, ``outcome``
  (``ok``, ``error:<Type>``, ``timeout``, ``cancelled``);
- errors with a correlation id: ``trace_id``.

A connection opened by a log shipper announces itself with the
``SHIPPER_HEADER`` request header; the transport calls
``mark_shipper_connection()`` for it, so that every record logged while
serving that connection can be recognised (``in_shipper_connection()``) and
kept out of the shipping queue. That is what stops a Godot built with this
library from shipping its own ``logger_log`` traffic back to itself.
"""

from __future__ import annotations

import contextvars
import logging
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

from iccm_network.versions import HANDSHAKE_VERSIONS, MODERN_VERSIONS


class _StartupSettings(Protocol):
    """The settings ``startup_lines`` states (``iccm_network.config.Settings`` has them)."""

    @property
    def max_message_size(self) -> int: ...
    @property
    def max_in_flight(self) -> int: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def tool_timeout(self) -> float | None: ...
    @property
    def shutdown_grace(self) -> float: ...
    @property
    def allowed_origins(self) -> tuple[str, ...]: ...
    @property
    def allowed_hosts(self) -> tuple[str, ...]: ...
    @property
    def auth_token(self) -> str | None: ...
    @property
    def godot_url(self) -> str | None: ...
    @property
    def logging_enabled(self) -> bool: ...
    @property
    def max_batch(self) -> int: ...
    @property
    def max_unsent_bytes(self) -> int: ...
    @property
    def compression(self) -> str: ...


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


class Started(Protocol):
    """What ``startup_lines`` reads of a started server (``iccm_network.server.Server``).

    An interface rather than the class, so that this module imports no server
    module (the server imports this one).
    """

    @property
    def info(self) -> _Named: ...
    @property
    def settings(self) -> _StartupSettings: ...
    @property
    def routes(self) -> Iterable[str]: ...
    @property
    def sockets(self) -> Sequence[socket.socket]: ...


__all__ = [
    "LOG_FORMAT",
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

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The stderr format ``configure_logging()`` sets up."""

TRACE: Final = 5
"""A level below ``DEBUG``; ``MCP_LOG_LEVEL=TRACE`` selects it."""

SHIPPER_HEADER: Final = "X-ICCM-Log-Shipper"
"""Request header a log shipper sends when it connects (value: its component)."""

_LEVELS: Final = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

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


def parse_level(level: str | int) -> int:
    """A logging level from a name (any case, ``WARN`` and ``TRACE`` too) or a number.

    Args:
        level: ``"info"``, ``"WARNING"``, ``"TRACE"``, ``20``, ...

    Raises:
        ValueError: The name is not a level.
    """
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name.isdigit():
        return int(name)
    try:
        return _LEVELS[name]
    except KeyError:
        known = ", ".join(name for name in _LEVELS if name != "WARN")
        raise ValueError(f"unknown log level {level!r} (expected one of {known})") from None


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
    return f"listening on {url} ({scope}); health check at GET /healthz"


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
    if settings.godot_url is None:
        lines.append("log shipping to Godot: off (GODOT_URL unset)")
    elif not settings.logging_enabled:
        lines.append("log shipping to Godot: off (LOGGING_ENABLED=false)")
    else:
        lines.append(f"log shipping to Godot: on, to {redact_url(settings.godot_url)}")
    return lines


def log_startup(server: Started) -> None:
    """Log ``startup_lines(server)`` at INFO on ``iccm_network.server``.

    Args:
        server: A started server.
    """
    if logger.isEnabledFor(logging.INFO):
        for line in startup_lines(server):
            logger.info("%s", line)
