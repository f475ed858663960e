"""The listening socket and the process's open-files budget.

One dual-stack socket for every interface, the kernel's accept queue, the
soft open-files limit raised toward the hard one, and a peer's address as
the logs write it. Plain ``socket`` and ``resource`` calls, no protocol.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    import resource
except ImportError:  # Windows has no open-files limit to raise
    resource = None  # type: ignore[assignment]

__all__ = [
    "ACCEPT_BATCH",
    "FD_RESERVE",
    "PendingHandshakes",
    "address",
    "deepen_backlog",
    "listening_socket",
    "open_files",
    "open_files_limit",
    "quiet_accept_errors",
]

logger = logging.getLogger("iccm_network.server")

FD_RESERVE = 64
"""Open files kept free for logs, the listening sockets and log shipping."""
ACCEPT_BATCH = 64
"""Connections asyncio accepts in one go, before any of them can be counted."""


def listening_socket(port: int) -> socket.socket:
    """One socket for every interface, IPv4 and IPv6, on one port.

    ``create_server(host=None)`` opens a socket per address family, and with
    port 0 each would get a different port; a dual-stack socket does not.
    """
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[Any, ...] = ("::", port)
    except OSError:  # a host without IPv6
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def open_files_limit(needed: int) -> int | None:
    """Raise the soft open-files limit toward the hard one; return the soft limit.

    Args:
        needed: Open files the configured limits could use.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "the open-files limit is %d, below the %d that max_connections and"
            " max_handshakes need; raise it (ulimit -n) or lower max_connections",
            soft,
            needed,
        )
    return None if soft == resource.RLIM_INFINITY else int(soft)


def deepen_backlog(sockets: Sequence[Any]) -> None:
    """Let the kernel queue up to ``somaxconn`` connections on each listening socket.

    asyncio's default backlog of 100 drops SYNs when a fleet of clients
    reconnects at once; the accept loop still takes ``ACCEPT_BATCH`` at a time.
    """
    for listening in sockets:
        try:
            with socket.socket(fileno=os.dup(listening.fileno())) as sock:
                sock.listen(socket.SOMAXCONN)
        except OSError:  # pragma: no cover - the kernel's default stays
            pass


def open_files() -> int:
    """Files this process has open now (16 where ``/proc`` cannot tell)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def address(address: Sequence[Any]) -> str:
    """``host:port`` as the logs write it (``[host]:port`` for IPv6).

    Args:
        address: A socket address.
    """
    host = str(address[0]).removeprefix("::ffff:")
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> Callable[..., Any] | None:
    """Log a failed accept (out of open files) as one line, not a traceback.

    asyncio reports each one through the loop's exception handler with a
    traceback, and retries a second later; during a flood that is
    megabytes of log saying the same thing.
    """
    previous = loop.get_exception_handler()
    failed = [0, -math.inf]  # failures not yet logged, when the last line was

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of"):
            # asyncio retries each queued connection in a row: one line a second.
            failed[0] += 1
            if loop.time() - failed[1] >= 1.0:
                logger.warning(
                    "cannot accept %d connections: %s; retrying in a second",
                    failed[0],
                    context.get("exception"),
                )
                failed[0], failed[1] = 0, loop.time()
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    return previous


class PendingHandshakes:
    """Connections in their opening handshake, oldest first, shed past a limit.

    Every unfinished handshake holds an open file; past the limit the oldest
    is dropped, as nginx does against slowloris, so that new clients always
    find a file to be accepted with.

    Args:
        max_handshakes: The ``max_handshakes`` setting.
    """

    def __init__(self, max_handshakes: int) -> None:
        self.max_handshakes = max_handshakes
        self.fd_room: float = math.inf
        """Open files left for connections once the server is listening."""
        self._pending: dict[Any, None] = {}
        self._shed = 0
        self._shed_logged = -math.inf

    def __contains__(self, connection: object) -> bool:
        return connection in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, connection: Any, *, open_connections: int) -> None:
        """Count a new unfinished handshake, dropping the oldest beyond the limit.

        Args:
            connection: A connection with a ``transport``.
            open_connections: Connections already served (they hold files too).
        """
        pending = self._pending
        limit = max(1, min(self.max_handshakes, self.fd_room - open_connections))
        while len(pending) >= limit:
            oldest = next(iter(pending))
            del pending[oldest]
            oldest.transport.abort()
            self._shed += 1
        if self._shed:
            # A flood sheds thousands: one line a second says enough.
            now = time.monotonic()
            if now - self._shed_logged >= 1.0:
                logger.warning(
                    "dropped %d unfinished handshakes: %d pending at most"
                    " (max_handshakes, or what the open-files limit leaves)",
                    self._shed,
                    limit,
                )
                self._shed = 0
                self._shed_logged = now
        pending[connection] = None

    def discard(self, connection: Any) -> None:
        """Stop counting ``connection`` (its handshake ended, one way or another).

        Args:
            connection: The connection.
        """
        self._pending.pop(connection, None)
