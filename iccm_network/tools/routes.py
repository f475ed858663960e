"""Compiled tools and the route table the protocol dispatches on.

Everything expensive happens once, in ``compile_tool``: schema generation,
schema checking, validator compilation and the argument converter. A call then
costs one validation and, only where the signature needs it, one conversion.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from iccm_network.context import Context
from iccm_network.errors import InvalidParams, ToolDefinitionError
from iccm_network.protocol.versions import Features
from iccm_network.tools.convert import ConversionError, build_converter
from iccm_network.tools.schema import function_schema
from iccm_network.tools.validation import ArgumentValidator, check_schema

__all__ = ["RouteTable", "Tool", "compile_tool", "humanised", "is_coroutine_callable"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_ANNOTATION_HINTS: Final = frozenset(
    {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
)

ArgumentConverter = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One registered tool, compiled: what the protocol needs to call it.

    Args:
        name: The tool's MCP name.
        fn: The function, called with keyword arguments.
        description: The description published in ``tools/list``.
        input_schema: The published ``inputSchema``.
        output_schema: The published ``outputSchema``, or ``None``.
        wraps_result: ``structuredContent`` is ``{"result": value}``.
        title: A human-readable title, or ``None``.
        annotations: MCP tool annotations, or ``None``.
        timeout: Seconds the call may run, or ``None`` for the server default.
        is_async: ``fn`` is a coroutine function (else it runs in a thread).
        context_parameter: The parameter that receives the ``Context``.
        validator: The compiled ``inputSchema`` validator.
        converter: Turns validated JSON into Python arguments, when needed.
        returns_content: Results are content blocks (``Image``, ``File``...).
    """

    name: str
    fn: Callable[..., Any]
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None = None
    wraps_result: bool = False
    title: str | None = None
    annotations: Mapping[str, Any] | None = None
    timeout: float | None = None
    is_async: bool = False
    context_parameter: str | None = None
    validator: ArgumentValidator = field(repr=False, compare=False, kw_only=True)
    converter: ArgumentConverter | None = field(default=None, repr=False, compare=False)
    returns_content: bool = False

    def prepare(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate JSON arguments and convert them to the function's types.

        Args:
            arguments: The ``arguments`` of a ``tools/call`` request.

        Raises:
            InvalidParams: The arguments break the schema; ``data`` lists
                each failing JSON Pointer path and message.
        """
        if not self.validator.is_valid(arguments):
            problems = self.validator.problems(arguments)
            if problems:  # else only the fast path objected (formats, `$` in patterns)
                raise InvalidParams(
                    f"Invalid arguments for tool {self.name!r}", data={"errors": problems}
                )
        if self.converter is None:
            # Freshly parsed JSON that nothing else holds: no copy needed.
            return arguments
        try:
            return self.converter(arguments)
        except ConversionError as exc:
            # The schema cannot say everything (a leap second Python's
            # datetime lacks, say); a value the declared type refuses is
            # still the caller's, reported at its parameter's path.
            raise InvalidParams(
                f"Invalid arguments for tool {self.name!r}", data={"errors": exc.problems}
            ) from None

    def definition(self, features: Features) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it under one protocol revision.

        Args:
            features: What the negotiated revision supports.
        """
        tool: dict[str, Any] = {"name": self.name}
        if self.title is not None and features.title:
            tool["title"] = self.title
        tool["description"] = self.description
        tool["inputSchema"] = self.input_schema
        if self.output_schema is not None and features.structured_content:
            tool["outputSchema"] = self.output_schema
        if self.annotations and features.annotations:
            tool["annotations"] = self.annotations
        return tool


def is_coroutine_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine: functions, partials, callable objects.

    Args:
        fn: Any callable.
    """
    # A callable object's coroutine-ness lives on its __call__ method.
    call = fn if inspect.isroutine(fn) or isinstance(fn, functools.partial) else type(fn).__call__
    return inspect.iscoroutinefunction(call)


def _context_parameter(fn: Callable[..., Any]) -> str | None:
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.annotation is Context or parameter.annotation == "Context":
            return parameter.name
    return None


def _check_annotations(owner: str, annotations: Mapping[str, Any] | None) -> None:
    if annotations is None:
        return
    for key, value in annotations.items():
        if key not in _ANNOTATION_HINTS:
            raise ToolDefinitionError(
                f"{owner}: unknown tool annotation {key!r}; "
                f"expected one of {sorted(_ANNOTATION_HINTS)}"
            )
        if key != "title" and not isinstance(value, bool):
            raise ToolDefinitionError(f"{owner}: annotation {key!r} must be a bool")


def compile_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    input_schema: Mapping[str, Any] | None = None,
    title: str | None = None,
    annotations: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    describe_result: bool = True,
) -> Tool:
    """Compile a function into a ``Tool``; every mistake raises here.

    Args:
        fn: The tool function, sync or async.
        name: The tool name; defaults to the function's ``__name__``.
        description: Overrides the docstring's description.
        input_schema: A hand-written ``inputSchema`` used as is, with the
            arguments passed to ``fn`` unconverted.
        title: A human-readable title.
        annotations: MCP tool annotations such as ``readOnlyHint``.
        timeout: Seconds the call may run before it is cancelled.
        describe_result: Build an ``outputSchema`` from the return
            annotation (``False`` for resources and prompts, which return
            content, not structured results).

    Raises:
        ToolDefinitionError: The name, schema, annotations or timeout are
            invalid, or a parameter's annotation has no JSON Schema.
    """
    if not callable(fn):
        raise ToolDefinitionError(f"a tool must be callable, got {fn!r}")
    qualname = getattr(fn, "__qualname__", repr(fn))
    tool_name = name if name is not None else getattr(fn, "__name__", "")
    if not isinstance(tool_name, str) or not _NAME.fullmatch(tool_name):
        raise ToolDefinitionError(
            f"tool {qualname}: invalid name {tool_name!r}; MCP tool names are 1-128 "
            "characters of A-Z a-z 0-9 _ - ."
        )
    owner = f"tool {tool_name!r} ({qualname})"
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ToolDefinitionError(f"{owner}: timeout must be a positive number of seconds")
    _check_annotations(owner, annotations)

    output_schema: dict[str, Any] | None = None
    wraps_result = False
    converter: ArgumentConverter | None = None
    returns_content = False
    if input_schema is None:
        signature = function_schema(fn, describe_result=describe_result)
        schema: Mapping[str, Any] = signature.input_schema
        output_schema = signature.output_schema
        wraps_result = signature.wraps_result
        context_parameter = signature.context_parameter
        converter = build_converter(fn)
        doc_description = signature.description
        returns_content = signature.returns_content
    else:
        schema = dict(input_schema)
        context_parameter = _context_parameter(fn)
        doc_description = inspect.getdoc(fn) or ""
        if schema.get("type") != "object":
            raise ToolDefinitionError(f'{owner}: inputSchema must have "type": "object"')
        from jsonschema.exceptions import SchemaError

        try:
            # Generated schemas are valid by construction (the test suite and
            # check_app hold the generator to the metaschema); this one is not.
            check_schema(schema)
        except SchemaError as exc:
            raise ToolDefinitionError(f"{owner}: invalid inputSchema: {exc.message}") from None

    return Tool(
        name=tool_name,
        fn=fn,
        description=description or doc_description or humanised(tool_name),
        input_schema=schema,
        output_schema=output_schema,
        wraps_result=wraps_result,
        title=title,
        annotations=dict(annotations) if annotations else None,
        timeout=float(timeout) if timeout is not None else None,
        is_async=is_coroutine_callable(fn),
        context_parameter=context_parameter,
        validator=ArgumentValidator(schema),
        converter=converter,
        returns_content=returns_content,
    )


def humanised(name: str) -> str:
    """A tool name as words, the description of a tool that has none.

    Args:
        name: A tool name such as ``"get_weather"`` or ``"getWeather"``.
    """
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    words = re.sub(r"[_.\-]+", " ", words).strip()
    return (words[:1].upper() + words[1:].lower()) if words else name


class RouteTable(Mapping[str, Tool]):
    """The tools of one app by name; immutable (a server swaps in a new table when tools change).

    Tool definitions are built once per protocol revision and reused for
    every ``tools/list``.

    Args:
        tools: The compiled tools.
    """

    def __init__(self, tools: Mapping[str, Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = dict(tools or {})
        self._definitions: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    @property
    def lookup(self) -> Callable[[str], Tool | None]:
        """The tool of a name, or ``None``: a plain dict's ``get``, for hot paths."""
        return self._tools.get

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str, default: Any = None) -> Any:
        """The tool called ``name``, or ``default`` (a fast path for lookups).

        Args:
            name: The tool name.
            default: What to return when there is no such tool.
        """
        return self._tools.get(name, default)

    def definitions(self, features: Features) -> list[dict[str, Any]]:
        """Every tool's definition under one revision, in registration order.

        Args:
            features: What the revision supports.
        """
        cached = self._definitions.get(features.version)
        if cached is None:
            cached = [tool.definition(features) for tool in self._tools.values()]
            self._definitions[features.version] = cached
        return cached
