"""Hypothesis strategies from a tool's ``inputSchema``: arguments it accepts, and ones it refuses.

``arguments_for(tool)`` walks the schema and builds a strategy for argument
objects it accepts. ``invalid_arguments_for(tool)`` draws one of those, walks
it beside the schema, and breaks one thing: a wrong JSON type at some path, a
value outside an ``enum``, a missing required property, an unexpected
property, or a malformed date, time or UUID. ``invalid_cases_for(tool)`` is
the same with the broken path and kind attached, for ``check_tool``'s
messages.

The strategies are written here rather than taken from
``hypothesis-jsonschema``: its 0.23.1 release calls ``many.more()``, which
current Hypothesis removed, and even with that patched it cannot generate three
things this framework's schemas contain: ``prefixItems`` (the Draft 2020-12
form of ``tuple[...]``), ``format: uuid``, and the recursive ``$ref`` of a
self-referencing dataclass. The vocabulary ``schema.py`` emits is small, so it
is modelled exactly; a hand-written schema using other keywords still gets
values, filtered through its validator.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from iccm_network.tools.routes import Tool

__all__ = ["InvalidCase", "arguments_for", "invalid_arguments_for", "invalid_cases_for"]

_SAFE_INTEGER: Final = 2**53
"""Integers beyond this are valid JSON but lose precision in most clients."""

_MAX_DEPTH: Final = 4
"""How many times a recursive ``$ref`` is followed before only finite arms remain."""

_MAX_REF_CHAIN: Final = 32
"""How many ``$ref`` hops ``deref`` follows, so that a reference cycle cannot hang it."""

_EXTRA_ITEMS: Final = 4
"""Arrays and open objects get at most this many elements beyond their minimum."""

_ANNOTATIONS: Final = frozenset(
    {"$comment", "$defs", "$id", "$schema", "default", "deprecated", "description"}
    | {"definitions", "examples", "readOnly", "title", "writeOnly"}
)
_MODELLED: Final = _ANNOTATIONS | {
    "$ref",
    "additionalProperties",
    "anyOf",
    "const",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "format",
    "items",
    "maxItems",
    "maxLength",
    "maximum",
    "minItems",
    "minLength",
    "minimum",
    "multipleOf",
    "pattern",
    "prefixItems",
    "properties",
    "required",
    "type",
    "uniqueItems",
}
_JSON_TYPES: Final = ("null", "boolean", "integer", "number", "string", "array", "object")

_OFFSETS = st.sampled_from(
    [
        datetime.timezone.utc,
        datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
        datetime.timezone(datetime.timedelta(hours=-8)),
    ]
)
_FORMATS: Final[Mapping[str, st.SearchStrategy[str]]] = {
    "date-time": st.one_of(
        st.datetimes(timezones=_OFFSETS).map(datetime.datetime.isoformat),
        # The "Z" spelling that JSON producers favour.
        st.datetimes().map(lambda d: d.isoformat() + "Z"),
    ),
    "date": st.dates().map(datetime.date.isoformat),
    "time": st.times(timezones=_OFFSETS).map(datetime.time.isoformat),
    "uuid": st.uuids().map(str),
    "email": st.emails(),
}
_CONVERTED_FORMATS: Final = frozenset({"date-time", "date", "time", "uuid"})

_SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-_SAFE_INTEGER, _SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
_ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_WRONG_VALUES: Final[Mapping[str, st.SearchStrategy[Any]]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.integers(-10, 10),
    # Integral floats are integers to JSON Schema, so a wrong number has a fraction.
    "number": st.sampled_from([0.5, -1.25, 3.75]),
    "string": st.text(max_size=5),
    "array": st.lists(st.integers(-3, 3), max_size=2),
    "object": st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
}


def _published(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """Whether a value is valid against ``schema`` as published, formats checked."""
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid


def _json_identity(value: Any) -> str:
    """A key under which JSON Schema's ``uniqueItems`` sees two values as equal."""

    def normal(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        if isinstance(v, list):
            return [normal(x) for x in v]
        return v

    return json.dumps(normal(value), sort_keys=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _listed_values(schema: Mapping[str, Any]) -> list[Any]:
    """The only values a schema with ``const`` or ``enum`` allows."""
    return [schema["const"]] if "const" in schema else list(schema["enum"])


class _Generator:
    """Builds strategies for one root schema; notes whether it modelled everything."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.exact = True
        self._checks: dict[int, Callable[[Any], bool]] = {}

    def matches(self, schema: Any, value: Any) -> bool:
        """Whether ``value`` is valid against ``schema``, a part of the root."""
        check = self._checks.get(id(schema))
        if check is None:
            defs = self.root.get("$defs", {})
            part = self.deref(schema)
            whole = {**part, "$defs": defs} if isinstance(part, Mapping) else part
            check = Draft202012Validator(whole).is_valid
            self._checks[id(schema)] = check
        return check(value)

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"cannot generate values for the remote reference {ref!r}")
        target: Any = self.root
        for part in ref[1:].split("/")[1:]:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target

    def deref(self, schema: Any) -> Any:
        for _ in range(_MAX_REF_CHAIN):
            if not (isinstance(schema, Mapping) and "$ref" in schema):
                break
            schema = self.resolve(schema["$ref"])
        return schema

    def valid(self, schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
        if schema is True:
            return _ANY_JSON
        if schema is False:
            return st.nothing()
        if not isinstance(schema, Mapping):
            self.exact = False
            return _ANY_JSON
        if not schema.keys() <= _MODELLED:
            self.exact = False
        if "$ref" in schema:
            if not schema.keys() - {"$ref"} <= _ANNOTATIONS:
                self.exact = False
            if depth >= _MAX_DEPTH:
                return st.nothing()  # an Optional or empty-list arm ends the recursion
            return self.valid(self.resolve(schema["$ref"]), depth + 1)
        if "const" in schema or "enum" in schema:
            return st.sampled_from(_listed_values(schema)).map(copy.deepcopy)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                if keyword == "oneOf" or not schema.keys() - {keyword} <= _ANNOTATIONS:
                    self.exact = False
                return st.one_of([self.valid(arm, depth) for arm in schema[keyword]])
        declared = schema.get("type")
        if declared is None:
            if schema.keys() <= _ANNOTATIONS:
                return _ANY_JSON
            types: Sequence[str] = _JSON_TYPES
        else:
            types = [declared] if isinstance(declared, str) else declared
        return st.one_of([self._typed(kind, schema, depth) for kind in types])

    def _typed(self, kind: str, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "string":
            return self._string(schema)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "object":
            return self._object(schema, depth)
        self.exact = False
        return st.nothing()

    @staticmethod
    def _integer_bounds(schema: Mapping[str, Any]) -> tuple[int, int]:
        low, high = -_SAFE_INTEGER, _SAFE_INTEGER
        if "minimum" in schema:
            low = max(low, math.ceil(schema["minimum"]))
        if "exclusiveMinimum" in schema:
            low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
        if "maximum" in schema:
            high = min(high, math.floor(schema["maximum"]))
        if "exclusiveMaximum" in schema:
            high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
        return low, high

    def _integer(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        low, high = self._integer_bounds(schema)
        step = schema.get("multipleOf", 1)
        if not isinstance(step, int) or step <= 0:
            self.exact = False
            step = 1
        return st.integers(-(-low // step), high // step).map(lambda n: n * step)

    def _number(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        if "multipleOf" in schema:
            self.exact = False  # only the integers drawn can be exact multiples
            return self._integer(schema)
        low, high = self._integer_bounds(schema)
        floats = st.floats(
            min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
            max_value=schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
            exclude_max="exclusiveMaximum" in schema and "maximum" not in schema,
            allow_nan=False,
            allow_infinity=False,
        )
        # JSON integers are numbers too: a float parameter must take them.
        return st.one_of(st.integers(low, high), floats) if low <= high else floats

    def _string(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength", low + 20)
        fmt = schema.get("format")
        if "pattern" in schema:
            if fmt is not None or "minLength" in schema or "maxLength" in schema:
                self.exact = False
            # JSON Schema patterns are not anchored: a string containing a match is valid.
            return st.from_regex(schema["pattern"])
        if fmt is not None:
            if fmt not in _FORMATS or "minLength" in schema or "maxLength" in schema:
                self.exact = False
            if fmt in _FORMATS:
                return _FORMATS[fmt]
        return st.text(min_size=low, max_size=max(low, high))

    def _array(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        prefix = [self.valid(item, depth) for item in schema.get("prefixItems", [])]
        items = schema.get("items", True)
        low = schema.get("minItems", 0)
        high = schema.get("maxItems")
        unique = schema.get("uniqueItems", False)
        if (high is not None and high < len(prefix)) or (unique and prefix):
            self.exact = False
        rest_low = max(0, low - len(prefix))
        rest_high = rest_low + _EXTRA_ITEMS
        if high is not None:
            rest_high = max(rest_low, min(rest_high, high - len(prefix)))
        item = st.nothing() if items is False else self.valid(items, depth)
        if item.is_empty:  # no items allowed, or a recursion cut off here
            rest: st.SearchStrategy[list[Any]] = st.just([]) if rest_low == 0 else st.nothing()
        else:
            rest = st.lists(
                item,
                min_size=rest_low,
                max_size=rest_high,
                unique_by=_json_identity if unique else None,
            )
        if not prefix:
            return rest
        return st.builds(lambda head, tail: [*head, *tail], st.tuples(*prefix), rest)

    def _object(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required: list[str] = list(schema.get("required", []))
        additional = schema.get("additionalProperties", True)
        fixed = st.fixed_dictionaries(
            {name: self.valid(properties.get(name, additional), depth) for name in required},
            optional={
                name: strategy
                for name, sub in properties.items()
                if name not in required and not (strategy := self.valid(sub, depth)).is_empty
            },
        )
        values = self.valid(additional, depth)
        if values.is_empty:
            return fixed
        names = st.text(min_size=1, max_size=8).filter(lambda name: name not in properties)
        extra = st.dictionaries(names, values, max_size=_EXTRA_ITEMS)
        return st.builds(lambda more, known: {**more, **known}, extra, fixed)

    # -- what a schema allows, for building values it refuses --------------

    def allowed_types(self, schema: Any) -> set[str] | None:
        """The JSON types ``schema`` accepts, or ``None`` when it accepts any."""
        schema = self.deref(schema)
        if not isinstance(schema, Mapping):
            return None if schema is not False else set()
        if "const" in schema or "enum" in schema:
            return {_json_type(value) for value in _listed_values(schema)}
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                kinds: set[str] = set()
                for arm in schema[keyword]:
                    arm_kinds = self.allowed_types(arm)
                    if arm_kinds is None:
                        return None
                    kinds |= arm_kinds
                return kinds
        declared = schema.get("type")
        if declared is None:
            return None
        kinds = {declared} if isinstance(declared, str) else set(declared)
        return kinds | {"integer"} if "number" in kinds else kinds


def _accepted(tool: Tool, generator: _Generator) -> st.SearchStrategy[dict[str, Any]]:
    strategy: st.SearchStrategy[dict[str, Any]] = generator.valid(tool.input_schema)
    if not generator.exact:
        strategy = strategy.filter(_published(tool.input_schema))
    return strategy


def arguments_for(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy for argument objects that ``tool``'s ``inputSchema`` accepts.

    Every schema the framework generates is modelled exactly; a hand-written
    schema with keywords beyond that (``pattern`` with lengths, ``allOf``,
    ``multipleOf``...) gets candidates filtered through its validator.
    Integers stay within ±2**53 and arrays and open objects stay small, so
    examples are cheap and every JSON client could have sent them.

    Args:
        tool: A registered tool, such as ``app.tools["add"]``.
    """
    return _accepted(tool, _Generator(tool.input_schema))


# -- invalid arguments ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InvalidCase:
    """One invalid argument object and where it goes wrong.

    Attributes:
        arguments: The argument object.
        path: The JSON Pointer of the broken place, such as ``"/tree/left"``.
        kind: What was broken: ``"type"``, ``"missing"``, ``"extra"``,
            ``"value"`` (outside an ``enum`` or ``const``) or ``"format"``.
    """

    arguments: dict[str, Any]
    path: str
    kind: str


_KINDS: Final = ("type", "missing", "extra", "value", "format")


@dataclasses.dataclass(frozen=True)
class _Spot:
    """A place in a valid argument object, with the schema that governs it."""

    path: tuple[str | int, ...]
    schema: Mapping[str, Any]
    value: Any
    in_union: bool


def _pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _spots(
    generator: _Generator, schema: Any, value: Any, path: tuple[str | int, ...], in_union: bool
) -> Iterator[_Spot]:
    schema = generator.deref(schema)
    if not isinstance(schema, Mapping):
        return
    yield _Spot(path, schema, value, in_union)
    for keyword in ("anyOf", "oneOf"):
        for arm in schema.get(keyword, ()):
            if generator.matches(arm, value):  # descend into the arm the value took
                yield from _spots(generator, arm, value, path, True)
                break
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, additional)
            if isinstance(sub, Mapping):
                yield from _spots(generator, sub, item, (*path, name), in_union)
    elif isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        items = schema.get("items")
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else items
            if isinstance(sub, Mapping):
                yield from _spots(generator, sub, item, (*path, index), in_union)


def _set(arguments: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    target: Any = arguments
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _mutations(generator: _Generator, spot: _Spot) -> list[tuple[str, Any]]:
    """Each way to break ``spot``: (kind, detail) pairs for ``_break_one``."""
    options: list[tuple[str, Any]] = []
    schema, value = spot.schema, spot.value
    if spot.path:  # replacing the whole arguments object is not a schema error
        allowed = generator.allowed_types(schema)
        if allowed is not None:
            options.extend(("type", kind) for kind in _JSON_TYPES if kind not in allowed)
        if "enum" in schema or "const" in schema:
            options.append(("value", None))
        fmt = schema.get("format")
        if fmt in _CONVERTED_FORMATS and isinstance(value, str) and not spot.in_union:
            options.append(("format", fmt))
    if isinstance(value, dict):
        options.extend(("missing", name) for name in schema.get("required", ()) if name in value)
        if schema.get("additionalProperties") is False:
            options.append(("extra", None))
    return options


@st.composite
def _break_one(
    draw: st.DrawFn, generator: _Generator, valid: st.SearchStrategy[dict[str, Any]]
) -> InvalidCase:
    arguments = copy.deepcopy(draw(valid))
    by_kind: dict[str, list[tuple[_Spot, Any]]] = {}
    for spot in _spots(generator, generator.root, arguments, (), False):
        for kind, detail in _mutations(generator, spot):
            by_kind.setdefault(kind, []).append((spot, detail))
    if not by_kind:
        return draw(st.nothing())
    # The kind first, so that rare kinds (one unexpected property) are drawn
    # as often as common ones (a wrong type at each of many places).
    kind = draw(st.sampled_from([k for k in _KINDS if k in by_kind]))
    spot, detail = draw(st.sampled_from(by_kind[kind]))
    path: tuple[str | int, ...] = spot.path
    if kind == "type":
        _set(arguments, spot.path, draw(_WRONG_VALUES[detail]))
    elif kind == "value":
        values = _listed_values(spot.schema)
        _set(arguments, spot.path, draw(_ANY_JSON.filter(lambda v: v not in values)))
    elif kind == "format":
        _set(arguments, spot.path, f"not a {detail}")
    elif kind == "missing":
        del spot.value[detail]
        path = (*spot.path, detail)
    else:
        name = draw(st.text(min_size=1, max_size=8).filter(lambda n: n not in spot.value))
        spot.value[name] = draw(_SCALARS)
        path = (*spot.path, name)
    return InvalidCase(arguments, _pointer(path), kind)


def _can_break(generator: _Generator) -> bool:
    """Whether any argument object can be wrong: false only for all-``Any`` open schemas."""
    schema = generator.root
    if schema.get("additionalProperties") is False or schema.get("required"):
        return True
    return any(
        generator.allowed_types(sub) is not None for sub in schema.get("properties", {}).values()
    )


def invalid_cases_for(tool: Tool) -> st.SearchStrategy[InvalidCase]:
    """Like ``invalid_arguments_for``, with the broken path and kind of each object.

    Empty (``strategy.is_empty``) when nothing about the arguments can be
    wrong: an open object whose properties are all ``Any``.

    Args:
        tool: A registered tool, such as ``app.tools["add"]``.
    """
    generator = _Generator(tool.input_schema)
    if not _can_break(generator):
        return st.nothing()
    # A "format" case may pass the schema (date-time has no checker by default)
    # and is refused by conversion instead; every other case must fail the schema.
    # Judged by the published schema, not the tool's compiled validator, which
    # is part of what check_tool tests.
    accepts = _published(tool.input_schema)
    return _break_one(generator, _accepted(tool, generator)).filter(
        lambda case: case.kind == "format" or not accepts(case.arguments)
    )


def invalid_arguments_for(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy for argument objects that ``tool`` must refuse.

    Each starts from a valid object and breaks one thing: a value of the
    wrong JSON type (at any depth), a value outside an ``enum``, a
    missing required property, an unexpected property, or a malformed
    date, time or UUID string. A tool that takes no arguments still refuses
    unexpected ones; one whose parameters are all ``Any`` in an open object
    has nothing to break, and the strategy is empty: Hypothesis reports it as
    unsatisfiable.

    Args:
        tool: A registered tool, such as ``app.tools["add"]``.
    """
    return invalid_cases_for(tool).map(lambda case: case.arguments)
