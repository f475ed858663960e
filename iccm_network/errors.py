"""Exceptions raised by iccm-network, each carrying what goes on the wire.

The tree, drawn once::

    ICCMNetworkError
    ├── MCPError (.code, .message, .data)      a JSON-RPC error response
    │   ├── ParseError              -32700
    │   ├── InvalidRequest          -32600
    │   ├── MethodNotFound          -32601
    │   ├── InvalidParams           -32602
    │   ├── InternalError           -32603
    │   ├── ServerBusy              -32000
    │   └── UnsupportedProtocolVersion -32022
    ├── ToolError (.message, .data)  a failed tool: ``isError: true`` in the
    │                               result, not a JSON-RPC error
    └── MCPConnectionError           the client could not reach or lost a server

``ToolDefinitionError`` is separate: it is a programming mistake found when a
tool is registered (a bad annotation, a duplicate name), so it derives from
``TypeError`` and never reaches the wire.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ICCMNetworkError",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MCPConnectionError",
    "MCPError",
    "MethodNotFound",
    "ParseError",
    "ServerBusy",
    "ToolDefinitionError",
    "ToolError",
    "UnsupportedProtocolVersion",
    "error_class_for_code",
]


class ICCMNetworkError(Exception):
    """Base class of every run-time error iccm-network raises."""


class MCPError(ICCMNetworkError):
    """A JSON-RPC error: raised by the client for an error response.

    Args:
        message: The error's one-line description.
        data: Optional structured detail, sent as the error's ``data`` member.
        code: The JSON-RPC error code; subclasses fix it.
    """

    default_code: ClassVar[int] = -32603

    def __init__(self, message: str, *, data: Any = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        self.code = self.default_code if code is None else code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member for this exception."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(MCPError):
    """The frame is not valid JSON (-32700)."""

    default_code = -32700


class InvalidRequest(MCPError):
    """The JSON is not a valid JSON-RPC request (-32600)."""

    default_code = -32600


class MethodNotFound(MCPError):
    """The method does not exist (-32601)."""

    default_code = -32601


class InvalidParams(MCPError):
    """The params are invalid: schema violations or an unknown tool (-32602)."""

    default_code = -32602


class InternalError(MCPError):
    """An unexpected server-side failure (-32603)."""

    default_code = -32603


class ServerBusy(MCPError):
    """A bound was exceeded, such as too many calls in flight (-32000)."""

    default_code = -32000


class UnsupportedProtocolVersion(MCPError):
    """The request names a protocol version the server does not serve (-32022)."""

    default_code = -32022


_BY_CODE: dict[int, type[MCPError]] = {
    cls.default_code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        ServerBusy,
        UnsupportedProtocolVersion,
    )
}


def error_class_for_code(code: int) -> type[MCPError]:
    """The most specific ``MCPError`` subclass for a JSON-RPC error code.

    Args:
        code: A JSON-RPC error code.
    """
    return _BY_CODE.get(code, MCPError)


class ToolError(ICCMNetworkError):
    """Raised by a tool to report a failure to its caller.

    The caller receives a ``tools/call`` result with ``isError: true`` whose
    text is ``message``; the client raises it again on its side.

    Args:
        message: What went wrong, readable by a person or a model.
        data: Optional JSON-able detail.
    """

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class MCPConnectionError(ICCMNetworkError, ConnectionError):
    """The client could not reach a server, or lost it mid-call.

    Args:
        message: Which step failed and what to check.
        step: The failing step: ``"dns"``, ``"tcp"``, ``"timeout"``,
            ``"handshake"``, ``"protocol"`` or ``"closed"``.
    """

    def __init__(self, message: str, *, step: str = "closed") -> None:
        super().__init__(message)
        self.message = message
        self.step = step


class ToolDefinitionError(TypeError):
    """A tool cannot be registered: bad annotation, name or schema."""
