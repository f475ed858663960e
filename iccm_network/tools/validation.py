"""JSON Schema checks: ``jsonschema`` decides, ``fastjsonschema`` answers fast.

``jsonschema`` is the authority for every verdict and every error message.
A schema ``fastjsonschema`` can judge exactly is also compiled into Python
code by it, and asked first on every call: it answers "valid" about ten times
faster. Only when it says "invalid" does ``jsonschema`` run, to confirm and
to explain.

``fastjsonschema`` implements draft-07, not 2020-12, so it is only asked about
schemas made of keywords whose meaning the two drafts share, and whose
checks it makes at least as strictly (``_judged_alike``). Anything else, such
as ``prefixItems``, ``uniqueItems`` or an enum of numbers (where Python's
``True == 1`` would blur the line), is left to ``jsonschema`` alone. ``format``
keywords are checked by ``jsonschema``'s own format checker on both paths, so
the two cannot disagree about a date.

Both validators are built on a tool's first call rather than at
registration: a registered schema is already known to be valid, so building
them cannot fail, and a server with many tools starts without paying for
them (or for importing ``jsonschema``) up front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as SchemaError

__all__ = ["ArgumentValidator", "SchemaError", "check_schema", "format_checker"]


def __getattr__(name: str) -> Any:
    # ``SchemaError`` is re-exported without importing jsonschema at startup.
    if name == "SchemaError":
        from jsonschema.exceptions import SchemaError

        return SchemaError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ANNOTATIONS: Final = frozenset({"title", "description", "default", "examples", "deprecated"})
_SCHEMA_MAPS: Final = frozenset({"properties", "$defs"})
_SUBSCHEMAS: Final = frozenset({"items", "not"})
_SCHEMA_LISTS: Final = frozenset({"anyOf", "allOf", "oneOf"})
_PLAIN: Final = frozenset(
    {
        "type",
        "required",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    }
)


def _judged_alike(schema: Any) -> bool:
    """Whether draft-07 ``fastjsonschema`` accepts no more than 2020-12 ``jsonschema``."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping):
        return False
    if "$ref" in schema:
        # Draft-07 ignores a $ref's siblings; 2020-12 applies them.
        ref = schema["$ref"]
        return (
            isinstance(ref, str)
            and ref.startswith("#/$defs/")
            and set(schema) <= _ANNOTATIONS | {"$ref", "$defs"}
            and all(_judged_alike(sub) for sub in schema.get("$defs", {}).values())
        )
    for key, value in schema.items():
        if key in _ANNOTATIONS or key in _PLAIN:
            continue
        if key in _SCHEMA_MAPS:
            if not (isinstance(value, Mapping) and all(map(_judged_alike, value.values()))):
                return False
        elif key in _SUBSCHEMAS or key == "additionalProperties":
            if not _judged_alike(value):  # a list under "items" is not a schema
                return False
        elif key in _SCHEMA_LISTS:
            if not (isinstance(value, list) and all(map(_judged_alike, value))):
                return False
        elif key in ("enum", "const"):
            values = value if key == "enum" else [value]
            if not (isinstance(values, list) and all(_distinct(v) for v in values)):
                return False
        elif key == "format":
            # Both paths check formats with jsonschema's own checker.
            if not isinstance(value, str):
                return False
        else:
            return False
    return True


def _distinct(value: Any) -> bool:
    # Strings and null compare equal to nothing of another JSON type in Python.
    return value is None or isinstance(value, str)


def format_checker() -> Any:
    """``jsonschema``'s format checker for Draft 2020-12, which both paths use.

    It checks ``date``, ``uuid``, ``email``, ``ipv4``, ``ipv6`` and ``regex``
    with the standard library, ``date-time`` and ``time`` with
    ``rfc3339-validator``, and ``uri`` and ``uri-reference`` with
    ``rfc3986-validator`` (both dependencies). A format it does not know
    passes, as JSON Schema says it should.
    """
    from jsonschema import Draft202012Validator

    return Draft202012Validator.FORMAT_CHECKER


def check_schema(schema: Any) -> None:
    """Check that ``schema`` is a valid Draft 2020-12 schema.

    Args:
        schema: The schema to check.

    Raises:
        jsonschema.exceptions.SchemaError: It is not; the message says why.
    """
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class ArgumentValidator:
    """A schema compiled on its first use, asked on every call.

    Args:
        schema: A valid Draft 2020-12 schema (checked before it gets here).
        accelerate: Use ``fastjsonschema`` for the fast path where the
            schema allows it.
    """

    __slots__ = ("_accelerate", "_accelerated", "_schema", "_validator", "is_valid")

    def __init__(self, schema: Any, *, accelerate: bool = True) -> None:
        self._schema = schema
        self._accelerate = accelerate
        self._accelerated: bool | None = None
        self._validator: Draft202012Validator | None = None
        self.is_valid: Callable[[Any], bool] = self._first_is_valid
        """Whether an instance is valid; the first call compiles the schema."""

    @property
    def accelerated(self) -> bool:
        """Whether the fast path is in use for this schema (compiles it if needed)."""
        if self._accelerated is None:
            self.is_valid = self._compile()
        assert self._accelerated is not None
        return self._accelerated

    def _first_is_valid(self, instance: Any) -> bool:
        self.is_valid = self._compile()
        return self.is_valid(instance)

    def _jsonschema(self) -> Draft202012Validator:
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self._schema, format_checker=format_checker())
        return self._validator

    def _compile(self) -> Callable[[Any], bool]:
        self._accelerated = False
        if self._accelerate and _judged_alike(self._schema):
            import fastjsonschema

            formats = {name: _format(name) for name in _formats_in(self._schema)}
            try:
                fast = fastjsonschema.compile(self._schema, formats=formats, use_default=False)
            except Exception:  # a pattern Python cannot compile, say: jsonschema alone
                pass
            else:
                self._accelerated = True
                return _verdict(fast, fastjsonschema.JsonSchemaValueException)
        return self._jsonschema().is_valid

    def problems(self, instance: Any) -> list[dict[str, str]]:
        """Every violation, as JSON Pointer ``path`` and ``message``; empty when valid.

        A missing required property is reported at the property's own path,
        which tells a model exactly what to add.

        Args:
            instance: The value to explain.
        """
        problems: list[dict[str, str]] = []
        errors = sorted(
            self._jsonschema().iter_errors(instance),
            key=lambda error: [str(part) for part in error.absolute_path],
        )
        for error in errors:
            path = _pointer(error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, dict):
                required: Any = error.validator_value
                missing = next(name for name in required if name not in error.instance)
                problems.append({"path": path + _pointer([missing]), "message": error.message})
            else:
                problems.append({"path": path, "message": error.message})
        return problems


def _formats_in(schema: Any) -> set[str]:
    """Every ``format`` value in a schema the fast path accepts."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "format" and isinstance(value, str):
                    found.add(value)
                elif key not in _ANNOTATIONS and key not in ("enum", "const"):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _format(name: str) -> Callable[[str], bool]:
    conforms = format_checker().conforms
    return lambda value: bool(conforms(value, name))


def _verdict(fast: Callable[[Any], Any], invalid: type[Exception]) -> Callable[[Any], bool]:
    def is_valid(instance: Any) -> bool:
        try:
            fast(instance)
        except invalid:
            return False
        return True

    return is_valid
