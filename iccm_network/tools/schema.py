"""Type hints and docstrings to JSON Schema (Draft 2020-12), without I/O.

``function_schema`` is called once, when a tool is registered: every problem
(an unsupported annotation, ``*args``, a parameter without annotation) is a
``ToolDefinitionError`` naming the function and the parameter, so that a bad
tool fails when its module is imported and never at call time.

Enum, TypedDict and dataclass types are inlined where they are used, which is
what LLM clients read most reliably; only a type that refers to itself goes
into ``$defs`` and is referenced with ``$ref``, so every schema stays
self-contained.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import enum
import functools
import inspect
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import typing_extensions

from iccm_network.content import content_annotation
from iccm_network.errors import ToolDefinitionError
from iccm_network.tools.convert import (
    DICT_ORIGINS,
    LIST_ORIGINS,
    NONE_TYPE,
    SET_ORIGINS,
    UNION_ORIGINS,
    record_fields,
    resolve_parameters,
    strip_annotated,
    to_jsonable,
)
from iccm_network.tools.docstrings import parse_docstring

__all__ = ["FunctionSchema", "function_schema", "type_schema"]

_PRIMITIVES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    None: {"type": "null"},
    NONE_TYPE: {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    NONE_TYPE: "null",
}
_AWAITABLE_ORIGINS = frozenset({typing.Awaitable, typing.Coroutine, cabc.Awaitable, cabc.Coroutine})


class _BlankEnum(enum.Enum):
    pass


_DEFAULT_ENUM_DOCS = {None, "", "An enumeration.", enum.Enum.__doc__, _BlankEnum.__doc__}


@dataclass(frozen=True, slots=True)
class FunctionSchema:
    """Everything registration needs to know about a tool function's signature.

    Args:
        input_schema: The ``inputSchema``: an object with one property per parameter.
        output_schema: The ``outputSchema``, or ``None`` when the tool returns
            text (``str``), nothing, or an undeclared type.
        wraps_result: True when the return value must be sent as
            ``{"result": value}`` because its type is not an object.
        description: The docstring's description, or ``""``.
        context_parameter: The name of the parameter annotated ``Context``, if any.
        parameters: The names of the parameters in ``input_schema``, in order.
        returns_content: The return annotation promises rich content
            (``Image``, ``Audio``, ``File``, ``ResourceLink``, or a list mixing them).
    """

    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    wraps_result: bool
    description: str
    context_parameter: str | None
    parameters: tuple[str, ...]
    returns_content: bool = False


class _Unsupported(Exception):
    """Raised inside the builder; turned into ``ToolDefinitionError`` with context."""


def type_schema(annotation: Any) -> dict[str, Any]:
    """The self-contained JSON Schema for one type annotation.

    Args:
        annotation: A type such as ``int``, ``list[str]`` or a dataclass.

    Raises:
        ToolDefinitionError: The annotation is not supported.
    """
    builder = _Builder()
    try:
        schema = builder.build(annotation)
    except _Unsupported as exc:
        raise ToolDefinitionError(f"{exc}; {_SUPPORTED}") from None
    return builder.finish(schema)


def function_schema(fn: Callable[..., Any], *, describe_result: bool = True) -> FunctionSchema:
    """Introspect a tool function's signature, type hints and docstring.

    Args:
        fn: A function, coroutine function, bound method, ``functools.partial``
            or callable object.
        describe_result: Build the ``outputSchema`` from the return
            annotation; resources and prompts have none to publish.

    Raises:
        ToolDefinitionError: A parameter is variadic, positional-only, lacks an
            annotation, or has an unsupported annotation.
    """
    params, hints, context, name = resolve_parameters(fn)
    doc = parse_docstring(_docstring_of(fn))
    builder = _Builder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        try:
            schema = builder.build(hints[param.name])
        except _Unsupported as exc:
            raise ToolDefinitionError(
                f"tool function {name!r} parameter {param.name!r}: {exc}; {_SUPPORTED}"
            ) from None
        description = _annotated_description(hints[param.name]) or doc.params.get(param.name)
        if description:
            schema["description"] = description
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            _set_default(schema, param.default)
        properties[param.name] = schema
    input_schema = builder.finish(
        {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    )
    returns_content = _returns_content(hints, name)
    output_schema, wraps = (
        (None, False) if returns_content or not describe_result else _output_schema(hints, name)
    )
    return FunctionSchema(
        input_schema=input_schema,
        output_schema=output_schema,
        wraps_result=wraps,
        description=doc.description,
        context_parameter=context,
        parameters=tuple(properties),
        returns_content=returns_content,
    )


def _return_annotation(hints: dict[str, Any]) -> Any:
    annotation = hints["return"]
    if typing.get_origin(strip_annotated(annotation)) in _AWAITABLE_ORIGINS:
        annotation = typing.get_args(strip_annotated(annotation))[-1]
    return annotation


def _returns_content(hints: dict[str, Any], name: str) -> bool:
    if "return" not in hints:
        return False
    try:
        return content_annotation(_return_annotation(hints))
    except TypeError as exc:
        raise ToolDefinitionError(f"tool function {name!r} return annotation {exc}") from None


def _docstring_of(fn: Callable[..., Any]) -> str | None:
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    return inspect.getdoc(target)


def _annotated_description(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, str):
                return meta
    return None


def _set_default(schema: dict[str, Any], default: Any) -> None:
    try:
        schema["default"] = to_jsonable(default)
    except (TypeError, ValueError):
        pass  # A sentinel or other non-JSON default leaves the parameter optional.


def _output_schema(hints: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, bool]:
    if "return" not in hints:
        return None, False
    annotation = _return_annotation(hints)
    if strip_annotated(annotation) in (str, None, NONE_TYPE, Any):
        return None, False
    builder = _Builder()
    try:
        schema = builder.build(annotation)
    except _Unsupported as exc:
        raise ToolDefinitionError(
            f"tool function {name!r} return annotation: {exc}; {_SUPPORTED}"
        ) from None
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        # A self-referencing return type: MCP wants the object at the root.
        schema = {
            **builder.defs[ref.removeprefix("#/$defs/")],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    if schema.get("type") == "object":
        return builder.finish(schema), False
    wrapped = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return builder.finish(wrapped), True


_SUPPORTED = (
    "supported: str, int, float, bool, None, list, tuple, set, dict[str, T], Any, "
    "Optional, Union, Literal, Enum, TypedDict, dataclasses, Annotated, "
    "datetime, date, time, UUID, Path"
)


class _Builder:
    """Builds schemas for one root, collecting ``$defs`` for recursive types."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self._def_names: dict[type, str] = {}
        self._building: list[type] = []
        self._recursive: set[type] = set()

    def finish(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.defs:
            schema["$defs"] = self.defs
        return schema

    def build(self, tp: Any) -> dict[str, Any]:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            schema = self.build(args[0])
            description = _annotated_description(tp)
            if description:
                schema["description"] = description
            return schema
        if tp is Any:
            return {}
        if not _hashable(tp):
            raise _Unsupported(f"unsupported annotation {tp!r}")
        if tp in _PRIMITIVES:
            return dict(_PRIMITIVES[tp])
        if isinstance(tp, type) and issubclass(tp, PurePath):
            return {"type": "string"}
        if hasattr(tp, "__supertype__"):  # typing.NewType
            return self.build(tp.__supertype__)
        if origin is typing.Literal:
            return _literal_schema(args)
        if origin in UNION_ORIGINS:
            return self._union(args)
        if isinstance(tp, type) and (
            issubclass(tp, enum.Enum)
            or typing_extensions.is_typeddict(tp)
            or dataclasses.is_dataclass(tp)
        ):
            return self._named(tp)
        if tp in LIST_ORIGINS or origin in LIST_ORIGINS:
            return self._array(args)
        if tp is tuple or origin is tuple:
            return self._tuple(tp, args)
        if tp in SET_ORIGINS or origin in SET_ORIGINS:
            return {**self._array(args), "uniqueItems": True}
        if tp in DICT_ORIGINS or origin in DICT_ORIGINS:
            return self._object(tp, args)
        raise _Unsupported(f"unsupported annotation {tp!r}")

    def _array(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if not args or args[0] is Any:
            return {"type": "array"}
        return {"type": "array", "items": self.build(args[0])}

    def _tuple(self, tp: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) == 2 and args[1] is Ellipsis:
            return self._array(args[:1])
        if not args:  # bare tuple, or tuple[()]: the empty tuple
            return {"type": "array", "maxItems": 0} if tp == tuple[()] else {"type": "array"}
        return {
            "type": "array",
            # minItems and maxItems already bound the length; no "items": false,
            # a boolean schema that strict clients (and some LLM APIs) refuse.
            "prefixItems": [self.build(arg) for arg in args],
            "minItems": len(args),
            "maxItems": len(args),
        }

    def _object(self, tp: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        if not args:
            return {"type": "object"}
        if strip_annotated(args[0]) is not str:
            raise _Unsupported(f"unsupported annotation {tp!r}: JSON object keys are str")
        if args[1] is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": self.build(args[1])}

    def _union(self, args: tuple[Any, ...]) -> dict[str, Any]:
        arms = [self.build(arg) for arg in args]
        if all(len(arm) == 1 and isinstance(arm.get("type"), str) for arm in arms):
            return {"type": list(dict.fromkeys(arm["type"] for arm in arms))}
        return {"anyOf": arms}

    def _named(self, tp: type) -> dict[str, Any]:
        """Inline an Enum, TypedDict or dataclass, or refer to it when recursive."""
        if tp in self._def_names and self._def_names[tp] in self.defs:
            return {"$ref": f"#/$defs/{self._def_names[tp]}"}
        if tp in self._building:
            self._recursive.add(tp)
            return {"$ref": f"#/$defs/{self._def_name(tp)}"}
        self._building.append(tp)
        try:
            schema = self._class_schema(tp)
        finally:
            self._building.pop()
        if tp not in self._recursive:
            return schema
        self.defs[self._def_name(tp)] = schema
        return {"$ref": f"#/$defs/{self._def_name(tp)}"}

    def _def_name(self, tp: type) -> str:
        if tp not in self._def_names:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", tp.__name__)
            name, n = base, 1
            while name in self._def_names.values():
                n += 1
                name = f"{base}{n}"
            self._def_names[tp] = name
        return self._def_names[tp]

    def _class_schema(self, tp: type) -> dict[str, Any]:
        if issubclass(tp, enum.Enum):
            schema = _enum_schema(tp)
            doc = tp.__dict__.get("__doc__")
            if doc not in _DEFAULT_ENUM_DOCS:
                schema["description"] = parse_docstring(doc).description
            return schema
        doc = parse_docstring(tp.__dict__.get("__doc__"))
        try:
            fields = list(record_fields(tp))
        except (NameError, TypeError) as exc:
            raise _Unsupported(f"cannot resolve the annotations of {tp!r}: {exc}") from None
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, hint, default, is_required in fields:
            try:
                schema = self.build(hint)
            except _Unsupported as exc:
                where = f"field {name!r} of {tp.__qualname__}"
                raise _Unsupported(f"{exc} ({where})") from None
            description = _annotated_description(hint) or doc.params.get(name)
            if description:
                schema["description"] = description
            if default is not dataclasses.MISSING:
                _set_default(schema, default)
            if is_required:
                required.append(name)
            properties[name] = schema
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        result["additionalProperties"] = False
        # A dataclass without a docstring gets a generated one: its signature.
        if doc.description and not (tp.__doc__ or "").startswith(f"{tp.__name__}("):
            result["description"] = doc.description
        return result


def _enum_schema(tp: type[enum.Enum]) -> dict[str, Any]:
    values = [member.value for member in tp]
    for value in values:
        if type(value) not in _JSON_TYPES:
            raise _Unsupported(f"unsupported annotation {tp!r}: member value {value!r} is not JSON")
    return {**_uniform_type(values), "enum": values}


def _literal_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    values = [arg.value if isinstance(arg, enum.Enum) else arg for arg in args]
    for value in values:
        if type(value) not in _JSON_TYPES:
            raise _Unsupported(f"unsupported Literal value {value!r}")
    if len(values) == 1:
        return {**_uniform_type(values), "const": values[0]}
    return {**_uniform_type(values), "enum": values}


def _uniform_type(values: list[Any]) -> dict[str, Any]:
    kinds = {_JSON_TYPES[type(value)] for value in values}
    return {"type": kinds.pop()} if len(kinds) == 1 else {}


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True
