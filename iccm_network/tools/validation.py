"""JSON Schema checks: ``jsonschema`` decides, ``fastjsonschema`` answers fast.

``jsonschema`` is the authority for every verdict and every error message.
When the optional ``fastjsonschema`` package is installed (``pip install
iccm-network[fast]``), a schema it can judge exactly is also compiled into
Python code by it, and asked first on every call: it answers "valid" about
ten times faster. Only when it says "invalid" does ``jsonschema`` run, to
confirm and to explain.

``fastjsonschema`` implements draft-07, not 2020-12, so it is only asked about
schemas made of keywords whose meaning the two drafts share, and whose
checks it makes at least as strictly (``_judged_alike``). Anything else, such
as ``prefixItems``, ``uniqueItems`` or an enum of numbers (where Python's
``True == 1`` would blur the line), is left to ``jsonschema`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

fastjsonschema: Any
try:
    import fastjsonschema
except ImportError:  # the optional accelerator is not installed
    fastjsonschema = None

__all__ = ["ACCELERATED", "ArgumentValidator", "SchemaError", "check_schema"]

ACCELERATED = fastjsonschema is not None
"""Whether ``fastjsonschema`` is installed and used for the fast path."""

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
# Formats jsonschema does not check here (it lacks the optional packages it
# would need), so fastjsonschema cannot be more lenient about them.
_FORMATS: Final = frozenset(
    name
    for name in ("date-time", "time", "email", "uri")
    if name not in Draft202012Validator.FORMAT_CHECKER.checkers
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
            if value not in _FORMATS:
                return False
        else:
            return False
    return True


def _distinct(value: Any) -> bool:
    # Strings and null compare equal to nothing of another JSON type in Python.
    return value is None or isinstance(value, str)


def check_schema(schema: Any) -> None:
    """Check that ``schema`` is a valid Draft 2020-12 schema.

    Args:
        schema: The schema to check.

    Raises:
        jsonschema.exceptions.SchemaError: It is not; the message says why.
    """
    Draft202012Validator.check_schema(schema)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class ArgumentValidator:
    """A schema compiled once, asked on every call.

    Args:
        schema: A valid Draft 2020-12 schema.
        accelerate: Use ``fastjsonschema`` for the fast path when installed
            and the schema allows it.
    """

    __slots__ = ("_validator", "accelerated", "is_valid")

    def __init__(self, schema: Any, *, accelerate: bool = True) -> None:
        self._validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        self.is_valid: Callable[[Any], bool] = self._validator.is_valid
        self.accelerated = False
        """Whether the fast path is in use for this schema."""
        if accelerate and fastjsonschema is not None and _judged_alike(schema):
            try:
                fast = fastjsonschema.compile(schema, use_default=False)
            except Exception:  # a pattern Python cannot compile, say: jsonschema alone
                return
            self.is_valid = _verdict(fast, fastjsonschema.JsonSchemaValueException)
            self.accelerated = True

    def problems(self, instance: Any) -> list[dict[str, str]]:
        """Every violation, as JSON Pointer ``path`` and ``message``; empty when valid.

        A missing required property is reported at the property's own path,
        which tells a model exactly what to add.

        Args:
            instance: The value to explain.
        """
        problems: list[dict[str, str]] = []
        errors: list[ValidationError] = sorted(
            self._validator.iter_errors(instance),
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


def _verdict(fast: Callable[[Any], Any], invalid: type[Exception]) -> Callable[[Any], bool]:
    def is_valid(instance: Any) -> bool:
        try:
            fast(instance)
        except invalid:
            return False
        return True

    return is_valid
