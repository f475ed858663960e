"""Turning replies into values: the result shaping rule and the typed errors.

``decode_result`` is SPEC 8's rule for a ``tools/call`` result:
``structuredContent``, else the text parsed as JSON, else the text; a failed
tool (``isError``) raises ``ToolError``. ``error_from`` turns a JSON-RPC
``error`` member into the ``MCPError`` subclass for its code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from iccm_network.content import content_value
from iccm_network.errors import MCPError, ToolError, error_class_for_code

__all__ = ["ERROR_DATA_META_KEY", "decode_result", "error_from"]

ERROR_DATA_META_KEY: Final = "iccm-network/errorData"
"""Where an iccm-network server puts a ``ToolError``'s ``data`` (the result's ``_meta``).

Repeated from ``iccm_network.protocol.results`` so that the client imports no server module.
"""


def error_from(error: Any) -> MCPError:
    """The ``MCPError`` (a subclass per code) for a JSON-RPC ``error`` member.

    Args:
        error: The ``error`` member of a reply.
    """
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return MCPError(f"malformed JSON-RPC error: {error!r}")
    code = error["code"]
    message = str(error.get("message", ""))
    return error_class_for_code(code)(message, data=error.get("data"), code=code)


def _text_of(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        item["text"]
        for item in content
        if isinstance(item, dict)
        and item.get("type") == "text"
        and isinstance(item.get("text"), str)
    ]


def _carries(text: str, value: Any) -> bool:
    if text == value:
        return True
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def decode_result(result: Mapping[str, Any]) -> Any:
    """The value of a ``tools/call`` result, or ``ToolError`` for ``isError``.

    ``structuredContent`` when present, else the text parsed as JSON when it
    is JSON, else the text. A lone text item is decoded; other content comes
    back as typed objects: one non-text block as its ``Image``, ``Audio``,
    ``File`` (embedded resource) or ``ResourceLink``, several blocks as a
    list of those and ``str`` (text blocks, not parsed); a block of an unknown
    type stays a dict.

    ``structuredContent`` of the form ``{"result": value}`` is unwrapped when
    the text content carries ``value`` itself: that is how a server (iccm-network
    among them) wraps a non-object return value to match its ``outputSchema``,
    and unwrapping gives the same value whichever protocol revision was
    negotiated. A tool that really returns ``{"result": ...}`` has that object
    as its text, so it is returned whole.

    Args:
        result: A ``tools/call`` result.

    Raises:
        ToolError: ``isError`` is true; its message is the text and its
            ``data`` the ``_meta["iccm-network/errorData"]`` the server sent.
    """
    texts = _text_of(result.get("content"))
    if result.get("isError"):
        meta = result.get("_meta")
        data = meta.get(ERROR_DATA_META_KEY) if isinstance(meta, dict) else None
        raise ToolError("\n".join(texts) or "the tool failed without a message", data=data)
    if "structuredContent" in result:
        structured = result["structuredContent"]
        if (
            isinstance(structured, dict)
            and structured.keys() == {"result"}
            and len(texts) == 1
            and _carries(texts[0], structured["result"])
            and not _carries(texts[0], structured)
        ):
            return structured["result"]
        return structured
    content = result.get("content")
    if isinstance(content, list) and len(content) == 1 and len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    if not content:
        return None
    if not isinstance(content, list):
        return content
    values = [content_value(block) if isinstance(block, dict) else block for block in content]
    return values[0] if len(values) == 1 else values
