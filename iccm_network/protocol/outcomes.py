"""How a tool call ended: a closed set of outcome types (pure, no I/O).

A call's outcome is exactly one of:

* ``Returned``: the tool returned a value, whatever it is; an exception
  object a tool returns is a value too.
* ``Raised``: the tool raised an exception.
* ``TimedOut``: the call ran past its timeout.
* ``Cancelled``: the client cancelled it or went away; it gets no reply.
* ``ShutDown``: the server stopped before the call finished.

Keeping what a tool returned apart from what it raised means no value can be
mistaken for a failure, and the protocol core needs no ``asyncio`` to tell a
cancellation from a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Cancelled", "Outcome", "Raised", "Returned", "ShutDown", "TimedOut"]


@dataclass(frozen=True, slots=True)
class Returned:
    """The tool returned ``value``.

    Args:
        value: What it returned.
    """

    value: Any

    @property
    def label(self) -> str:
        """A short word for logs: ``ok``."""
        return "ok"


@dataclass(frozen=True, slots=True)
class Raised:
    """The tool raised ``exception``.

    Args:
        exception: What it raised.
    """

    exception: BaseException

    @property
    def label(self) -> str:
        """A short word for logs: ``error:`` and the exception's type."""
        return f"error:{type(self.exception).__name__}"


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The call ran past its timeout.

    Args:
        seconds: The timeout that expired.
    """

    seconds: float

    @property
    def label(self) -> str:
        """A short word for logs: ``timeout``."""
        return "timeout"

    @property
    def message(self) -> str:
        """How the reply says it: ``timed out after 2.5 s``."""
        return f"timed out after {self.seconds:g} s"


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The client cancelled the call or closed the connection; no reply is sent."""

    @property
    def label(self) -> str:
        """A short word for logs: ``cancelled``."""
        return "cancelled"


@dataclass(frozen=True, slots=True)
class ShutDown:
    """The server shut down before the call finished; the reply is a tool error."""

    @property
    def label(self) -> str:
        """A short word for logs: ``cancelled:shutdown``."""
        return "cancelled:shutdown"

    @property
    def message(self) -> str:
        """How the reply says it."""
        return "the server shut down before the call finished"


Outcome = Returned | Raised | TimedOut | Cancelled | ShutDown
"""Every way a call can end; ``match`` on it or test with ``isinstance``."""
