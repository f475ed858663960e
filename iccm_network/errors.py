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

    A diagnosis keeps its parts apart: ``problem`` (what went wrong) and
    ``check`` (what to look at) in plain words, ``step`` (which step of
    connecting failed) and ``reason`` (a stable name for machines, see
    ``docs/troubleshooting.md``). ``message`` (and ``str()``) reads
    ``problem``, then ``Check: check`` on a line of its own.

    Args:
        message: The whole text; made of ``problem`` and ``check`` when omitted.
        step: The failing step: ``"dns"``, ``"tcp"``, ``"timeout"``,
            ``"handshake"``, ``"protocol"`` or ``"closed"``.
        reason: A stable name for the failure, such as ``"connection-refused"``;
            the step's own by default.
        problem: What went wrong; ``message`` by default.
        check: What to check, if anything.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        step: str = "closed",
        reason: str | None = None,
        problem: str | None = None,
        check: str | None = None,
    ) -> None:
        if problem is None:
            problem = message or ""
        if message is None:
            message = f"{problem}\nCheck: {check}" if check else problem
        super().__init__(message)
        self.message = message
        self.step = step
        self.reason = reason if reason is not None else _STEP_REASONS.get(step, step)
        self.problem = problem
        self.check = check

    @classmethod
    def diagnosed(cls, step: str, reason: str, problem: str, check: str) -> MCPConnectionError:
        """A diagnosis: what went wrong and what to check, at which step.

        Args:
            step: The step that failed, such as ``"tcp"``.
            reason: A stable name for the failure, such as ``"connection-refused"``.
            problem: What went wrong, in plain words.
            check: What to check, in plain words.
        """
        return cls(step=step, reason=reason, problem=problem, check=check)

    def fresh(self) -> MCPConnectionError:
        """A copy with its own traceback (one per waiter), the same cause."""
        copy = MCPConnectionError(
            self.message, step=self.step, reason=self.reason, problem=self.problem, check=self.check
        )
        copy.__cause__ = self.__cause__
        return copy


_STEP_REASONS: dict[str, str] = {
    "dns": "name-not-resolved",
    "tcp": "unreachable",
    "timeout": "timeout",
    "handshake": "not-http",
    "protocol": "not-mcp",
    "closed": "closed",
}


class ToolDefinitionError(TypeError):
    """A tool cannot be registered: bad annotation, name or schema."""
