"""JSON Schema checks: ``jsonschema`` decides, ``jsonschema-rs`` answers fast.

``jsonschema`` is the authority for every verdict and every error message.
When the optional ``jsonschema-rs`` package is installed (``pip install
iccm-network[fast]``) it is asked first, because it answers "valid" some 50
times faster; only when it says "invalid" does ``jsonschema`` run, to confirm
and to explain. Both assert ``format``, so a "valid" from the fast path is a
"valid" from ``jsonschema`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

jsonschema_rs: Any
try:
    import jsonschema_rs
except ImportError:  # the optional accelerator is not installed
    jsonschema_rs = None

__all__ = ["ACCELERATED", "ArgumentValidator", "SchemaError", "check_schema"]

ACCELERATED = jsonschema_rs is not None
"""Whether ``jsonschema-rs`` is installed and used for the fast path."""


def check_schema(schema: Any) -> None:
    """Check that ``schema`` is a valid Draft 2020-12 schema.

    Args:
        schema: The schema to check.

    Raises:
        jsonschema.exceptions.SchemaError: It is not; the message says why.
    """
    if jsonschema_rs is not None and jsonschema_rs.meta.is_valid(schema):
        return
    Draft202012Validator.check_schema(schema)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class ArgumentValidator:
    """A schema compiled once, asked on every call.

    Args:
        schema: A valid Draft 2020-12 schema.
        accelerate: Use ``jsonschema-rs`` for the fast path when installed.
    """

    __slots__ = ("_validator", "is_valid")

    def __init__(self, schema: Any, *, accelerate: bool = True) -> None:
        self._validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        self.is_valid: Callable[[Any], bool] = self._validator.is_valid
        if accelerate and jsonschema_rs is not None:
            try:
                fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
            except Exception:  # e.g. a remote $ref: jsonschema alone will do
                return
            self.is_valid = fast.is_valid

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
