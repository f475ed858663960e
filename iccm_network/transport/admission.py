"""Who may talk to the server: the Origin, Host and bearer token checks.

WebSocket handshakes and Streamable HTTP requests pass the very same checks
before anything runs; a refusal is an HTTP status, a short text and headers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from iccm_network.config import Settings

__all__ = ["Admission", "HeaderLookup", "Refusal"]

logger = logging.getLogger("iccm_network.server")

_LOOPBACK_ORIGIN = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?")


@dataclass(frozen=True)
class Refusal:
    """A request turned away before anything runs.

    Args:
        status: The HTTP status.
        text: A short plain-text body.
        headers: Extra response headers.
    """

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)


class HeaderLookup(Protocol):
    """A request's headers as the checks read them (``websockets`` ``Headers`` has this)."""

    def get_all(self, key: str) -> list[str]:
        """Every value of a header, in order; empty when it is absent.

        Args:
            key: The header's name, any case.
        """


def _only(headers: HeaderLookup, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0] if values else None


def _loopback_only(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


class Admission:
    """The checks a request passes before anything runs, from the settings.

    Args:
        settings: ``allowed_origins``, ``allowed_hosts``, ``auth_token`` and ``host``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check_request(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Origin, Host and bearer token checks, for both transports.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.

        Returns:
            Why the request is refused, or ``None`` to serve it.
        """
        settings = self.settings
        for name in ("Origin", "Host", "Authorization"):
            # A repeat is how a request smuggles a second value past a check.
            if len(headers.get_all(name)) > 1:
                logger.warning("refused a connection from %s: repeated %s", peer, name)
                return Refusal(400, f"Repeated {name} header\n")
        origin = _only(headers, "Origin")
        if origin is not None and not self._origin_allowed(origin):
            logger.warning("refused a connection from %s: origin %r", peer, origin)
            return Refusal(403, "Origin not allowed\n")
        refusal = self.check_host(peer, headers)
        if refusal is not None:
            return refusal
        token = settings.auth_token
        if token is not None:
            scheme, _, given = (_only(headers, "Authorization") or "").partition(" ")
            # Compare fixed-length digests: compare_digest on the tokens
            # themselves would still give their length away.
            given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape"))
            expected_digest = hashlib.sha256(token.encode("utf-8", "surrogateescape"))
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given_digest.digest(), expected_digest.digest()
            ):
                logger.warning("refused a connection from %s: missing or wrong bearer token", peer)
                return Refusal(401, "Unauthorized\n", {"WWW-Authenticate": "Bearer"})
        return None

    def _origin_allowed(self, origin: str) -> bool:
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        # Bound to loopback only, the server is reachable from this machine
        # alone; its own pages (an Inspector on localhost) may call it, and
        # the Host check below still stops DNS rebinding.
        return _loopback_only(self.settings.host) and _LOOPBACK_ORIGIN.fullmatch(origin) is not None

    def check_host(self, peer: str, headers: HeaderLookup) -> Refusal | None:
        """The Host check alone (DNS-rebinding protection), for ``/healthz`` too.

        Args:
            peer: The client's address, for logs.
            headers: The request's headers.

        Returns:
            Why the request is refused, or ``None``.
        """
        allowed_hosts = self.settings.allowed_hosts
        if not allowed_hosts:
            return None
        if len(headers.get_all("Host")) > 1:
            logger.warning("refused a connection from %s: repeated Host", peer)
            return Refusal(400, "Repeated Host header\n")
        host = (_only(headers, "Host") or "").lower()
        name = host if host.endswith("]") else host.rpartition(":")[0] or host
        allowed = {h.lower() for h in allowed_hosts}
        if host not in allowed and name not in allowed and name.strip("[]") not in allowed:
            logger.warning("refused a connection from %s: host %r", peer, host)
            return Refusal(403, "Host not allowed\n")
        return None
