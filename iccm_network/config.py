"""Settings: every one has a safe default and an environment variable.

Precedence, highest first: an argument to ``run()``/``serve()``, an argument
to ``App(...)``, the environment, the default. The README's configuration
table lists the same settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iccm_network.levels import parse_level

__all__ = ["Settings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a server can be told, validated once.

    Args:
        host: Interface to bind; ``None`` binds every interface, IPv4 and IPv6.
        port: TCP port; 0 picks a free one.
        log_level: Level for the stderr logging ``App.run()`` sets up.
        max_message_size: Largest accepted message, in bytes.
        max_in_flight: Calls that may run at once on one connection.
        max_connections: Connections served at once; more get HTTP 503.
        max_handshakes: Connections still in their opening handshake at
            once; beyond it (or beyond what the open-files limit leaves
            room for) the oldest unfinished handshake is dropped.
        max_batch: Entries one JSON-RPC batch may hold; a larger batch is
            refused whole with one -32600 error.
        max_subscriptions: Resource subscriptions one connection may hold:
            each URI it subscribed to with ``resources/subscribe``, each open
            2026-07-28 ``subscriptions/listen`` stream and each URI the
            stream names. A request beyond it gets a -32000 error.
        max_unsent_bytes: Bytes of replies waiting to be written to one
            connection; over it the server stops reading that connection's
            requests until the client reads its replies.
        compression: ``off``, or ``deflate`` to offer permessage-deflate.
        worker_threads: Threads that run sync tools; calls beyond them queue.
        tool_timeout: Default seconds a call may run; ``None`` for no limit.
        shutdown_grace: Seconds the whole graceful shutdown may take: in-flight
            calls get all of it but the last second (a quarter of it when it
            is under 4 s), which closes the connections.
        shutdown_close_code: The close code connections get at shutdown:
            1001 (going away), or 1012 (service restart), which the ICCM
            relay treats as "reconnect" where 1001 makes it spin.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before closing with 1011
            and dropping the connection and its calls.
        close_timeout: Seconds a peer gets to answer the closing handshake
            before its TCP connection is dropped.
        allowed_origins: Browser ``Origin`` values accepted (``*`` for any).
        allowed_hosts: ``Host`` header values accepted; empty accepts any.
        auth_token: Bearer token required at the handshake, if set.
        godot_url: Where to ship log entries (Godot's WebSocket URL).
        logging_enabled: ``False`` turns Godot shipping off.
        log_summary_interval: Seconds between the INFO lines that sum up
            successful calls (each is a DEBUG line); ``None`` logs every
            successful call at INFO instead.
        event_loop: ``auto`` runs ``app.run()`` on ``uvloop`` when it is
            installed, else on ``asyncio``'s loop; ``asyncio`` and ``uvloop``
            choose one (``uvloop`` fails at startup when it is missing).
    """

    host: str | None = None
    port: int = 8000
    log_level: str = "INFO"
    max_message_size: int = 16 * 1024 * 1024
    max_in_flight: int = 256
    max_connections: int = 4096
    max_handshakes: int = 1024
    max_batch: int = 1000
    max_subscriptions: int = 1000
    max_unsent_bytes: int = 4 * 1024 * 1024
    compression: str = "off"
    worker_threads: int = 64
    tool_timeout: float | None = None
    shutdown_grace: float = 10.0
    shutdown_close_code: int = 1001
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 2.0
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    godot_url: str | None = None
    logging_enabled: bool = True
    log_summary_interval: float | None = 60.0
    event_loop: str = "auto"

    ENVIRONMENT = {
        "host": "MCP_HOST",
        "port": "MCP_PORT",
        "log_level": "MCP_LOG_LEVEL",
        "max_message_size": "MCP_MAX_MESSAGE_SIZE",
        "max_in_flight": "MCP_MAX_IN_FLIGHT",
        "max_connections": "MCP_MAX_CONNECTIONS",
        "max_handshakes": "MCP_MAX_HANDSHAKES",
        "max_batch": "MCP_MAX_BATCH",
        "max_subscriptions": "MCP_MAX_SUBSCRIPTIONS",
        "max_unsent_bytes": "MCP_MAX_UNSENT_BYTES",
        "compression": "MCP_COMPRESSION",
        "worker_threads": "MCP_WORKER_THREADS",
        "tool_timeout": "MCP_TOOL_TIMEOUT",
        "shutdown_grace": "MCP_SHUTDOWN_GRACE",
        "shutdown_close_code": "MCP_SHUTDOWN_CLOSE_CODE",
        "ping_interval": "MCP_PING_INTERVAL",
        "ping_timeout": "MCP_PING_TIMEOUT",
        "close_timeout": "MCP_CLOSE_TIMEOUT",
        "allowed_origins": "MCP_ALLOWED_ORIGINS",
        "allowed_hosts": "MCP_ALLOWED_HOSTS",
        "auth_token": "MCP_AUTH_TOKEN",
        "godot_url": "GODOT_URL",
        "logging_enabled": "LOGGING_ENABLED",
        "log_summary_interval": "MCP_LOG_SUMMARY_INTERVAL",
        "event_loop": "MCP_EVENT_LOOP",
    }

    def __post_init__(self) -> None:
        for fld in dataclasses.fields(self):
            _check(fld.name, getattr(self, fld.name))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Read settings from the environment, then apply ``overrides``.

        Args:
            environ: The environment to read; ``os.environ`` by default.
            **overrides: Settings given in code; ``None`` values are ignored
                so that unset arguments fall through to the environment.

        Raises:
            ValueError: A variable or override has an invalid value; the
                message names the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for fld in dataclasses.fields(cls):
            variable = cls.ENVIRONMENT[fld.name]
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[fld.name] = _check(fld.name, _parse(fld.name, raw.strip()))
            except ValueError as exc:
                raise ValueError(f"{variable}={raw!r}: {exc}") from None
        for name, value in overrides.items():
            if name not in cls.ENVIRONMENT:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = tuple(value) if name.startswith("allowed_") else value
        return cls(**values)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with the non-``None`` ``overrides`` applied.

        Args:
            **overrides: Settings to change.
        """
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


_COUNTS = (
    "max_message_size",
    "max_in_flight",
    "max_connections",
    "max_handshakes",
    "max_batch",
    "max_subscriptions",
    "max_unsent_bytes",
    "worker_threads",
)
_SECONDS = ("tool_timeout", "ping_interval", "ping_timeout", "log_summary_interval")
_COMPRESSIONS = ("off", "deflate")
_EVENT_LOOPS = ("auto", "asyncio", "uvloop")
_SHUTDOWN_CLOSE_CODES = (1001, 1012)


def _check(name: str, value: Any) -> Any:
    """Return ``value`` if it is valid for the setting ``name``, else raise ``ValueError``."""
    if name == "port" and not 0 <= value <= 65535:
        raise ValueError(f"port must be 0-65535, got {value}")
    if name in _COUNTS and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    if name in _SECONDS and value is not None and not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds or unset, got {value}")
    if name == "log_level":
        try:
            parse_level(value)
        except ValueError as exc:
            raise ValueError(f"log_level: {exc}") from None
    if name == "shutdown_close_code" and value not in _SHUTDOWN_CLOSE_CODES:
        raise ValueError(f"shutdown_close_code must be 1001 or 1012, got {value}")
    if name == "compression" and value not in _COMPRESSIONS:
        raise ValueError(f"compression must be off or deflate, got {value!r}")
    if name == "close_timeout" and not 0 < value < math.inf:
        raise ValueError(f"close_timeout must be a positive number of seconds, got {value}")
    if name == "event_loop" and value not in _EVENT_LOOPS:
        raise ValueError(f"event_loop must be one of {', '.join(_EVENT_LOOPS)}, got {value!r}")
    if name == "shutdown_grace" and not 0 <= value < math.inf:
        raise ValueError(f"shutdown_grace must be 0 or more seconds, got {value}")
    return value


def _parse(name: str, raw: str) -> Any:
    if name in ("host", "auth_token", "godot_url"):
        return raw
    if name == "log_level":
        return raw.upper()
    if name in ("compression", "event_loop"):
        return raw.lower()
    if name in ("allowed_origins", "allowed_hosts"):
        return _split(raw)
    if name == "logging_enabled":
        lowered = raw.lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError("expected true or false")
        return lowered in _TRUE
    if name in ("port", "shutdown_close_code") or name in _COUNTS:
        return int(raw)
    if name in _SECONDS and raw.lower() in ("none", "off"):
        return None
    return float(raw)
