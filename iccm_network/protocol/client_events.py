"""What a ``ClientProtocol`` hands its driver: requests awaiting replies, and events.

``receive_text`` returns events: a ``Reply`` to one of our requests, a
``Progress`` notification about one, any other ``Notification``, or a
``Stray`` reply to no request we wait for. ``tool_result`` and
``tool_list_page`` read the replies to ``tools/call`` and ``tools/list``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iccm_network.errors import MCPError
from iccm_network.protocol.client_results import decode_result, error_from

__all__ = [
    "ClientProtocolError",
    "Event",
    "Notification",
    "Progress",
    "Reply",
    "Request",
    "Stray",
    "excerpt",
    "replies_to",
    "tool_list_page",
    "tool_result",
]


class ClientProtocolError(Exception):
    """The peer sent something that is not JSON-RPC a client can read.

    Args:
        what: What arrived, in plain words, such as ``"text that is not JSON: '...'"``.
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(slots=True, eq=False)
class Request:
    """A request sent (or about to be) and not yet answered.

    Args:
        id: Its JSON-RPC id.
        method: Its method.
        text: Its encoded form, as sent.
        deadline: When it expires, on the caller's clock; ``None`` never.
        progress: Whether it asked for ``notifications/progress``.
        name: The tool's name, for ``tools/call`` (for messages).
    """

    id: int
    method: str
    text: str = field(repr=False)
    deadline: float | None = None
    progress: bool = False
    name: str | None = None

    @property
    def what(self) -> str:
        """The request in words for messages: ``tools/call 'add'`` or the method."""
        return self.method if self.name is None else f"{self.method} {self.name!r}"


@dataclass(slots=True, eq=False)
class Reply:
    """The answer to one of our requests.

    Args:
        request: The request it answers.
        message: The reply as received (``result`` or ``error``).
    """

    request: Request
    message: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the reply carries a ``result`` rather than an ``error``."""
        return "error" not in self.message

    def result(self) -> Any:
        """The reply's ``result``.

        Raises:
            MCPError: The reply is a JSON-RPC error (a subclass per code).
        """
        if "error" in self.message:
            raise error_from(self.message["error"])
        return self.message.get("result")


@dataclass(frozen=True, slots=True)
class Progress:
    """A ``notifications/progress`` about one of our requests.

    Args:
        request: The request it is about.
        progress: Work done so far.
        total: Work in all, if known.
        message: A message, if any.
    """

    request: Request
    progress: float
    total: float | None
    message: str | None


@dataclass(frozen=True, slots=True)
class LogMessage:
    """A ``notifications/message``: a log message from the server.

    Args:
        level: ``"debug"`` to ``"emergency"``.
        data: The message: a string, or an object with details.
        logger: The logger that sent it (an iccm-network server names the tool).
    """

    level: str
    data: Any
    logger: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification from the server that is about no request of ours.

    Args:
        method: Its method.
        params: Its params (``{}`` when it has none).
    """

    method: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Stray:
    """A reply to no request we are waiting for (an unknown id, a batch refused whole).

    Args:
        message: The message as received.
    """

    message: Any


Event = Reply | Progress | LogMessage | Notification | Stray


def excerpt(text: str | bytes, limit: int = 80) -> str:
    """``repr`` of the first ``limit`` characters of ``text``, for messages.

    Args:
        text: What arrived.
        limit: Characters shown.
    """
    shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")


def tool_result(reply: Reply) -> Any:
    """The decoded value of a ``tools/call`` reply (see ``decode_result``).

    Args:
        reply: The reply to a ``tools/call`` request.

    Raises:
        MCPError: A JSON-RPC error, or a result that is not an object.
        ToolError: The tool failed (``isError``).
    """
    result = reply.result()
    if not isinstance(result, dict):
        raise MCPError(f"{reply.request.what} returned a result that is not an object")
    return decode_result(result)


def tool_list_page(reply: Reply) -> tuple[list[dict[str, Any]], Any]:
    """The tools of one ``tools/list`` page and its ``nextCursor`` (``None`` on the last).

    Args:
        reply: The reply to a ``tools/list`` request.

    Raises:
        MCPError: A JSON-RPC error, or a page that is not a tool list.
    """
    page = reply.result()
    if not isinstance(page, dict) or not isinstance(page.get("tools"), list):
        raise MCPError("tools/list returned a result without a tools array")
    return page["tools"], page.get("nextCursor")


def replies_to(events: Iterable[Event]) -> dict[int, Reply]:
    """The replies among ``events``, by request id.

    Args:
        events: What ``receive_text`` or ``receive_message`` returned.
    """
    return {event.request.id: event for event in events if isinstance(event, Reply)}
