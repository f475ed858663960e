"""Tests for iccm_network.tools.schema: type hints and docstrings to JSON Schema."""

# Postponed annotations on purpose: every hint below is a string until resolved.
from __future__ import annotations

import datetime
import enum
import functools
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypedDict

import pytest
import typing_extensions
from jsonschema import Draft202012Validator
from typing_extensions import NotRequired, Required

from iccm_network.context import Context
from iccm_network.errors import ToolDefinitionError
from iccm_network.tools.schema import FunctionSchema, function_schema, type_schema


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    """How urgent a task is."""

    LOW = 1
    HIGH = 2


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Options(TypedDict, total=False):
    depth: int
    name: Required[str]


class LegacyOptions(typing_extensions.TypedDict, total=False):
    depth: typing_extensions.Required[int]
    tag: Annotated[str, "A label."]


@dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal.
    """

    x: float
    y: float = 0.0
    tags: list[str] = field(default_factory=list)


@dataclass
class Tree:
    value: int
    children: list[Tree] = field(default_factory=list)


STRING = {"type": "string"}

TYPE_CASES: list[tuple[Any, dict[str, Any]]] = [
    (str, STRING),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (None, {"type": "null"}),
    (Any, {}),
    (list, {"type": "array"}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (typing.List[str], {"type": "array", "items": STRING}),  # noqa: UP006
    (Sequence[str], {"type": "array", "items": STRING}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (
        tuple[int, str],
        {
            "type": "array",
            "prefixItems": [{"type": "integer"}, STRING],
            "minItems": 2,
            "maxItems": 2,
        },
    ),
    (tuple[()], {"type": "array", "maxItems": 0}),
    (set[str], {"type": "array", "items": STRING, "uniqueItems": True}),
    (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    (dict, {"type": "object"}),
    (dict[str, Any], {"type": "object"}),
    (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
    (Mapping[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045
    (str | None, {"type": ["string", "null"]}),
    (int | str, {"type": ["integer", "string"]}),
    (
        list[int] | None,
        {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
    ),
    (Literal["a"], {"type": "string", "const": "a"}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Literal[1, "a", None], {"enum": [1, "a", None]}),
    (Literal[Color.RED], {"type": "string", "const": "red"}),
    (Color, {"type": "string", "enum": ["red", "green"]}),
    (Priority, {"type": "integer", "enum": [1, 2], "description": "How urgent a task is."}),
    (
        Movie,
        {
            "type": "object",
            "properties": {"title": STRING, "year": {"type": "integer"}},
            "required": ["title"],
            "additionalProperties": False,
        },
    ),
    (
        Options,
        {
            "type": "object",
            "properties": {"depth": {"type": "integer"}, "name": STRING},
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    (
        LegacyOptions,
        {
            "type": "object",
            "properties": {
                "depth": {"type": "integer"},
                "tag": {"type": "string", "description": "A label."},
            },
            "required": ["depth"],
            "additionalProperties": False,
        },
    ),
    (
        Point,
        {
            "type": "object",
            "description": "A point on the plane.",
            "properties": {
                "x": {"type": "number", "description": "Horizontal."},
                "y": {"type": "number", "default": 0.0},
                "tags": {"type": "array", "items": STRING},
            },
            "required": ["x"],
            "additionalProperties": False,
        },
    ),
    (Annotated[int, "How many.", 42], {"type": "integer", "description": "How many."}),
    (datetime.datetime, {"type": "string", "format": "date-time"}),
    (datetime.date, {"type": "string", "format": "date"}),
    (datetime.time, {"type": "string", "format": "time"}),
    (uuid.UUID, {"type": "string", "format": "uuid"}),
    (Path, STRING),
    (typing.NewType("UserId", int), {"type": "integer"}),
    (
        dict[str, list[Point | None]],
        {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"anyOf": [type_schema(Point), {"type": "null"}]},
            },
        },
    ),
]


@pytest.mark.parametrize(("annotation", "expected"), TYPE_CASES, ids=repr)
def test_each_supported_type_has_its_exact_schema(annotation: Any, expected: Any) -> None:
    schema = type_schema(annotation)
    assert schema == expected
    Draft202012Validator.check_schema(schema)


def test_a_recursive_dataclass_is_referenced_through_defs() -> None:
    schema = type_schema(Tree)
    assert schema["$ref"] == "#/$defs/Tree"
    node = schema["$defs"]["Tree"]
    assert node["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Tree"}}
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"value": 1, "children": [{"value": 2}]})
    assert not validator.is_valid({"value": 1, "children": [{"value": "x"}]})


@dataclass
class OtherTree:
    label: str
    kids: list[OtherTree]


OtherTree.__name__ = "Tree"  # the same name as a different recursive type


def test_two_recursive_types_with_one_name_get_distinct_defs() -> None:
    def tool(a: Tree, b: OtherTree) -> None:
        pass

    schema = function_schema(tool).input_schema
    assert set(schema["$defs"]) == {"Tree", "Tree2"}
    assert schema["properties"] == {"a": {"$ref": "#/$defs/Tree"}, "b": {"$ref": "#/$defs/Tree2"}}
    Draft202012Validator.check_schema(schema)


def tool_with_everything(
    path: Annotated[str, "Where to look."],
    limit: int = 10,
    color: Color = Color.GREEN,
    since: datetime.date | None = None,
    ctx: Context | None = None,
    point: Point | None = None,
) -> list[str]:
    """List files.

    Only files, never folders.

    Args:
        path: Ignored, the annotation wins.
        limit: At most this many.
        since: Changed on or after.
    """
    return []


def test_function_schema_describes_parameters_defaults_and_docstring() -> None:
    result = function_schema(tool_with_everything)
    assert result.input_schema == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Where to look."},
            "limit": {"type": "integer", "description": "At most this many.", "default": 10},
            "color": {"type": "string", "enum": ["red", "green"], "default": "green"},
            "since": {
                "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                "description": "Changed on or after.",
                "default": None,
            },
            "point": {"anyOf": [type_schema(Point), {"type": "null"}], "default": None},
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    assert result.parameters == ("path", "limit", "color", "since", "point")
    assert result.context_parameter == "ctx"
    assert result.description == "List files.\n\nOnly files, never folders."
    assert result.output_schema == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": STRING}},
        "required": ["result"],
    }
    assert result.wraps_result is True


def test_a_function_without_parameters_has_an_empty_required_list() -> None:
    def ping() -> str:
        return "pong"

    assert function_schema(ping) == FunctionSchema(
        input_schema={
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
        output_schema=None,
        wraps_result=False,
        description="",
        context_parameter=None,
        parameters=(),
    )


@pytest.mark.parametrize("annotation", [Context, Optional[Context], Annotated[Context, "x"]])  # noqa: UP045
def test_a_context_parameter_is_left_out_of_the_schema(annotation: Any) -> None:
    def tool(text: str, context: Any) -> None:
        pass

    tool.__annotations__ = {"text": str, "context": annotation}
    result = function_schema(tool)
    assert result.context_parameter == "context"
    assert result.parameters == ("text",)


def test_a_default_that_is_not_json_leaves_the_parameter_optional_without_default() -> None:
    sentinel = object()

    def tool(value: Any = sentinel) -> None:
        pass

    assert function_schema(tool).input_schema["properties"] == {"value": {}}
    assert function_schema(tool).input_schema["required"] == []


def test_partials_bound_methods_and_callable_objects_are_introspected() -> None:
    class Service:
        def lookup(self, key: str, verbose: bool = False) -> int:
            """Look a key up."""
            return 0

        def __call__(self, key: str) -> int:
            return 0

    service = Service()
    assert function_schema(service.lookup).parameters == ("key", "verbose")
    assert function_schema(service.lookup).description == "Look a key up."
    assert function_schema(service).parameters == ("key",)
    partial = functools.partial(Service.lookup, service, verbose=True)
    assert function_schema(partial).input_schema["properties"]["verbose"]["default"] is True


def test_an_async_function_uses_its_declared_return_type() -> None:
    async def count() -> int:
        return 1

    result = function_schema(count)
    assert result.wraps_result is True
    assert result.output_schema == {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }


@pytest.mark.parametrize("returns", [str, None, Any, "missing"])
def test_text_nothing_or_undeclared_returns_have_no_output_schema(returns: Any) -> None:
    def tool() -> None:
        pass

    tool.__annotations__ = {} if returns == "missing" else {"return": returns}
    result = function_schema(tool)
    assert (result.output_schema, result.wraps_result) == (None, False)


@pytest.mark.parametrize("returns", [Movie, Point, dict, dict[str, int], Mapping[str, Any]])
def test_object_returns_are_published_as_they_are(returns: Any) -> None:
    def tool() -> None:
        pass

    tool.__annotations__ = {"return": returns}
    result = function_schema(tool)
    assert result.output_schema == type_schema(returns)
    assert result.wraps_result is False


def test_a_recursive_object_return_has_the_object_at_the_root() -> None:
    def tool() -> Tree:
        return Tree(1)

    schema = function_schema(tool).output_schema
    assert schema is not None
    assert schema["type"] == "object"
    assert schema["$defs"]["Tree"]["properties"]["value"] == {"type": "integer"}
    assert Draft202012Validator(schema).is_valid({"value": 1, "children": [{"value": 2}]})


@pytest.mark.parametrize("returns", [int, list[Point], int | str, Color, Movie | None])
def test_other_returns_are_wrapped_in_result(returns: Any) -> None:
    def tool() -> None:
        pass

    tool.__annotations__ = {"return": returns}
    result = function_schema(tool)
    assert result.wraps_result is True
    assert result.output_schema == {
        "type": "object",
        "properties": {"result": type_schema(returns)},
        "required": ["result"],
    }


def unsupported(data: bytes) -> None:
    pass


def callback(fn: Callable[[], None]) -> None:
    pass


def int_keys(table: dict[int, str]) -> None:
    pass


@dataclass
class HasBytes:
    blob: bytes


def nested(record: HasBytes) -> None:
    pass


def variadic(*names: str) -> None:
    pass


def keywords(**options: str) -> None:
    pass


def untyped(value) -> None:  # type: ignore[no-untyped-def]
    pass


def positional(value: int, /) -> None:
    pass


def bad_return() -> bytes:
    return b""


def unresolvable(value: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
    pass


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (unsupported, "parameter 'data': unsupported annotation <class 'bytes'>"),
        (callback, "parameter 'fn': unsupported annotation"),
        (int_keys, "parameter 'table': unsupported annotation dict[int, str]"),
        (nested, "parameter 'record': unsupported annotation <class 'bytes'> (field 'blob'"),
        (variadic, "parameter 'names': *args and **kwargs"),
        (keywords, "parameter 'options': *args and **kwargs"),
        (untyped, "parameter 'value': missing type annotation"),
        (positional, "parameter 'value': arguments arrive by name"),
        (bad_return, "return annotation: unsupported annotation <class 'bytes'>"),
        (unresolvable, "cannot read its annotations"),
    ],
)
def test_bad_signatures_fail_naming_the_function_and_parameter(
    fn: Callable[..., Any], message: str
) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        function_schema(fn)
    assert f"tool function '{fn.__module__}.{fn.__qualname__}'" in str(info.value)
    assert message in str(info.value)


def test_type_schema_rejects_an_unsupported_annotation() -> None:
    with pytest.raises(ToolDefinitionError, match="unsupported annotation <class 'bytes'>"):
        type_schema(bytes)


def test_an_enum_with_values_that_are_not_json_is_rejected() -> None:
    class Shape(enum.Enum):
        SQUARE = (1, 1)

    with pytest.raises(ToolDefinitionError, match="is not JSON"):
        type_schema(Shape)


def test_generated_schemas_accept_and_reject_as_declared() -> None:
    validator = Draft202012Validator(function_schema(tool_with_everything).input_schema)
    assert validator.is_valid({"path": "/", "color": "red", "since": None, "point": {"x": 1}})
    assert not validator.is_valid({"path": "/", "limit": True})
    assert not validator.is_valid({"path": "/", "unknown": 1})
    assert not validator.is_valid({"limit": 1})
