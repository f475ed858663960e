"""Property-test an app's tools: strategies from their schemas, in-memory calls, ``check_app``.

The one-line test a component copies::

    from iccm_network.testing import check_app
    from horace.server import app

    def test_every_tool_honours_its_schema() -> None:
        check_app(app)

Three pieces, usable on their own:

- ``arguments_for(tool)`` and ``invalid_arguments_for(tool)``: Hypothesis
  strategies for argument objects that the tool's ``inputSchema`` accepts, and
  for ones it rejects (a wrong type at some path, a missing required property,
  an unexpected property, a malformed date or UUID).
- ``LocalConnection``, ``call`` and ``request``: a ``tools/call`` through the
  server's own ``ServerProtocol``, route table, validation and conversion, as
  JSON text, with no socket.
- ``check_app(app)``: for every tool, the schema is valid Draft 2020-12, every
  generated valid argument set reaches the function with the declared Python
  types, and every invalid one is refused with -32602 (or, from 2025-11-25, an
  ``isError`` result listing the failing paths) without reaching the function.

The strategies are written here rather than taken from
``hypothesis-jsonschema``: its 0.23.1 release calls ``many.more()``, which
current Hypothesis removed, and even with that patched it cannot generate three
things this framework's schemas contain: ``prefixItems`` (the Draft 2020-12
form of ``tuple[...]``), ``format: uuid``, and the recursive ``$ref`` of a
self-referencing dataclass. The vocabulary ``schema.py`` emits is small, so it
is modelled exactly; a hand-written schema using other keywords still gets
values, filtered through its validator.

This module needs Hypothesis (``pip install iccm-network[test]``); the rest of
the library does not.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import enum
import inspect
import json
import math
import time
import typing
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Final, TypeVar

import typing_extensions
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from iccm_network import __version__
from iccm_network.app import App
from iccm_network.context import Context
from iccm_network.convert import (
    DICT_ORIGINS,
    LIST_ORIGINS,
    NONE_TYPE,
    SET_ORIGINS,
    UNION_ORIGINS,
    record_fields,
    resolve_parameters,
    strip_annotated,
)
from iccm_network.errors import InvalidParams, ToolDefinitionError, error_class_for_code
from iccm_network.protocol import ServerInfo, ServerProtocol, ToolCall
from iccm_network.results import ERROR_DATA_META_KEY, CallTimedOut
from iccm_network.routes import RouteTable, Tool
from iccm_network.versions import (
    ALL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    MODERN_VERSIONS,
)

__all__ = [
    "LocalConnection",
    "acall",
    "arequest",
    "arguments_for",
    "call",
    "check_app",
    "check_tool",
    "invalid_arguments_for",
    "request",
]

T = TypeVar("T")

# -- strategies ----------------------------------------------------------------

_SAFE_INTEGER: Final = 2**53
"""Integers beyond this are valid JSON but lose precision in most clients."""

_MAX_DEPTH: Final = 4
"""How many times a recursive ``$ref`` is followed before only finite arms remain."""

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
        if "const" in schema:
            return st.just(schema["const"]).map(copy.deepcopy)
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"])).map(copy.deepcopy)
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
            low, high = self._integer_bounds(schema)
            step = schema.get("multipleOf", 1)
            if not isinstance(step, int) or step <= 0:
                self.exact = False
                step = 1
            return st.integers(-(-low // step), high // step).map(lambda n: n * step)
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

    def _number(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        if "multipleOf" in schema:
            self.exact = False  # only the integers drawn can be exact multiples
            return self._typed("integer", schema, 0)
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
            values = [schema["const"]] if "const" in schema else schema["enum"]
            return {_json_type(value) for value in values}
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

    def deref(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
            schema, seen = self.resolve(schema["$ref"]), seen + 1
        return schema


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
    generator = _Generator(tool.input_schema)
    strategy: st.SearchStrategy[dict[str, Any]] = generator.valid(tool.input_schema)
    if not generator.exact:
        accepts = Draft202012Validator(
            tool.input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).is_valid
        strategy = strategy.filter(accepts)
    return strategy


@dataclasses.dataclass(frozen=True)
class _Invalid:
    """One invalid argument object and where it goes wrong."""

    arguments: dict[str, Any]
    path: str
    kind: str


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


_KINDS: Final = ("type", "missing", "extra", "value", "format")


def _mutations(generator: _Generator, spot: _Spot) -> list[tuple[str, Any]]:
    """Each way to break ``spot``: (kind, detail) pairs for ``_invalid_cases``."""
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
def _invalid_cases(
    draw: st.DrawFn, generator: _Generator, valid: st.SearchStrategy[dict[str, Any]]
) -> _Invalid:
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
        values = [spot.schema["const"]] if "const" in spot.schema else spot.schema["enum"]
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
    return _Invalid(arguments, _pointer(path), kind)


def _invalid_strategy(tool: Tool) -> st.SearchStrategy[_Invalid]:
    # A "format" case may pass the schema (date-time has no checker by default)
    # and is refused by conversion instead; every other case must fail the schema.
    # Judged by the published schema, not the tool's compiled validator, which
    # is part of what check_tool tests.
    accepts = Draft202012Validator(
        tool.input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).is_valid
    generator = _Generator(tool.input_schema)
    return _invalid_cases(generator, arguments_for(tool)).filter(
        lambda case: case.kind == "format" or not accepts(case.arguments)
    )


def invalid_arguments_for(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy for argument objects that ``tool`` must refuse.

    Each starts from a valid object and breaks one thing: a value of the
    wrong JSON type (at any depth), a value outside an ``enum``, a
    missing required property, an unexpected property, or a malformed
    date, time or UUID string. A tool that takes no arguments still refuses
    unexpected ones; one whose parameters are all ``Any`` may have nothing to
    break, and Hypothesis then reports the strategy as unsatisfiable.

    Args:
        tool: A registered tool, such as ``app.tools["add"]``.
    """
    return _invalid_strategy(tool).map(lambda case: case.arguments)


# -- in-memory calls -----------------------------------------------------------

_CLIENT_INFO: Final = {"name": "iccm-network.testing", "version": __version__}


class LocalConnection:
    """One connection to an app with no socket: the server's protocol, in memory.

    Frames are JSON text through ``ServerProtocol`` exactly as on the wire;
    calls run as the server runs them (sync tools in a worker thread, the
    tool's timeout applied, a ``Context`` for the tools that ask for one).
    The ``initialize`` handshake, or for stateless revisions the ``_meta``
    envelope, is added for you.

    Args:
        app: The app whose tools to serve.
        protocol_version: The MCP revision to speak.
        tools: Serve these tools instead of ``app.tools`` (for instrumented copies).
    """

    def __init__(
        self,
        app: App,
        *,
        protocol_version: str = LATEST_HANDSHAKE_VERSION,
        tools: Mapping[str, Tool] | None = None,
    ) -> None:
        if protocol_version not in ALL_VERSIONS:
            raise ValueError(
                f"unknown protocol version {protocol_version!r}; expected one of {ALL_VERSIONS}"
            )
        info = ServerInfo(
            name=app.name, version=app.version, title=app.title, instructions=app.instructions
        )
        settings = app.settings()
        self.protocol_version = protocol_version
        self.notifications: list[dict[str, Any]] = []
        """Every notification the server sent (``notifications/progress``), in order."""
        self._protocol = ServerProtocol(
            RouteTable(app.tools if tools is None else tools),
            info,
            max_in_flight=settings.max_in_flight,
        )
        self._default_timeout = settings.tool_timeout
        self._initialized = protocol_version in MODERN_VERSIONS
        self._next_id = 0

    async def send(self, message: Any) -> list[Any]:
        """Send one frame and run what it asks for; return every frame sent back.

        Args:
            message: A JSON-RPC message or batch, or raw frame text.

        Returns:
            The frames the server sent in reply, parsed, in order: replies and
            any ``notifications/progress``.
        """
        text = message if isinstance(message, str) else json.dumps(message)
        self._protocol.receive_text(text)
        frames = self._protocol.data_to_send()
        while calls := self._protocol.calls_to_run():
            outcomes = await asyncio.gather(*(self._run(call, frames) for call in calls))
            for call, outcome in zip(calls, outcomes, strict=True):
                self._protocol.complete(call, outcome)
            frames.extend(self._protocol.data_to_send())
        parsed = [json.loads(frame) for frame in frames]
        self.notifications.extend(
            frame for frame in parsed if isinstance(frame, dict) and "id" not in frame
        )
        return parsed

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; return its JSON-RPC reply (``result`` or ``error``).

        Args:
            method: The method, such as ``"tools/list"``.
            params: Its params; the ``_meta`` envelope is added for stateless revisions.
        """
        if not self._initialized:
            self._initialized = True
            reply = await self.request(
                "initialize",
                {
                    "protocolVersion": self.protocol_version,
                    "capabilities": {},
                    "clientInfo": _CLIENT_INFO,
                },
            )
            await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            if reply.get("result", {}).get("protocolVersion") != self.protocol_version:
                raise RuntimeError(f"initialize did not negotiate {self.protocol_version}: {reply}")
        self._next_id += 1
        request_id = self._next_id
        body = dict(params or {})
        if self.protocol_version in MODERN_VERSIONS:
            body["_meta"] = {
                META_PROTOCOL_VERSION: self.protocol_version,
                META_CLIENT_CAPABILITIES: {},
                META_CLIENT_INFO: _CLIENT_INFO,
                **body.get("_meta", {}),
            }
        frames = await self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body}
        )
        for frame in frames:
            if isinstance(frame, dict) and frame.get("id") == request_id:
                return frame
        raise RuntimeError(f"no reply to {method} (request id {request_id}): {frames}")

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool; return its ``tools/call`` result.

        Args:
            name: The tool's name.
            arguments: Its arguments, as JSON-able data.

        Raises:
            MCPError: The server answered with a JSON-RPC error (its subclass
                by code, such as ``InvalidParams`` for -32602).
        """
        reply = await self.request("tools/call", {"name": name, "arguments": dict(arguments or {})})
        if "error" in reply:
            error = reply["error"]
            cls = error_class_for_code(error["code"])
            raise cls(error["message"], data=error.get("data"), code=error["code"])
        result: dict[str, Any] = reply["result"]
        return result

    async def _run(self, call: ToolCall, frames: list[str]) -> Any:
        tool = call.tool
        kwargs = call.arguments
        if tool.context_parameter is not None:

            async def send_progress(params: dict[str, Any]) -> None:
                frames.append(self._protocol.progress_frame(params))

            kwargs[tool.context_parameter] = Context(
                request_id=call.request_id,
                protocol_version=call.features.version,
                client_info=call.client_info,
                progress_token=call.progress_token,
                send_progress=send_progress,
            )
        timeout = tool.timeout if tool.timeout is not None else self._default_timeout
        started = time.perf_counter()
        try:
            work = tool.fn(**kwargs) if tool.is_async else asyncio.to_thread(tool.fn, **kwargs)
            return await (work if timeout is None else asyncio.wait_for(work, timeout))
        except asyncio.TimeoutError as exc:
            # A tool may raise TimeoutError of its own; only ours has used up the time.
            if timeout is not None and time.perf_counter() - started >= timeout:
                return CallTimedOut(timeout)
            return exc
        except Exception as exc:
            return exc


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    raise RuntimeError(f"{name}() cannot run inside an event loop; use `await a{name}(...)`")


async def arequest(
    app: App,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Send one request to ``app`` in memory; return the raw JSON-RPC reply.

    Args:
        app: The app.
        method: The method, such as ``"tools/call"``.
        params: Its params.
        protocol_version: The MCP revision to speak.
    """
    return await LocalConnection(app, protocol_version=protocol_version).request(method, params)


def request(
    app: App,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Synchronous ``arequest``, for tests that are not coroutines.

    Args:
        app: The app.
        method: The method, such as ``"tools/call"``.
        params: Its params.
        protocol_version: The MCP revision to speak.
    """
    return _run_sync(
        lambda: arequest(app, method, params, protocol_version=protocol_version), "request"
    )


async def acall(
    app: App,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Call one of ``app``'s tools in memory; return the ``tools/call`` result.

    Args:
        app: The app.
        name: The tool's name.
        arguments: Its arguments.
        protocol_version: The MCP revision to speak.

    Raises:
        MCPError: The server answered with a JSON-RPC error.
    """
    return await LocalConnection(app, protocol_version=protocol_version).call(name, arguments)


def call(
    app: App,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Synchronous ``acall``: ``call(app, "add", {"a": 1, "b": 2})["isError"] is False``.

    Args:
        app: The app.
        name: The tool's name.
        arguments: Its arguments.
        protocol_version: The MCP revision to speak.

    Raises:
        MCPError: The server answered with a JSON-RPC error.
    """
    return _run_sync(lambda: acall(app, name, arguments, protocol_version=protocol_version), "call")


# -- check_app -----------------------------------------------------------------


def _mismatch(value: Any, hint: Any, path: str) -> str | None:
    """Why ``value`` is not of the declared type ``hint``, or ``None`` when it is."""
    hint = strip_annotated(hint)
    while hasattr(hint, "__supertype__"):  # typing.NewType
        hint = hint.__supertype__
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    found = f"{path or 'argument'} is {type(value).__qualname__} {value!r:.60}, expected {hint!r}"
    if hint is Any:
        return None
    if hint is None or hint is NONE_TYPE:
        return None if value is None else found
    if hint in (bool, int, float, str):
        return None if type(value) is hint else found
    if origin is typing.Literal:
        return None if any(type(value) is type(a) and value == a for a in args) else found
    if origin in UNION_ORIGINS:
        return None if any(_mismatch(value, arm, path) is None for arm in args) else found
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum) or issubclass(hint, (uuid.UUID, PurePath, datetime.time)):
            return None if isinstance(value, hint) else found
        if issubclass(hint, datetime.date):
            exact = issubclass(hint, datetime.datetime) or not isinstance(value, datetime.datetime)
            return None if isinstance(value, hint) and exact else found
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):
                return found
            return _first(
                _mismatch(getattr(value, name), field_hint, f"{path}/{name}")
                for name, field_hint, _, _ in record_fields(hint)
            )
        if typing_extensions.is_typeddict(hint):
            fields = {name: (h, req) for name, h, _, req in record_fields(hint)}
            if not isinstance(value, dict) or not value.keys() <= fields.keys():
                return found
            missing = [name for name, (_, req) in fields.items() if req and name not in value]
            if missing:
                return f"{path}/{missing[0]} is missing from {value!r:.60}"
            return _first(
                _mismatch(item, fields[name][0], f"{path}/{name}") for name, item in value.items()
            )
    if hint in LIST_ORIGINS or origin in LIST_ORIGINS:
        if type(value) is not list:
            return found
        return _each(value, args[0] if args else Any, path)
    if hint is tuple or origin is tuple:
        if type(value) is not tuple:
            return found
        if len(args) == 2 and args[1] is Ellipsis:
            return _each(value, args[0], path)
        if args and len(args) != len(value):
            return found
        return _first(
            _mismatch(item, arm, f"{path}/{i}")
            for i, (item, arm) in enumerate(zip(value, args, strict=True))
        )
    if hint in SET_ORIGINS or origin in SET_ORIGINS:
        expected = frozenset if (origin or hint) is frozenset else set
        if type(value) is not expected:
            return found
        return _each(value, args[0] if args else Any, path)
    if hint in DICT_ORIGINS or origin in DICT_ORIGINS:
        if type(value) is not dict or not all(type(k) is str for k in value):
            return found
        return _first(
            _mismatch(item, args[1] if args else Any, f"{path}/{k}") for k, item in value.items()
        )
    return None  # not a type this framework converts; nothing more to say


def _each(values: Iterable[Any], hint: Any, path: str) -> str | None:
    return _first(_mismatch(item, hint, f"{path}/{i}") for i, item in enumerate(values))


def _first(problems: Iterable[str | None]) -> str | None:
    return next((problem for problem in problems if problem is not None), None)


class _Probe:
    """Stands in for a tool's function: records and type-checks what reaches it."""

    def __init__(self, tool: Tool, run: bool) -> None:
        self.tool = tool
        self.run = run
        self.calls: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.hints = _declared_hints(tool)
        try:
            self.signature: inspect.Signature | None = inspect.signature(tool.fn)
        except (TypeError, ValueError):
            self.signature = None

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(dict(kwargs))
        if self.signature is not None:
            try:
                self.signature.bind(**kwargs)
            except TypeError as exc:
                self.problems.append(f"arguments it cannot take: {exc}")
        for name, value in kwargs.items():
            if name == self.tool.context_parameter:
                if not isinstance(value, Context):
                    self.problems.append(f"{name} is {value!r}, expected a Context")
            else:
                problem = _mismatch(value, self.hints.get(name, Any), f"/{name}")
                if problem is not None:
                    self.problems.append(problem)
        if not self.run:
            return None
        fn = self.tool.fn
        if self.tool.is_async:
            return await fn(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)


def _declared_hints(tool: Tool) -> dict[str, Any]:
    """The parameters' type hints; empty when the function has none to read.

    A hand-written ``input_schema`` skips conversion, so its function receives
    plain JSON: its hints are checked against that, which is what it gets.
    """
    try:
        params, hints, _, _ = resolve_parameters(tool.fn)
    except ToolDefinitionError:
        return {}  # such as an MCPServer handler taking **arguments
    return {param.name: hints[param.name] for param in params}


def _validation_errors(reply: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The failing paths of a refused call, or ``None`` if it was not refused as invalid."""
    if "error" in reply:
        error = reply["error"]
        data = error.get("data")
        if error.get("code") == InvalidParams.default_code and isinstance(data, dict):
            errors = data.get("errors")
            return errors if isinstance(errors, list) else None
        return None
    result = reply.get("result", {})
    data = result.get("_meta", {}).get(ERROR_DATA_META_KEY)
    if result.get("isError") is True and isinstance(data, dict):
        errors = data.get("errors")
        return errors if isinstance(errors, list) else None
    return None


def _covers(reported: str, path: str) -> bool:
    return path == reported or path.startswith(reported + "/") or reported == ""


def check_tool(
    app: App,
    name: str,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    run_tools: bool = False,
    max_examples: int | None = None,
) -> None:
    """Property-test one tool of ``app``; see ``check_app``.

    Args:
        app: The app.
        name: The tool's name.
        protocol_version: The MCP revision the calls are made under.
        run_tools: Also run the real function on valid arguments, and check
            it neither fails unexpectedly nor breaks its ``outputSchema``.
        max_examples: Examples per property; defaults to the Hypothesis
            profile's setting.

    Raises:
        AssertionError: A property failed; Hypothesis has shrunk the example.
    """
    tool = app.tools[name]
    Draft202012Validator.check_schema(tool.input_schema)
    if tool.output_schema is not None:
        Draft202012Validator.check_schema(tool.output_schema)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("check_app() and check_tool() must run outside an event loop")

    published = Draft202012Validator(
        tool.input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    probe = _Probe(tool, run_tools)
    instrumented = dataclasses.replace(tool, fn=probe, is_async=True)
    connection = LocalConnection(
        app, protocol_version=protocol_version, tools={**app.tools, name: instrumented}
    )
    output_check = (
        Draft202012Validator(tool.output_schema).iter_errors
        if tool.output_schema is not None
        else None
    )
    loop = asyncio.new_event_loop()

    def send(arguments: dict[str, Any]) -> dict[str, Any]:
        probe.calls.clear()
        probe.problems.clear()
        return loop.run_until_complete(
            connection.request("tools/call", {"name": name, "arguments": arguments})
        )

    def accepts_valid_arguments(arguments: dict[str, Any]) -> None:
        where = f"tool {name!r} with arguments {arguments!r}"
        errors = [e.message for e in published.iter_errors(arguments)]
        assert not errors, f"{where}: generated arguments break the schema: {errors}"
        reply = send(arguments)
        assert "result" in reply, f"{where}: valid arguments were refused: {reply}"
        result = reply["result"]
        assert len(probe.calls) == 1, f"{where}: the function was not called: {result}"
        assert not probe.problems, f"{where}: the function received {probe.problems[0]}"
        expected = set(arguments) | {tool.context_parameter} - {None}
        assert set(probe.calls[0]) == expected, (
            f"{where}: the function received {sorted(probe.calls[0])}"
        )
        meta = result.get("_meta", {}).get(ERROR_DATA_META_KEY)
        if result.get("isError"):
            assert run_tools and not (isinstance(meta, dict) and "correlationId" in meta), (
                f"{where}: the call failed: {result['content']}"
            )
        elif run_tools and output_check is not None and "structuredContent" in result:
            broken = [e.message for e in output_check(result["structuredContent"])]
            assert not broken, f"{where}: structuredContent breaks the outputSchema: {broken}"

    def refuses_invalid_arguments(case: _Invalid) -> None:
        where = f"tool {name!r} with {case.kind} at {case.path!r}: {case.arguments!r}"
        reply = send(case.arguments)
        assert not probe.calls, f"{where}: invalid arguments reached the function: {reply}"
        errors = _validation_errors(reply)
        assert errors, f"{where}: not refused as invalid params: {reply}"
        paths = [str(error.get("path")) for error in errors]
        assert any(_covers(p, case.path) for p in paths), (
            f"{where}: the errors name {paths}, not {case.path!r}"
        )

    tests: list[Callable[[], None]] = [given(arguments_for(tool))(accepts_valid_arguments)]
    if _has_invalid_cases(tool):
        tests.append(given(_invalid_strategy(tool))(refuses_invalid_arguments))
    try:
        for test in tests:
            if max_examples is not None:
                test = hypothesis_settings(max_examples=max_examples)(test)
            test()
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _has_invalid_cases(tool: Tool) -> bool:
    """Whether any argument object can be wrong: false only for all-``Any`` open schemas."""
    schema = tool.input_schema
    if schema.get("additionalProperties") is False or schema.get("required"):
        return True
    generator = _Generator(schema)
    return any(
        generator.allowed_types(sub) is not None for sub in schema.get("properties", {}).values()
    )


def check_app(
    app: App,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    run_tools: bool = False,
    max_examples: int | None = None,
) -> None:
    """Property-test every tool of ``app`` through the full protocol path.

    For each tool: its schemas are valid Draft 2020-12; every argument set
    generated from its ``inputSchema`` is accepted and reaches the function
    converted to the declared Python types (dataclass instances, enum
    members, datetimes...); every generated invalid set is refused with
    -32602 (an ``isError`` result from 2025-11-25) naming the failing path,
    and never reaches the function. The function body is replaced by a probe
    unless ``run_tools`` is true. Call it from a plain (non-async) test; the
    Hypothesis profile in effect decides the number of examples.

    Args:
        app: The app to check.
        protocol_version: The MCP revision the calls are made under.
        run_tools: Also run the real functions on valid arguments.
        max_examples: Examples per property, overriding the profile.

    Raises:
        AssertionError: A property failed; the message names the tool, the
            arguments (shrunk by Hypothesis) and what went wrong.
    """
    for name in app.tools:
        check_tool(
            app,
            name,
            protocol_version=protocol_version,
            run_tools=run_tools,
            max_examples=max_examples,
        )
