"""JSON-RPC 2.0 on the wire: text in and out, ids, and the two response shapes.

The server's protocol core reads and writes every frame through here:
``decode`` refuses what JSON cannot carry back (NaN, infinities), ``encode``
writes compact UTF-8 text, and results get the revision's ``resultType``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from iccm_network.errors import InvalidParams, MCPError
from iccm_network.protocol.versions import Features

__all__ = [
    "NO_ID",
    "RequestId",
    "decode",
    "decode_cursor",
    "encode",
    "encode_cursor",
    "error_message",
    "finish_result",
    "id_key",
    "list_page",
    "notification_message",
    "result_message",
    "valid_id",
]

RequestId = str | int | float | None
"""What a JSON-RPC ``id`` may be."""

_ascii_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_utf8_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: Python reads infinity, JSON has none to send back
        raise ValueError(f"{text} is out of range")
    return value


_decode = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode
NO_ID: Final = object()
"""Marks a message whose ``id`` could not be read."""


def decode(text: str | bytes) -> Any:
    """Read one incoming message or batch, as the protocol reads frames.

    Args:
        text: JSON text (bytes are read as UTF-8).

    Raises:
        ValueError: The text is not JSON (or holds a NaN, an infinity).
    """
    try:
        return _decode(text if isinstance(text, str) else text.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def encode(message: Any) -> str:
    """Serialize one outgoing message as compact JSON text.

    Text that could not be sent as UTF-8 (a lone surrogate echoed back from
    a client's ``\\ud800`` escape) falls back to ASCII escapes.

    Args:
        message: A JSON-able message or batch.
    """
    text = _utf8_encode(message)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _ascii_encode(message)
    return text


def id_key(request_id: Any) -> tuple[type, Any]:
    """A dict key for an id that keeps ``"1"``, ``1`` and ``True`` apart.

    Args:
        request_id: An id.
    """
    # "1" and 1 are different ids; so are 1 and True in JSON.
    return (type(request_id), request_id)


def valid_id(value: Any) -> bool:
    """True for what JSON-RPC allows as an ``id`` (a string, a number or null).

    Args:
        value: The ``id`` as received.
    """
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def result_message(request_id: RequestId, result: Any) -> dict[str, Any]:
    """A JSON-RPC response carrying ``result``.

    Args:
        request_id: The request's id.
        result: The result.
    """
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(request_id: RequestId, error: MCPError) -> dict[str, Any]:
    """A JSON-RPC error response for ``error``.

    Args:
        request_id: The request's id (``None`` when it could not be read).
        error: The error, with its code.
    """
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_error()}


def notification_message(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC notification (no ``id``, so no reply).

    Args:
        method: The method, such as ``notifications/progress``.
        params: Its params, if it has any.
    """
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def finish_result(result: dict[str, Any], feats: Features) -> dict[str, Any]:
    """Mark ``result`` complete where the revision has ``resultType`` (2026-07-28).

    Args:
        result: A result object.
        feats: The revision it is sent under.
    """
    if feats.result_type:
        result["resultType"] = "complete"
    return result


def encode_cursor(position: int) -> str:
    """The opaque ``nextCursor`` for a listing's next page.

    Args:
        position: Where the next page starts.
    """
    return base64.urlsafe_b64encode(str(position).encode()).decode()


def decode_cursor(cursor: Any, count: int) -> int:
    """Where a listing's page starts, from a ``cursor`` this server sent.

    Args:
        cursor: The cursor as received.
        count: How many entries the listing has.

    Raises:
        InvalidParams: The cursor is not one this server sent.
    """
    try:
        position = int(base64.urlsafe_b64decode(str(cursor).encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        position = -1
    if not 0 <= position <= count:
        raise InvalidParams("Invalid params: unknown cursor")
    return position


def list_page(
    key: str,
    items: list[dict[str, Any]],
    params: Mapping[str, Any],
    feats: Features,
    *,
    page_size: int | None,
    ttl_ms: int,
) -> dict[str, Any]:
    """One page of a listing (``tools/list``, ``resources/list``, ``prompts/list``...).

    Args:
        key: The result's list key (``tools``, ``resources``, ...).
        items: The whole listing.
        params: The request's params (``cursor``).
        feats: The revision it is served under (2026-07-28 adds cache hints).
        page_size: Entries per page; ``None`` sends one page.
        ttl_ms: How long 2026-07-28 clients may cache the listing.
    """
    start = 0
    cursor = params.get("cursor")
    if cursor is not None:
        start = decode_cursor(cursor, len(items))
    end = len(items) if page_size is None else min(start + page_size, len(items))
    result: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        result["nextCursor"] = encode_cursor(end)
    if feats.modern:
        result["ttlMs"] = ttl_ms
        result["cacheScope"] = "public"
    return finish_result(result, feats)
