"""Typed arguments that arrive as strings: prompt arguments and URI template variables (pure).

MCP sends prompt arguments and template variables as strings. The function
behind them declares real types, so each string is read by the type's JSON
Schema, then validated and converted by the same compiled machinery as tool
arguments (``Tool.prepare``):

* a parameter whose schema is a string (``str``, a ``Literal`` or ``Enum`` of
  strings, ``date``, ``UUID``...) takes the text as it is;
* any other type reads the text as JSON, so ``"3"`` is the integer 3,
  ``"true"`` a bool and ``"[1, 2]"`` a list; text that is not JSON stays a
  string, which the schema then refuses.

Whatever fails is an ``InvalidParams`` (-32602) naming the argument.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from iccm_network.errors import InvalidParams
from iccm_network.tools.routes import Tool

__all__ = ["is_text_schema", "prepare_text_arguments", "read_text"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_json_loads = json.JSONDecoder(parse_constant=_reject_constant).decode


def is_text_schema(schema: Mapping[str, Any]) -> bool:
    """Whether every value ``schema`` accepts is a string.

    Args:
        schema: A parameter's JSON Schema.
    """
    if schema.get("type") == "string":
        return True
    if "const" in schema:
        return isinstance(schema["const"], str)
    values = schema.get("enum")
    if isinstance(values, list) and values:
        return all(isinstance(value, str) for value in values)
    arms = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(arms, list) and arms:
        return all(isinstance(arm, Mapping) and is_text_schema(arm) for arm in arms)
    return False


def read_text(text: str, schema: Mapping[str, Any]) -> Any:
    """The value one string argument stands for under its parameter's schema.

    Args:
        text: The argument as sent.
        schema: The parameter's JSON Schema.
    """
    if is_text_schema(schema):
        return text
    try:
        return _json_loads(text)
    except (ValueError, RecursionError):
        return text  # the schema names what it wanted instead


def prepare_text_arguments(tool: Tool, arguments: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Read, validate and convert string arguments for ``tool``'s function.

    Args:
        tool: The compiled function behind a prompt or resource template.
        arguments: Argument names to their string values.
        owner: How errors name the prompt or template (``prompt 'review'``).

    Raises:
        InvalidParams: An argument is not a string, is unknown, missing, or
            its value does not fit the declared type; the message names it.
    """
    properties: Mapping[str, Any] = tool.input_schema.get("properties", {})
    values: dict[str, Any] = {}
    for name, text in arguments.items():
        if not isinstance(text, str):
            raise InvalidParams(
                f"Invalid params: argument {name!r} of {owner} must be a string",
                data={"errors": [{"path": f"/{name}", "message": "must be a string"}]},
            )
        schema = properties.get(name)
        values[name] = text if schema is None else read_text(text, schema)
    try:
        return tool.prepare(values)
    except InvalidParams as exc:
        problems = exc.data["errors"] if isinstance(exc.data, dict) else []
        listing = "; ".join(
            f"argument {p['path'].lstrip('/') or '(all)'}: {p['message']}" for p in problems
        )
        raise InvalidParams(f"Invalid arguments for {owner}: {listing}", data=exc.data) from None
