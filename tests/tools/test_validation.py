"""The validation seam: the fast path never accepts what jsonschema rejects."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iccm_network.tools import validation
from iccm_network.tools.schema import type_schema
from iccm_network.tools.validation import ArgumentValidator, SchemaError, check_schema

needs_accelerator = pytest.mark.skipif(
    not validation.ACCELERATED, reason="fastjsonschema is not installed"
)


class Level(enum.Enum):
    INFO = "INFO"
    ERROR = "ERROR"


@dataclass
class Nested:
    name: str
    count: int
    level: Level = Level.INFO
    note: str | None = None


@dataclass
class Tree:
    label: str
    children: list[Tree]


ACCELERATED_SCHEMAS = [
    type_schema(Nested),
    type_schema(Tree),
    type_schema(dict[str, list[int]]),
    type_schema(Level),
    type_schema(Literal["a", "b"] | float),
    {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 2},
    {"type": "integer", "minimum": 0, "exclusiveMaximum": 10},
    {"type": "array", "items": {"type": "number"}, "maxItems": 3},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
]

LEFT_TO_JSONSCHEMA = [
    type_schema(tuple[int, str]),  # prefixItems is 2020-12 only
    type_schema(set[int]),  # uniqueItems: Python's True == 1
    {"enum": [1, 2]},  # likewise for enums of numbers
    {"const": 0},
    {"type": "string", "format": "date"},  # jsonschema checks dates more strictly
    {"type": "string", "format": "uuid"},
    {"$ref": "#/$defs/x", "type": "string", "$defs": {"x": {}}},  # draft-07 ignores siblings
    {"patternProperties": {"^a": {"type": "string"}}},
]

keys = st.sampled_from(["name", "count", "level", "note", "label", "children", "x"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "a", "b", "ABC", "ABC\n", "INFO", "ERROR", "x"])
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


@needs_accelerator
@pytest.mark.parametrize("schema", ACCELERATED_SCHEMAS)
def test_schemas_in_the_shared_subset_are_accelerated(schema: dict[str, Any]) -> None:
    assert ArgumentValidator(schema).accelerated


@needs_accelerator
@pytest.mark.parametrize("schema", LEFT_TO_JSONSCHEMA)
def test_schemas_outside_the_shared_subset_are_left_to_jsonschema(schema: Any) -> None:
    assert not ArgumentValidator(schema).accelerated


@needs_accelerator
@pytest.mark.parametrize("schema", ACCELERATED_SCHEMAS + LEFT_TO_JSONSCHEMA)
@given(instance=json_values)
def test_the_fast_path_never_accepts_what_jsonschema_rejects(
    schema: dict[str, Any], instance: Any
) -> None:
    if ArgumentValidator(schema).is_valid(instance):
        assert ArgumentValidator(schema, accelerate=False).is_valid(instance)


@pytest.mark.parametrize("accelerate", [True, False])
def test_problems_are_json_pointers_with_messages(accelerate: bool) -> None:
    validator = ArgumentValidator(type_schema(Nested), accelerate=accelerate)
    assert not validator.is_valid({"count": "3", "extra": 1})
    assert [problem["path"] for problem in validator.problems({"count": "3"})] == [
        "/name",
        "/count",
    ]
    assert validator.problems({"name": "a", "count": 1}) == []


def test_a_date_the_calendar_lacks_is_refused() -> None:
    validator = ArgumentValidator(type_schema(datetime.date))
    assert validator.is_valid("2024-02-29")
    assert not validator.is_valid("2023-02-29")


def test_an_invalid_schema_is_reported_with_its_reason() -> None:
    with pytest.raises(SchemaError, match="3 is not of type .object."):
        check_schema({"type": "object", "properties": 3})
