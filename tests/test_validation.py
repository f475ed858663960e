"""The validation seam: the fast path never accepts what jsonschema rejects."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iccm_network import validation
from iccm_network.schema import type_schema
from iccm_network.validation import ArgumentValidator, SchemaError, check_schema


class Level(enum.Enum):
    INFO = "INFO"
    ERROR = "ERROR"


@dataclass
class Nested:
    name: str
    count: int
    when: datetime.date | None = None


SCHEMAS = [
    type_schema(Nested),
    type_schema(dict[str, list[int]]),
    type_schema(tuple[int, str]),
    type_schema(Level),
    type_schema(Literal["a", "b"] | float),
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "date"},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "count", "when", "x"]), children, max_size=4)
    ),
    max_leaves=10,
)


@pytest.mark.skipif(not validation.ACCELERATED, reason="jsonschema-rs is not installed")
@pytest.mark.parametrize("schema", SCHEMAS)
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


def test_a_remote_reference_falls_back_to_jsonschema_alone() -> None:
    schema = {"$ref": "https://example.invalid/schema.json"}
    validator = ArgumentValidator({"type": "object", "properties": {"x": schema}})
    assert validator.is_valid({})


def test_an_invalid_schema_is_reported_with_its_reason() -> None:
    with pytest.raises(SchemaError, match="3 is not of type .object."):
        check_schema({"type": "object", "properties": 3})
