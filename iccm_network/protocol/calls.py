"""What the server protocol hands out and keeps: calls, batches, its own description.

``ToolCall`` is a validated request for the transport to run (a tool, a
resource read, a prompt or a completion hook); ``Batch`` collects the
replies of one JSON-RPC batch; ``ServerInfo`` is what ``initialize`` and
``server/discover`` say about the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iccm_network.errors import MCPError
from iccm_network.protocol.outcomes import Outcome
from iccm_network.protocol.versions import Features
from iccm_network.protocol.wire import RequestId
from iccm_network.tools.routes import Tool

__all__ = ["Batch", "ServerInfo", "ToolCall"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the server says about itself in ``initialize`` and ``server/discover``.

    Args:
        name: The server's name.
        version: The server's version.
        title: A human-readable title.
        instructions: Guidance for the model using the server.
        list_ttl_ms: How long 2026-07-28 clients may cache ``tools/list``.
        page_size: Tools per ``tools/list`` page; ``None`` sends one page.
    """

    name: str
    version: str
    title: str | None = None
    instructions: str | None = None
    list_ttl_ms: int = 60_000
    page_size: int | None = None

    def implementation(self) -> dict[str, Any]:
        """The ``Implementation`` object (``serverInfo``)."""
        info: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.title is not None:
            info["title"] = self.title
        return info


class Batch:
    """Replies of one batch, sent together once every call in it is done."""

    __slots__ = ("messages", "pending", "position", "replies")

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.position = 0
        self.replies: list[dict[str, Any]] = []
        self.pending = 0

    @property
    def reading(self) -> bool:
        """True while entries remain to be handled."""
        return self.position < len(self.messages)


@dataclass(eq=False, slots=True)
class ToolCall:
    """A validated ``tools/call`` for the transport to run.

    Args:
        tool: The tool to call.
        arguments: Keyword arguments, already converted to Python types.
        request_id: The request's id (``None`` for a notification).
        features: The protocol revision the call is served under.
        client_info: The caller's ``clientInfo``, when known.
        progress_token: The request's ``_meta.progressToken``, if any.
        render: Shapes the outcome of a resource read, prompt or completion
            hook into its result or JSON-RPC error; ``None`` for a tool.
        log_level: The least severe log level the 2026-07-28 request asked
            for in its ``_meta``; ``None`` sends it no log messages.
    """

    tool: Tool
    arguments: dict[str, Any]
    request_id: RequestId
    features: Features
    client_info: Mapping[str, Any] | None = None
    progress_token: str | int | None = None
    log_level: str | None = None
    notification: bool = False
    cancelled: bool = False
    batch: Batch | None = field(default=None, repr=False)
    render: Callable[[Outcome, Features], dict[str, Any] | MCPError] | None = field(
        default=None, repr=False
    )
