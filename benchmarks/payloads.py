"""The requests every server answers, so all of them do identical work per call.

The iccm-network app and the hand-written servers implement the same four
tools; the load generator sends these arguments.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "ECHO_ARGUMENTS",
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "REGISTER_ARGUMENTS",
    "SLOW_SECONDS",
    "TOOL_ARGUMENTS",
    "big_text",
    "register_summary",
]

PROTOCOL_VERSION: Final = "2025-11-25"
"""The revision the load generator negotiates."""

SLOW_SECONDS: Final = 0.1
"""How long the ``slow`` tool sleeps."""

PRIORITIES: Final = ("low", "normal", "high")

ECHO_ARGUMENTS: Final[dict[str, Any]] = {"text": "hello, benchmark"}

REGISTER_ARGUMENTS: Final[dict[str, Any]] = {
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "age": 36,
    "score": 97,
    "priority": "high",
    "address": {"street": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH"},
    "tags": ["mathematics", "engines", "poetry"],
    "note": "first published algorithm",
    "active": True,
    "retries": 2,
}

TOOL_ARGUMENTS: Final[dict[str, dict[str, Any]]] = {
    "echo": ECHO_ARGUMENTS,
    "register": REGISTER_ARGUMENTS,
    "slow": {},
}


def register_summary(arguments: dict[str, Any]) -> dict[str, Any]:
    """What the ``register`` tool returns for valid arguments, in every server.

    Args:
        arguments: Schema-valid ``register`` arguments.
    """
    return {
        "id": f"user-{arguments['age']}-{len(arguments['name'])}",
        "priority": arguments["priority"],
        "city": arguments["address"]["city"],
        "tags": len(arguments["tags"]),
    }


def big_text(size: int) -> str:
    """ASCII text of exactly ``size`` characters that JSON encodes without escapes.

    Args:
        size: Characters wanted.
    """
    unit = "The quick brown fox jumps over the lazy dog 0123456789. "
    return (unit * (size // len(unit) + 1))[:size]
