"""Resources: fixed URIs and URI templates backed by functions (pure).

``compile_resource`` turns a function and a URI (``config://app``) or a URI
template (``file://{path}``) into a ``Resource``. A template's variables
become the function's typed, validated parameters, read from strings as
``iccm_network.catalog.text_arguments`` describes. Every mistake (a bad template,
parameters that do not match its variables, an annotation that has no
string form) raises ``ToolDefinitionError`` at registration, naming the
function.

What the function returns becomes the ``resources/read`` contents:

* ``str``: ``text`` (MIME type ``text/plain`` unless one is given);
* ``bytes``: base64 ``blob`` (``application/octet-stream`` unless given);
* anything else JSON-able: compact JSON ``text`` (``application/json``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from iccm_network.catalog.text_arguments import is_text_schema
from iccm_network.catalog.uri_templates import UriTemplate, UriTemplateError
from iccm_network.errors import ToolDefinitionError
from iccm_network.protocol.versions import Features
from iccm_network.tools.convert import to_jsonable
from iccm_network.tools.routes import Tool, compile_tool

__all__ = ["Resource", "compile_resource", "resource_contents"]

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean"})
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class Resource:
    """One registered resource or resource template, compiled.

    Args:
        uri: The fixed URI, or the template text for a template.
        name: The name shown in listings.
        tool: The compiled function (validation, conversion, how it runs).
        title: A human-readable title.
        description: What the resource holds.
        mime_type: The MIME type of its contents, or ``None`` to infer it
            from what the function returns.
        template: The parsed template, or ``None`` for a fixed URI.
    """

    uri: str
    name: str
    tool: Tool
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    template: UriTemplate | None = None

    def definition(self, features: Features) -> dict[str, Any]:
        """The entry in ``resources/list`` or ``resources/templates/list``.

        Args:
            features: What the revision supports (titles from 2025-06-18).
        """
        entry: dict[str, Any] = (
            {"uri": self.uri} if self.template is None else {"uriTemplate": self.uri}
        )
        entry["name"] = self.name
        if self.title is not None and features.title:
            entry["title"] = self.title
        if self.description:
            entry["description"] = self.description
        if self.mime_type is not None:
            entry["mimeType"] = self.mime_type
        return entry


def compile_resource(
    fn: Callable[..., Any],
    uri: str,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    mime_type: str | None = None,
) -> Resource:
    """Compile a function that reads a resource; every mistake raises here.

    Args:
        fn: The function, sync or async; its parameters are the template's
            variables (and optionally a ``Context``).
        uri: A fixed URI (``config://app``) or a URI template (``file://{path}``).
        name: The name in listings; defaults to the function's name.
        title: A human-readable title.
        description: Defaults to the docstring's description.
        mime_type: The MIME type of what it returns.

    Raises:
        ToolDefinitionError: The URI or template is invalid, or the
            function's parameters do not match the template's variables.
    """
    if not callable(fn):
        raise ToolDefinitionError(f"a resource must be callable, got {fn!r}")
    qualname = getattr(fn, "__qualname__", repr(fn))
    owner = f"resource {uri!r} ({qualname})"
    if not isinstance(uri, str) or not _SCHEME.match(uri):
        raise ToolDefinitionError(f"{owner}: a resource URI needs a scheme, like config://app")
    template: UriTemplate | None = None
    if "{" in uri or "}" in uri:
        try:
            template = UriTemplate.parse(uri)
        except UriTemplateError as exc:
            raise ToolDefinitionError(f"{owner}: {exc}") from None
    tool_name = getattr(fn, "__name__", None)
    if not isinstance(tool_name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,128}", tool_name):
        tool_name = "resource"
    try:
        tool = compile_tool(fn, name=tool_name, describe_result=False)
    except ToolDefinitionError as exc:
        raise ToolDefinitionError(f"{owner}: {exc}") from None
    _check_parameters(owner, tool, template)
    return Resource(
        uri=uri,
        name=name if name is not None else tool_name,
        tool=tool,
        title=title,
        description=description if description is not None else (tool.description or None),
        mime_type=mime_type,
        template=template,
    )


def _check_parameters(owner: str, tool: Tool, template: UriTemplate | None) -> None:
    properties: Mapping[str, Any] = tool.input_schema.get("properties", {})
    variables = set(template.variables) if template is not None else set()
    parameters = set(properties)
    if parameters != variables:
        missing = sorted(variables - parameters)
        extra = sorted(parameters - variables)
        problems = []
        if missing:
            problems.append(f"no parameter for template variable(s) {missing}")
        if extra:
            problems.append(f"parameter(s) {extra} are not variables of the URI")
        raise ToolDefinitionError(f"{owner}: " + "; ".join(problems))
    for parameter, schema in properties.items():
        if not (is_text_schema(schema) or schema.get("type") in _SCALAR_TYPES or "enum" in schema):
            raise ToolDefinitionError(
                f"{owner}: parameter {parameter!r} must be a str, int, float, bool, Literal or "
                "Enum: a URI variable is one string"
            )


def resource_contents(resource: Resource, uri: str, value: Any) -> dict[str, Any]:
    """One ``contents`` entry of a ``resources/read`` result.

    Args:
        resource: The resource that was read.
        uri: The URI that was read.
        value: What the function returned.

    Raises:
        TypeError: ``value`` cannot be represented as JSON.
        ValueError: ``value`` holds a NaN or infinity, or itself.
    """
    entry: dict[str, Any] = {"uri": uri}
    if isinstance(value, (bytes, bytearray, memoryview)):
        entry["mimeType"] = resource.mime_type or "application/octet-stream"
        entry["blob"] = base64.b64encode(bytes(value)).decode("ascii")
    elif isinstance(value, str):
        entry["mimeType"] = resource.mime_type or "text/plain"
        entry["text"] = value
    else:
        entry["mimeType"] = resource.mime_type or "application/json"
        entry["text"] = _compact(to_jsonable(value))
    return entry
