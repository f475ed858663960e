"""URI templates for resources: RFC 6570 simple expansion, matched in reverse (pure).

A resource template such as ``file://{path}`` or ``notes://{folder}/{name}``
names the resources a function can read. Reading a URI matches it against
the template and hands the variables to the function.

Supported expressions, decided for this library:

* ``{var}``: RFC 6570 level 1. Expansion percent-encodes everything but the
  unreserved characters, so a value never holds ``/``; the match stops at
  ``/`` and is percent-decoded.
* ``{+var}``: RFC 6570 reserved expansion, and ``{var*}``, the wildcard
  spelling FastMCP users know: the value may span ``/`` (a file path).

Other operators (``{#x}``, ``{/x}``, ``{?x}``...), prefixes (``{x:3}``) and
lists of variables (``{x,y}``) are refused at registration: the server could
not match them back unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

__all__ = ["UriTemplate", "UriTemplateError"]

_EXPRESSION: Final = re.compile(r"\{([^{}]*)\}")
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UriTemplateError(ValueError):
    """A template this library cannot match; the message says why."""


@dataclass(frozen=True, slots=True)
class UriTemplate:
    """A parsed URI template.

    Args:
        template: The template text, such as ``file://{path}``.
        variables: Its variable names, in order.
        pattern: The compiled regular expression that matches a URI.
    """

    template: str
    variables: tuple[str, ...]
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, template: str) -> UriTemplate:
        """Parse ``template``.

        Args:
            template: The template text.

        Raises:
            UriTemplateError: An expression is not ``{var}``, ``{+var}`` or
                ``{var*}``, a variable repeats, or the template has none.
        """
        regex: list[str] = []
        variables: list[str] = []
        position = 0
        for match in _EXPRESSION.finditer(template):
            regex.append(_literal(template[position : match.start()]))
            position = match.end()
            expression = match.group(1)
            spans = expression.startswith("+") or expression.endswith("*")
            name = expression.removeprefix("+").removesuffix("*")
            if not _VARIABLE.fullmatch(name) or (
                expression.startswith("+") and expression.endswith("*")
            ):
                raise UriTemplateError(
                    f"unsupported expression {match.group(0)!r} in URI template {template!r}: "
                    "use {name} for one path segment, or {+name} / {name*} for a value "
                    "that may hold '/'"
                )
            if name in variables:
                raise UriTemplateError(f"variable {name!r} appears twice in {template!r}")
            variables.append(name)
            regex.append(f"(?P<{name}>.+?)" if spans else f"(?P<{name}>[^/?#]+)")
        regex.append(_literal(template[position:]))
        if not variables:
            raise UriTemplateError(f"URI template {template!r} has no {{variable}}")
        return cls(template, tuple(variables), re.compile("".join(regex), re.DOTALL))

    def match(self, uri: str) -> dict[str, str] | None:
        """The variables of ``uri``, percent-decoded, or ``None`` if it does not match.

        Args:
            uri: A URI to read.
        """
        found = self.pattern.fullmatch(uri)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def _literal(text: str) -> str:
    if "{" in text or "}" in text:
        raise UriTemplateError(f"unbalanced brace in URI template near {text!r}")
    return re.escape(text)
