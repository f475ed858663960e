"""Prompts: functions that return messages for a model (pure).

``compile_prompt`` turns a function into a ``Prompt``: its parameters are
the prompt's arguments (typed, read from strings as
``iccm_network.catalog.text_arguments`` describes, described by the docstring). The
function returns a ``str``, one ``Message`` or a list of them (a ``str`` in
the list is a user message).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from iccm_network.content import Audio, File, Image
from iccm_network.content import content_block as rich_content_block
from iccm_network.errors import ToolDefinitionError
from iccm_network.protocol.versions import Features
from iccm_network.tools.routes import Tool, compile_tool

__all__ = ["Message", "Prompt", "compile_prompt", "content_block", "prompt_messages"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a prompt.

    Args:
        content: The text, or a rich content value (``Image``, ``Audio``, ``File``).
        role: ``"user"`` or ``"assistant"``.
    """

    content: Any
    role: Literal["user", "assistant"] = "user"

    def __post_init__(self) -> None:
        if self.role not in ("user", "assistant"):
            raise ValueError(f'a message role is "user" or "assistant", not {self.role!r}')


def _rich_block(content: Any) -> dict[str, Any] | None:
    """The content block of an ``Image``, ``Audio`` or ``File``; ``None`` for anything else."""
    if isinstance(content, (Image, Audio, File)):
        return rich_content_block(content)
    return None


def content_block(content: Any) -> dict[str, Any]:
    """The MCP content block for a message's content.

    Args:
        content: A ``str`` or a rich content value.

    Raises:
        TypeError: The content has no content block.
    """
    if isinstance(content, str):
        return {"type": "text", "text": content}
    block = _rich_block(content)
    if block is None:
        raise TypeError(
            "a prompt message's content is a str, Image, Audio or File, "
            f"not {type(content).__name__}"
        )
    return block


@dataclass(frozen=True, slots=True)
class Prompt:
    """One registered prompt, compiled.

    Args:
        name: The prompt's name.
        tool: The compiled function (validation, conversion, how it runs).
        title: A human-readable title.
        description: What the prompt is for.
    """

    name: str
    tool: Tool
    title: str | None = None
    description: str | None = None

    def definition(self, features: Features) -> dict[str, Any]:
        """The entry in ``prompts/list``.

        Args:
            features: What the revision supports (titles from 2025-06-18).
        """
        entry: dict[str, Any] = {"name": self.name}
        if self.title is not None and features.title:
            entry["title"] = self.title
        if self.description:
            entry["description"] = self.description
        schema: Mapping[str, Any] = self.tool.input_schema
        required = set(schema.get("required", ()))
        arguments = []
        for argument, property_schema in schema.get("properties", {}).items():
            item: dict[str, Any] = {"name": argument}
            if property_schema.get("description"):
                item["description"] = property_schema["description"]
            item["required"] = argument in required
            arguments.append(item)
        entry["arguments"] = arguments
        return entry


def compile_prompt(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
) -> Prompt:
    """Compile a prompt function; every mistake raises here.

    Args:
        fn: The function, sync or async.
        name: The prompt name; defaults to the function's name (tool-name rules).
        title: A human-readable title.
        description: Defaults to the docstring's description.

    Raises:
        ToolDefinitionError: The name is invalid or a parameter's annotation
            has no JSON Schema.
    """
    try:
        tool = compile_tool(fn, name=name, describe_result=False)
    except ToolDefinitionError as exc:
        raise ToolDefinitionError(str(exc).replace("tool", "prompt", 1)) from None
    return Prompt(
        name=tool.name,
        tool=tool,
        title=title,
        description=description if description is not None else (tool.description or None),
    )


def prompt_messages(value: Any) -> list[dict[str, Any]]:
    """The ``messages`` of a ``prompts/get`` result for what a prompt returned.

    Args:
        value: A ``str``, a ``Message``, or a list of them.

    Raises:
        TypeError: ``value`` is none of those.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    messages = []
    for item in items:
        message = Message(item) if isinstance(item, str) else item
        if not isinstance(message, Message):
            raise TypeError(
                f"a prompt returns a str, a Message or a list of them, not {type(item).__name__}"
            )
        messages.append({"role": message.role, "content": content_block(message.content)})
    return messages
