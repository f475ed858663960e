"""Completion of prompt arguments and template variables (pure).

``completion/complete`` asks for values of one argument that start with
what the user typed so far. An argument whose type is a ``Literal`` or an
``Enum`` completes by itself (prefix match over its values); for any other,
``@app.complete(target, argument)`` registers a hook that receives the
partial value (and, when it declares a ``context`` parameter, the other
arguments already given as ``dict[str, str]``) and returns a list of strings.
At most ``MAX_VALUES`` are sent, with ``total`` and ``hasMore``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from iccm_network.errors import ToolDefinitionError
from iccm_network.tools.routes import Tool, is_coroutine_callable
from iccm_network.tools.validation import ArgumentValidator

__all__ = [
    "MAX_VALUES",
    "CompletionHook",
    "choices",
    "compile_hook",
    "completion_result",
    "hook_values",
]

MAX_VALUES: Final = 100
"""The most values one ``completion/complete`` result may carry (MCP's limit)."""

_ANY_OBJECT: Final = {"type": "object"}


@dataclass(frozen=True, slots=True)
class CompletionHook:
    """A function that completes one argument of a prompt or resource template.

    Args:
        target: The prompt name or the resource template URI.
        argument: The argument or template variable it completes.
        tool: The function, compiled to run as calls run.
        value_parameter: The parameter that receives the partial value.
        context_parameter: The parameter that receives the other arguments, if any.
    """

    target: str
    argument: str
    tool: Tool
    value_parameter: str
    context_parameter: str | None

    def arguments(self, value: str, context: Mapping[str, str]) -> dict[str, Any]:
        """Keyword arguments for one call of the hook.

        Args:
            value: The partial value.
            context: The other arguments already given.
        """
        kwargs: dict[str, Any] = {self.value_parameter: value}
        if self.context_parameter is not None:
            kwargs[self.context_parameter] = dict(context)
        return kwargs


def compile_hook(fn: Callable[..., Any], target: str, argument: str) -> CompletionHook:
    """Check a completion hook's signature and compile it.

    Args:
        fn: The hook, sync or async: ``fn(value)`` or ``fn(value, context)``.
        target: The prompt name or resource template URI.
        argument: The argument it completes.

    Raises:
        ToolDefinitionError: The hook takes no parameter for the value.
    """
    qualname = getattr(fn, "__qualname__", repr(fn))
    if not callable(fn):
        raise ToolDefinitionError(f"a completion hook must be callable, got {fn!r}")
    parameters = list(inspect.signature(fn).parameters.values())
    named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not named or named[0].name == "context":
        raise ToolDefinitionError(
            f"completion hook {qualname} for {target!r} {argument!r}: "
            "its first parameter receives the partial value"
        )
    context = "context" if any(p.name == "context" for p in named[1:]) else None
    tool = Tool(
        name=getattr(fn, "__name__", "complete") or "complete",
        fn=fn,
        description="",
        input_schema=_ANY_OBJECT,
        is_async=is_coroutine_callable(fn),
        validator=ArgumentValidator(_ANY_OBJECT),
    )
    return CompletionHook(target, argument, tool, named[0].name, context)


def choices(schema: Mapping[str, Any]) -> list[str] | None:
    """The values a ``Literal`` or ``Enum`` parameter allows, as strings, or ``None``.

    Args:
        schema: The parameter's JSON Schema.
    """
    if "const" in schema:
        return [_text(schema["const"])]
    values = schema.get("enum")
    if isinstance(values, list):
        return [_text(value) for value in values]
    arms = schema.get("anyOf")
    if isinstance(arms, list):
        found: list[str] = []
        for arm in arms:
            if isinstance(arm, Mapping):
                found.extend(choices(arm) or [])
        return found or None
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hook_values(value: Any) -> list[str]:
    """Check what a hook returned: a list (or other iterable) of strings.

    Args:
        value: The hook's return value.

    Raises:
        TypeError: It is not an iterable of strings.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"a completion hook returns a list of str, not {type(value).__name__}")
    values = list(value)
    for item in values:
        if not isinstance(item, str):
            raise TypeError(f"a completion hook returned a {type(item).__name__}, not a str")
    return values


def completion_result(values: list[str]) -> dict[str, Any]:
    """A ``completion/complete`` result for every matching value.

    Args:
        values: All the values that match, best first.
    """
    return {
        "completion": {
            "values": values[:MAX_VALUES],
            "total": len(values),
            "hasMore": len(values) > MAX_VALUES,
        }
    }
