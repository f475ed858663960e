"""Between JSON and the declared Python types, in both directions, without I/O.

``build_converter`` compiles, once per tool, a function that turns validated
JSON arguments into the parameter types (a dataclass parameter receives an
instance, an ``Enum`` its member). It returns ``None`` when every parameter is
JSON-native already, so that the common call skips conversion entirely.

``to_jsonable`` goes the other way for a tool's return value.

``resolve_parameters`` and ``record_fields`` read signatures, dataclasses and
TypedDicts; ``schema`` uses them too, so that the published schema and the
conversion can never disagree about which parameters and fields there are.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import enum
import functools
import inspect
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

import typing_extensions

from iccm_network.context import Context
from iccm_network.errors import ToolDefinitionError

__all__ = [
    "ArgumentConverter",
    "ConversionError",
    "build_converter",
    "record_fields",
    "resolve_parameters",
    "strip_annotated",
    "to_jsonable",
]

ArgumentConverter = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Turns schema-valid JSON arguments into keyword arguments."""

_Convert = Callable[[Any], Any]
_Accepts = Callable[[Any], bool]
NONE_TYPE = type(None)
_PRIMITIVES = frozenset({str, int, float, bool, NONE_TYPE})
LIST_ORIGINS = frozenset(
    {list, typing.Sequence, typing.MutableSequence, cabc.Sequence, cabc.MutableSequence}
)
SET_ORIGINS = frozenset(
    {set, frozenset, typing.AbstractSet, typing.MutableSet, cabc.Set, cabc.MutableSet}
)
DICT_ORIGINS = frozenset(
    {dict, typing.Mapping, typing.MutableMapping, cabc.Mapping, cabc.MutableMapping}
)
UNION_ORIGINS = frozenset({typing.Union, types.UnionType})
# typing has Required and NotRequired from 3.11; typing_extensions' are its own on 3.10.
_REQUIRED = frozenset({typing_extensions.Required, getattr(typing, "Required", None)}) - {None}
_NOT_REQUIRED = frozenset({typing_extensions.NotRequired, getattr(typing, "NotRequired", None)}) - {
    None
}
_QUALIFIERS = _REQUIRED | _NOT_REQUIRED | {typing_extensions.ReadOnly}


def build_converter(fn: Callable[..., Any]) -> ArgumentConverter | None:
    """Compile the conversion of validated JSON arguments for ``fn``'s parameters.

    Args:
        fn: A tool function that ``function_schema`` accepts.

    Returns:
        A function from JSON arguments to keyword arguments, or ``None`` when
        no parameter needs converting.

    Raises:
        ToolDefinitionError: The signature cannot receive JSON arguments.
    """
    params, hints, _, _ = resolve_parameters(fn)
    compiler = _Compiler()
    converters: dict[str, _Convert] = {}
    for param in params:
        convert = compiler.converter(hints[param.name])
        if convert is not None:
            converters[param.name] = convert
    if not converters:
        return None
    steps = tuple(converters.items())

    def convert_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(arguments)
        problems: list[dict[str, str]] = []
        for name, convert in steps:
            if name in kwargs:
                try:
                    kwargs[name] = convert(kwargs[name])
                except (ValueError, TypeError, OverflowError) as exc:
                    problems.append({"path": _pointer(name), "message": str(exc)})
        if problems:
            raise ConversionError(problems)
        return kwargs

    return convert_arguments


class ConversionError(ValueError):
    """Validated arguments that their declared Python types still refuse.

    Args:
        problems: One ``{"path", "message"}`` per refused parameter, the
            path a JSON Pointer to it.
    """

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['path']}: {p['message']}" for p in problems))
        self.problems = problems


def _pointer(name: str) -> str:
    return "/" + name.replace("~", "~0").replace("/", "~1")


def to_jsonable(value: Any) -> Any:
    """Turn a tool's return value into data ``json.dumps`` accepts.

    Dataclasses become objects, enums their values, dates and times ISO 8601
    strings, UUIDs and paths strings, tuples and sets arrays, and an
    exception object (returned, not raised) the line a traceback ends with.

    Args:
        value: The value to convert.

    Raises:
        TypeError: Some part of ``value`` has no JSON form; the message names its type.
    """
    cls = type(value)
    if cls in _PRIMITIVES:
        return value
    # The common results (flat dicts and lists of scalars) are returned as they are.
    if cls is dict:
        if all(type(k) is str and type(v) in _PRIMITIVES for k, v in value.items()):
            return value
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if cls is list:
        if all(type(v) in _PRIMITIVES for v in value):
            return value
        return [to_jsonable(v) for v in value]
    return _slow_jsonable(value)


def _slow_jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    # Subclasses of the JSON scalars (bool cannot be subclassed).
    for base in (str, int, float):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseException):
        return "".join(traceback.format_exception_only(type(value), value)).strip()
    raise TypeError(f"cannot convert {type(value).__qualname__} to JSON: {value!r:.80}")


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    converted = to_jsonable(key)
    if isinstance(converted, (str, int, float)) and not isinstance(converted, bool):
        return str(converted)
    raise TypeError(f"cannot use {type(key).__qualname__} as a JSON object key: {key!r:.80}")


class _Compiler:
    """Compiles converters; remembers record types so recursive ones terminate."""

    def __init__(self) -> None:
        self._records: dict[type, _Convert | None] = {}

    def converter(self, tp: Any) -> _Convert | None:
        """A compiled conversion for ``tp``; ``None`` when the JSON value already is one."""
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.converter(args[0])
        if hasattr(tp, "__supertype__"):  # typing.NewType
            return self.converter(tp.__supertype__)
        if tp is float:
            return float
        if origin is typing.Literal:
            return _literal_converter(args)
        if origin in UNION_ORIGINS:
            return self._union(args)
        if isinstance(tp, type):
            if issubclass(tp, enum.Enum):
                return tp
            if issubclass(tp, datetime.datetime):
                return _parse_datetime
            if issubclass(tp, datetime.date):
                return datetime.date.fromisoformat
            if issubclass(tp, datetime.time):
                return _parse_time
            if issubclass(tp, (uuid.UUID, PurePath)):
                return tp
            if dataclasses.is_dataclass(tp) or typing_extensions.is_typeddict(tp):
                return self._record(tp)
        if tp is tuple or origin is tuple:
            return self._tuple(args)
        if tp in (set, frozenset) or origin in SET_ORIGINS:
            build: Callable[[Any], Any] = frozenset if (origin or tp) is frozenset else set
            return _each(self.converter(args[0]) if args else None, build)
        if origin in LIST_ORIGINS and args:
            item = self.converter(args[0])
            return None if item is None else _each(item, list)
        if origin in DICT_ORIGINS and len(args) == 2:
            value = self.converter(args[1])
            return None if value is None else _each_value(value)
        return None

    def _tuple(self, args: tuple[Any, ...]) -> _Convert:
        if len(args) == 2 and args[1] is Ellipsis:
            return _each(self.converter(args[0]), tuple)
        if not args:
            return tuple
        items = [self.converter(arg) or _identity for arg in args]
        return lambda v: tuple(convert(x) for convert, x in zip(items, v, strict=True))

    def _record(self, tp: type) -> _Convert | None:
        """Dataclasses are always built; a TypedDict is copied only when a field needs it."""
        if tp in self._records:
            return self._records[tp]
        # A recursive reference meets this forwarder before the real converter exists.
        final: list[_Convert | None] = [None]
        self._records[tp] = lambda v: final[0](v) if final[0] is not None else v
        needed = {
            name: field_convert
            for name, hint, _, _ in record_fields(tp)
            if (field_convert := self.converter(hint)) is not None
        }
        construct = dataclasses.is_dataclass(tp)

        def convert(value: Mapping[str, Any]) -> Any:
            fields = {k: needed[k](v) if k in needed else v for k, v in value.items()}
            return tp(**fields) if construct else fields

        final[0] = convert if construct or needed else None
        self._records[tp] = final[0]
        return final[0]

    def _union(self, args: tuple[Any, ...]) -> _Convert | None:
        arms = [(_accepts(arg), self.converter(arg)) for arg in args]
        if all(convert is None for _, convert in arms):
            return None

        def convert(value: Any) -> Any:
            # The first arm, in declaration order, whose JSON shape fits and whose
            # conversion succeeds wins: ``datetime | str`` keeps "soon" a str.
            error: Exception | None = None
            for accepts, arm_convert in arms:
                if not accepts(value):
                    continue
                if arm_convert is None:
                    return value
                try:
                    return arm_convert(value)
                except (TypeError, ValueError) as exc:
                    error = exc
            if error is not None:
                raise error
            return value

        return convert


def _parse_datetime(value: str) -> datetime.datetime:
    # Before Python 3.11, fromisoformat does not accept the "Z" that JSON often carries.
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(value)


def _parse_time(value: str) -> datetime.time:
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return datetime.time.fromisoformat(value)


def _literal_converter(args: tuple[Any, ...]) -> _Convert | None:
    members = {arg.value: arg for arg in args if isinstance(arg, enum.Enum)}
    if not members:
        return None
    return lambda v: members.get(v, v)


def _identity(value: Any) -> Any:
    return value


def _each(item: _Convert | None, build: Callable[[Any], Any]) -> _Convert:
    """Convert every element of a JSON array, then build the container."""
    if item is None:
        return build
    return lambda values: build(item(x) for x in values)


def _each_value(value: _Convert) -> _Convert:
    return lambda obj: {k: value(x) for k, x in obj.items()}


def _accepts(tp: Any) -> _Accepts:
    """Whether a JSON value has the shape of ``tp`` (cheap, not a full validation)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated or hasattr(tp, "__supertype__"):
        return _accepts(args[0] if origin is typing.Annotated else tp.__supertype__)
    if tp is Any:
        return lambda v: True
    if tp is None or tp is NONE_TYPE:
        return lambda v: v is None
    if tp is bool:
        return lambda v: type(v) is bool
    if tp is int:
        return lambda v: type(v) is int
    if tp is float:
        return lambda v: type(v) in (int, float)
    if origin is typing.Literal:
        values = [a.value if isinstance(a, enum.Enum) else a for a in args]
        return lambda v: any(v == x and type(v) is type(x) for x in values)
    if origin in UNION_ORIGINS:
        arms = [_accepts(arg) for arg in args]
        return lambda v: any(accepts(v) for accepts in arms)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return lambda v: any(v == x and type(v) is type(x) for x in values)
    if isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or typing_extensions.is_typeddict(tp)
    ):
        fields = list(record_fields(tp))
        known = {name for name, _, _, _ in fields}
        required = {name for name, _, _, is_required in fields if is_required}
        return lambda v: isinstance(v, dict) and required <= v.keys() <= known
    if tp is str or (isinstance(tp, type) and issubclass(tp, (datetime.date, datetime.time))):
        return lambda v: isinstance(v, str)
    if isinstance(tp, type) and issubclass(tp, (uuid.UUID, PurePath)):
        return lambda v: isinstance(v, str)
    if tp in (list, tuple, set, frozenset) or origin in (*LIST_ORIGINS, *SET_ORIGINS, tuple):
        return lambda v: isinstance(v, list)
    if tp in DICT_ORIGINS or origin in DICT_ORIGINS:
        return lambda v: isinstance(v, dict)
    return lambda v: True


def resolve_parameters(
    fn: Callable[..., Any],
) -> tuple[list[inspect.Parameter], dict[str, Any], str | None, str]:
    """The JSON parameters of ``fn``, its type hints, its ``Context`` parameter and its name.

    Args:
        fn: The tool function, in any form ``function_schema`` accepts.

    Raises:
        ToolDefinitionError: The signature cannot receive JSON arguments.
    """
    target = _unwrap(fn)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(fn))}"
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(target, include_extras=True)
    except (NameError, TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"tool function {name!r}: cannot read its annotations: {exc}"
        ) from exc
    params: list[inspect.Parameter] = []
    context: str | None = None
    for param in signature.parameters.values():
        where = f"tool function {name!r} parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{where}: *args and **kwargs cannot be described by a schema; "
                "declare each argument"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"{where}: arguments arrive by name, not position")
        if param.name not in hints:
            raise ToolDefinitionError(f"{where}: missing type annotation")
        if _is_context(hints[param.name]):
            context = param.name
        else:
            params.append(param)
    return params, hints, context, name


def _unwrap(fn: Callable[..., Any]) -> Any:
    """The plain function whose annotations describe ``fn``."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.ismethod(target):
        target = target.__func__
    plain = inspect.isfunction(target) or inspect.isbuiltin(target) or isinstance(target, type)
    if not plain and callable(target):
        target = type(target).__call__
    return target


def _is_context(annotation: Any) -> bool:
    annotation = strip_annotated(annotation)
    if annotation is Context:
        return True
    if typing.get_origin(annotation) in UNION_ORIGINS:
        arms = [strip_annotated(a) for a in typing.get_args(annotation)]
        return Context in arms and all(a in (Context, NONE_TYPE) for a in arms)
    return False


def strip_annotated(annotation: Any) -> Any:
    """``T`` for ``Annotated[T, ...]``, however deeply nested; other annotations unchanged.

    Args:
        annotation: A type annotation.
    """
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def record_fields(tp: type) -> Iterator[tuple[str, Any, Any, bool]]:
    """Each field's name, type hint, default (or ``MISSING``) and whether it is required.

    Args:
        tp: A dataclass or TypedDict class.
    """
    # NameError (an unresolvable forward reference) is reported by the caller.
    hints = typing.get_type_hints(tp, include_extras=True)
    if dataclasses.is_dataclass(tp):
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            has_default = f.default is not dataclasses.MISSING
            has_factory = f.default_factory is not dataclasses.MISSING
            yield f.name, hints[f.name], f.default, not (has_default or has_factory)
        return
    required_keys = set(getattr(tp, "__required_keys__", hints))
    for name, hint in hints.items():
        # Qualifiers are read from the hint too: with postponed annotations the
        # TypedDict class itself cannot see them.
        hint, qualifiers = _unqualify(hint)
        if qualifiers & _REQUIRED:
            required_keys.add(name)
        elif qualifiers & _NOT_REQUIRED:
            required_keys.discard(name)
        yield name, hint, dataclasses.MISSING, name in required_keys


def _unqualify(hint: Any) -> tuple[Any, set[Any]]:
    """Strip ``Required``, ``NotRequired`` and ``ReadOnly``, also inside ``Annotated``."""
    qualifiers: set[Any] = set()
    while True:
        origin = typing.get_origin(hint)
        if origin in _QUALIFIERS:
            qualifiers.add(origin)
            hint = typing.get_args(hint)[0]
        elif origin is typing.Annotated and typing.get_origin(hint.__origin__) in _QUALIFIERS:
            inner, more = _unqualify(hint.__origin__)
            return typing.Annotated[(inner, *hint.__metadata__)], qualifiers | more
        else:
            return hint, qualifiers
