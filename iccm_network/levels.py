"""Logging levels by name: MCP_LOG_LEVEL's vocabulary, ``TRACE`` and ``WARN`` included.

Apart from ``logs`` so that ``config`` can check ``MCP_LOG_LEVEL`` and
``logs`` can read ``Settings`` without the two importing each other.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["TRACE", "parse_level"]

TRACE: Final = 5
"""A level below ``DEBUG``; ``MCP_LOG_LEVEL=TRACE`` selects it."""

_LEVELS: Final = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


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
