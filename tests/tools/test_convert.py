"""Tests for iccm_network.tools.convert: JSON arguments in, JSON-able results out."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from typing_extensions import NotRequired

from iccm_network.context import Context
from iccm_network.tools.convert import build_converter, to_jsonable
from iccm_network.tools.schema import function_schema, type_schema


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    x: float
    y: float = 0.0


@dataclass
class Shape:
    name: str
    color: Color
    points: list[Point]
    created: datetime.datetime | None = None


@dataclass
class Tree:
    value: int
    children: list[Tree] = field(default_factory=list)


class Event(TypedDict):
    at: datetime.datetime
    note: NotRequired[str]


class Plain(TypedDict):
    name: str
    tags: list[str]


class Nested(TypedDict):
    name: str
    children: list[Nested]


@dataclass
class Cat:
    meow: str


@dataclass
class Dog:
    bark: str


def convert_one(annotation: Any, value: Any) -> Any:
    """Validate ``value`` against the schema of ``annotation``, then convert it."""

    def tool(value: Any) -> None:
        pass

    tool.__annotations__ = {"value": annotation}
    Draft202012Validator(function_schema(tool).input_schema).validate({"value": value})
    converter = build_converter(tool)
    assert converter is not None
    return converter({"value": value})["value"]


UTC = datetime.timezone.utc

ROUND_TRIPS: list[tuple[Any, Any, Any]] = [
    (float, 3, 3.0),
    (list[float], [1, 2.5], [1.0, 2.5]),
    (dict[str, float], {"a": 1}, {"a": 1.0}),
    (Color, "green", Color.GREEN),
    (Level, 2, Level.HIGH),
    (Literal[Color.RED], "red", Color.RED),
    (datetime.datetime, "2024-05-01T12:30:00Z", datetime.datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    (datetime.datetime, "2024-05-01T12:30:00", datetime.datetime(2024, 5, 1, 12, 30)),
    (datetime.date, "2024-05-01", datetime.date(2024, 5, 1)),
    (datetime.time, "12:30:00Z", datetime.time(12, 30, tzinfo=UTC)),
    (
        uuid.UUID,
        "12345678-1234-5678-1234-567812345678",
        uuid.UUID(int=0x12345678123456781234567812345678),
    ),
    (Path, "/tmp/x", Path("/tmp/x")),
    (PurePosixPath, "a/b", PurePosixPath("a/b")),
    (tuple[int, ...], [1, 2], (1, 2)),
    (tuple[int, Color], [1, "red"], (1, Color.RED)),
    (tuple, [1, "a"], (1, "a")),
    (set[str], ["a", "b"], {"a", "b"}),
    (frozenset[Color], ["red"], frozenset({Color.RED})),
    (Point, {"x": 1}, Point(1.0, 0.0)),
    (
        Shape,
        {
            "name": "s",
            "color": "red",
            "points": [{"x": 1, "y": 2}],
            "created": "2024-05-01T00:00:00",
        },
        Shape("s", Color.RED, [Point(1.0, 2.0)], datetime.datetime(2024, 5, 1)),
    ),
    (Tree, {"value": 1, "children": [{"value": 2}]}, Tree(1, [Tree(2)])),
    (Event, {"at": "2024-05-01T00:00:00Z"}, {"at": datetime.datetime(2024, 5, 1, tzinfo=UTC)}),
    (Nested, {"name": "a", "children": [{"name": "b", "children": []}]}, None),
    (Point | None, None, None),
    (Point | None, {"x": 2}, Point(2.0)),
    (datetime.date | str, "soon", "soon"),
    (datetime.date | str, "2024-05-01", datetime.date(2024, 5, 1)),
    (int | float, 1, 1),
    (Cat | Dog, {"bark": "woof"}, Dog("woof")),
    (Annotated[Color, "a colour"], "red", Color.RED),
    (Mapping[str, Sequence[Point]], {"k": [{"x": 0}]}, {"k": [Point(0.0)]}),
]


@pytest.mark.parametrize(("annotation", "value", "expected"), ROUND_TRIPS, ids=repr)
def test_validated_json_is_converted_to_the_declared_type(
    annotation: Any, value: Any, expected: Any
) -> None:
    converted = convert_one(annotation, value)
    if expected is None:
        expected = value
    assert converted == expected
    assert type(converted) is type(expected)


def test_float_parameters_receive_a_float_for_a_json_integer() -> None:
    assert type(convert_one(float, 3)) is float


def json_native(
    a: str,
    b: int,
    c: bool,
    d: list[str],
    e: dict[str, int],
    f: Literal["x", "y"],
    g: Plain,
    h: Any = None,
    i: str | None = None,
    ctx: Context | None = None,
) -> None:
    pass


def test_json_native_parameters_need_no_converter() -> None:
    assert build_converter(json_native) is None


def test_the_converter_leaves_missing_and_native_arguments_alone() -> None:
    def tool(
        when: datetime.date, text: str, count: int = 1, at: datetime.date | None = None
    ) -> None:
        pass

    converter = build_converter(tool)
    assert converter is not None
    arguments = {"when": "2024-01-02", "text": "hi"}
    assert converter(arguments) == {"when": datetime.date(2024, 1, 2), "text": "hi"}
    assert arguments == {"when": "2024-01-02", "text": "hi"}


def test_a_value_the_type_refuses_raises_value_error() -> None:
    with pytest.raises(ValueError):
        convert_one(datetime.date, "2024-02-30")


def test_to_jsonable_returns_plain_json_as_it_is() -> None:
    flat = {"a": 1, "b": "x", "c": None, "d": 1.5, "e": True}
    items = [1, "x", None]
    assert to_jsonable(flat) is flat
    assert to_jsonable(items) is items
    assert to_jsonable("x") == "x"


def test_to_jsonable_converts_nested_python_values() -> None:
    value = {
        "shape": Shape("s", Color.RED, [Point(1.0)], datetime.datetime(2024, 5, 1, tzinfo=UTC)),
        "when": (datetime.date(2024, 5, 1), datetime.time(8, 0)),
        "id": uuid.UUID(int=1),
        "path": Path("/tmp"),
        "levels": frozenset({Level.LOW}),
        Color.GREEN: "enum key",
        7: "int key",
    }
    assert to_jsonable(value) == {
        "shape": {
            "name": "s",
            "color": "red",
            "points": [{"x": 1.0, "y": 0.0}],
            "created": "2024-05-01T00:00:00+00:00",
        },
        "when": ["2024-05-01", "08:00:00"],
        "id": "00000000-0000-0000-0000-000000000001",
        "path": "/tmp",
        "levels": [1],
        "green": "enum key",
        "7": "int key",
    }


def test_to_jsonable_turns_str_subclasses_into_str() -> None:
    class Name(str):
        pass

    result = to_jsonable([Name("x")])
    assert result == ["x"]
    assert type(result[0]) is str


@pytest.mark.parametrize("value", [b"bytes", object(), decimal.Decimal("1.5"), {"k": {1j}}])
def test_to_jsonable_names_the_type_it_cannot_convert(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot convert (bytes|object|Decimal|complex)"):
        to_jsonable(value)


def test_to_jsonable_rejects_keys_without_a_json_form() -> None:
    with pytest.raises(TypeError, match="as a JSON object key"):
        to_jsonable({(1, 2): "tuple key"})


finite = st.floats(allow_nan=False, allow_infinity=False)
points = st.builds(Point, x=finite, y=finite)
shapes = st.builds(
    Shape,
    name=st.text(),
    color=st.sampled_from(Color),
    points=st.lists(points, max_size=3),
    created=st.none() | st.datetimes(timezones=st.just(UTC)),
)


@given(shape=shapes)
def test_a_dataclass_survives_to_json_and_back(shape: Shape) -> None:
    data = json.loads(json.dumps(to_jsonable(shape)))
    Draft202012Validator(type_schema(Shape)).validate(data)
    assert convert_one(Shape, data) == shape
