"""Tool functions several test modules serve: register them with ``app.add_tool``."""

from __future__ import annotations

import socket

from iccm_network import ToolError

__all__ = ["add", "echo", "fail", "free_port"]


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first addend.
        b: The second addend.
    """
    return a + b


async def echo(text: str) -> str:
    """Return the text unchanged.

    Args:
        text: What to send back.
    """
    return text


def fail(reason: str) -> str:
    """Fail with a tool error carrying data.

    Args:
        reason: The message.
    """
    raise ToolError(reason, data={"reason": reason})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
