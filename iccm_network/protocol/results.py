"""Turn how a call ended (an ``Outcome``) into a ``tools/call`` result (pure)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Final

from iccm_network.content import content_blocks, is_content_result
from iccm_network.errors import ToolError
from iccm_network.protocol.outcomes import Outcome, Raised, Returned, ShutDown, TimedOut
from iccm_network.protocol.versions import Features
from iccm_network.tools.convert import to_jsonable
from iccm_network.tools.routes import Tool

__all__ = [
    "ERROR_DATA_META_KEY",
    "correlation_id",
    "error_result",
    "outcome_result",
    "success_result",
]

logger = logging.getLogger("iccm_network.results")

ERROR_DATA_META_KEY: Final = "iccm-network/errorData"
"""Where a ``ToolError``'s ``data`` travels: the result's ``_meta``."""

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def correlation_id() -> str:
    """A short random id that ties a reply to a server-side log line."""
    return uuid.uuid4().hex[:12]


def _finish(result: dict[str, Any], features: Features) -> dict[str, Any]:
    if features.result_type:
        result["resultType"] = "complete"
    return result


def _json_text(value: Any) -> str:
    try:
        return _compact(value)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("Circular reference"):
            raise ValueError("the value refers to itself") from None
        data = to_jsonable(value)
        return data if isinstance(data, str) else _compact(data)


def success_result(tool: Tool, value: Any, features: Features) -> dict[str, Any]:
    """The result for a tool that returned ``value``.

    A string is the text itself; rich content (``Image``, ``File``... or a
    list holding some) is its content blocks; anything else is compact JSON
    text, and also ``structuredContent`` where the revision has it.

    Args:
        tool: The tool that ran.
        value: What it returned.
        features: What the revision supports.

    Raises:
        TypeError: ``value`` cannot be represented as JSON.
        ValueError: ``value`` holds a NaN or infinity, an integer too long
            to write out, or itself.
    """
    if isinstance(value, str) and tool.output_schema is None:
        return _finish({"content": [{"type": "text", "text": value}], "isError": False}, features)
    if tool.returns_content or is_content_result(value):
        # Rich content has no structured form: its blocks are the result.
        blocks = content_blocks(value, features, _json_text)
        return _finish({"content": blocks, "isError": False}, features)
    if isinstance(value, str):
        data: Any = value
        text = value
    else:
        try:
            # Most results are plain JSON already; only when the encoder
            # refuses one is it worth walking the value to convert it.
            text = _compact(value)
            data = value
        except (TypeError, ValueError) as exc:
            if str(exc).startswith("Circular reference"):
                # The encoder found a container that holds itself; converting
                # it would only recurse until the stack runs out.
                raise ValueError("the value refers to itself") from None
            data = to_jsonable(value)
            text = data if isinstance(data, str) else _compact(data)
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    if features.structured_content:
        wrap = tool.wraps_result if tool.output_schema is not None else not isinstance(data, dict)
        result["structuredContent"] = {"result": data} if wrap else data
    return _finish(result, features)


def error_result(message: str, features: Features, *, data: Any = None) -> dict[str, Any]:
    """A result with ``isError: true`` that a model can read.

    Args:
        message: The text shown to the caller.
        features: What the revision supports.
        data: Optional JSON-able detail, carried in ``_meta``.
    """
    result: dict[str, Any] = {"content": [{"type": "text", "text": message}], "isError": True}
    if data is not None:
        result["_meta"] = {ERROR_DATA_META_KEY: to_jsonable(data)}
    return _finish(result, features)


def outcome_result(tool: Tool, outcome: Outcome, features: Features) -> dict[str, Any]:
    """The result for a call that ended with ``outcome`` (anything but ``Cancelled``).

    Unexpected exceptions are logged with a correlation id; the caller sees
    only the id, never the exception text. This never raises: every call
    gets a reply.

    Args:
        tool: The tool that ran.
        outcome: How the call ended.
        features: What the revision supports.
    """
    # A returned value is by far the most common outcome: tested first.
    if isinstance(outcome, Returned):
        pass
    elif isinstance(outcome, Raised):
        if not isinstance(outcome.exception, ToolError):
            return _failed(tool, outcome.exception, features)
    elif isinstance(outcome, TimedOut):
        return error_result(f"Tool {tool.name!r} {outcome.message}", features)
    elif isinstance(outcome, ShutDown):
        return error_result(outcome.message, features)
    else:
        raise ValueError(f"{outcome!r} gets no reply")
    try:
        if isinstance(outcome, Returned):
            return success_result(tool, outcome.value, features)
        error = outcome.exception
        assert isinstance(error, ToolError)
        return error_result(error.message, features, data=error.data)
    except (TypeError, ValueError, RecursionError) as exc:
        # The tool's own bug or a value a client provoked (a 5,000-digit
        # integer, a list that holds itself): one line, no traceback to
        # flood the log.
        problem = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
        incident = correlation_id()
        logger.warning(
            "tool %r gave a result that cannot be sent as JSON: %s [correlation id %s]",
            tool.name,
            problem,
            incident,
        )
        return _internal_error(tool, incident, features)
    except Exception as exc:  # a value whose own methods fail while it is shaped
        return _failed(tool, exc, features)


def _failed(tool: Tool, exc: BaseException, features: Features) -> dict[str, Any]:
    incident = correlation_id()
    logger.error(
        "tool %r failed [correlation id %s]",
        tool.name,
        incident,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"tool": tool.name, "trace_id": incident},
    )
    return _internal_error(tool, incident, features)


def _internal_error(tool: Tool, incident: str, features: Features) -> dict[str, Any]:
    return error_result(
        f"Tool {tool.name!r} failed with an internal error (correlation id {incident})",
        features,
        data={"correlationId": incident},
    )
