"""Docstring parsing: the summary, the prose and per-parameter descriptions.

Three styles are understood, and may even be mixed in one docstring:

* Google: ``Args:`` (or ``Arguments:``, ``Parameters:``, ``Attributes:``)
  followed by indented ``name (type): text`` entries, and ``Returns:``.
* NumPy: a ``Parameters`` heading underlined with dashes, ``name : type``
  entries with indented descriptions, and ``Returns``.
* Sphinx: ``:param name: text``, ``:param type name: text`` and ``:returns:``.

The parser is deliberately forgiving: a docstring it does not understand
yields its prose and no parameter descriptions, never an error.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Docstring", "parse_docstring"]


@dataclass(frozen=True)
class Docstring:
    """A parsed docstring.

    Args:
        summary: The first paragraph, joined into one line.
        description: The summary plus any further prose paragraphs that come
            before the first section, separated by blank lines.
        params: Each documented parameter's description, continuation lines
            joined with spaces.
        returns: The description of the return value, if documented.
    """

    summary: str = ""
    description: str = ""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    returns: str | None = None


_PARAM_SECTIONS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "attributes",
        "keyword args",
        "keyword arguments",
        "other parameters",
    }
)
_RETURN_SECTIONS = frozenset({"returns", "return"})
# Every heading a Google or NumPy docstring commonly uses: any of them ends the prose.
_KNOWN_SECTIONS = (
    _PARAM_SECTIONS
    | _RETURN_SECTIONS
    | {
        "yields",
        "yield",
        "raises",
        "raise",
        "warns",
        "example",
        "examples",
        "note",
        "notes",
        "see also",
        "references",
        "todo",
        "warning",
        "warnings",
    }
)

_GOOGLE_HEADING = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_NUMPY_UNDERLINE = re.compile(r"^-{3,}\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(?:\s+(.*))?$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_FIELD = re.compile(r"^:(\w+)(?:\s+([^:]*?))?:(?:\s+(.*))?$")
# A Google ``Returns:`` line may start with the type, as in ``int: The count.``
_TYPE_PREFIX = re.compile(r"^[\w.]+(?:\[[^\]]*\])?(?:\s*\|\s*[\w.]+(?:\[[^\]]*\])?)*:\s+(.*)$")


def parse_docstring(doc: str | None) -> Docstring:
    """Parse a docstring in Google, NumPy or Sphinx style.

    Args:
        doc: The raw docstring (as in ``fn.__doc__``); ``None`` or blank gives
            an empty ``Docstring``.
    """
    if not doc or not doc.strip():
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    prose_end = _first_section(lines)
    summary, description = _prose(lines[:prose_end])
    params: dict[str, str] = {}
    returns: str | None = None
    i = prose_end
    while i < len(lines):
        line = lines[i]
        heading = _heading(lines, i)
        if heading is not None:
            name, start = heading
            end = _section_end(lines, start, numpy=start == i + 2)
            body = lines[start:end]
            if name in _PARAM_SECTIONS:
                entries = _numpy_entries(body) if start == i + 2 else _google_entries(body)
                for key, text in entries:
                    params.setdefault(key, text)
            elif name in _RETURN_SECTIONS and returns is None:
                returns = _returns_text(body, numpy=start == i + 2)
            i = end
        elif line.startswith(":"):
            end = i + 1
            while end < len(lines) and lines[end][:1].isspace():
                end += 1
            text = " ".join(part.strip() for part in lines[i:end])
            returns = _sphinx_field(text, params, returns)
            i = end
        else:
            i += 1
    return Docstring(summary, description, MappingProxyType(params), returns)


def _heading(lines: list[str], i: int) -> tuple[str, int] | None:
    """The section name and first body line if a section starts at line ``i``."""
    line = lines[i]
    if i + 1 < len(lines) and _NUMPY_UNDERLINE.match(lines[i + 1]) and line.strip():
        return line.strip().lower(), i + 2
    match = _GOOGLE_HEADING.match(line)
    if match and match.group(1).lower() in _KNOWN_SECTIONS:
        return match.group(1).lower(), i + 1
    return None


def _first_section(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if _heading(lines, i) is not None or _SPHINX_FIELD.match(line):
            return i
    return len(lines)


def _prose(lines: list[str]) -> tuple[str, str]:
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line.rstrip())
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        return "", ""
    summary = " ".join(line.strip() for line in paragraphs[0])
    # Later paragraphs keep their line breaks so that lists and examples survive.
    rest = ["\n".join(p) for p in paragraphs[1:]]
    return summary, "\n\n".join([summary, *rest])


def _section_end(lines: list[str], start: int, *, numpy: bool) -> int:
    end = start
    while end < len(lines):
        line = lines[end]
        if numpy:
            next_line = lines[end + 1] if end + 1 < len(lines) else ""
            if line.strip() and _NUMPY_UNDERLINE.match(next_line):
                break
        elif line.strip() and not line[:1].isspace():
            break
        if line.startswith(":") and _SPHINX_FIELD.match(line):
            break
        end += 1
    return end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_entries(body: list[str]) -> list[tuple[str, str]]:
    content = [line for line in body if line.strip()]
    if not content:
        return []
    base = min(_indent(line) for line in content)
    entries: list[tuple[str, list[str]]] = []
    for line in content:
        if _indent(line) == base:
            match = _GOOGLE_ENTRY.match(line.strip())
            if match:
                entries.append((match.group(1), [match.group(2) or ""]))
                continue
        if entries:
            entries[-1][1].append(line.strip())
    return [(name, _join(parts)) for name, parts in entries]


def _numpy_entries(body: list[str]) -> list[tuple[str, str]]:
    entries: list[tuple[list[str], list[str]]] = []
    for line in body:
        if not line.strip():
            continue
        if not line[:1].isspace():
            match = _NUMPY_ENTRY.match(line.strip())
            if match:
                names = [n.strip().lstrip("*") for n in match.group(1).split(",")]
                entries.append((names, []))
                continue
        if entries:
            entries[-1][1].append(line.strip())
    return [(name, _join(parts)) for names, parts in entries for name in names]


def _returns_text(body: list[str], *, numpy: bool) -> str | None:
    stripped = [line.strip() for line in body if line.strip()]
    if not stripped:
        return None
    if numpy:
        # NumPy puts the type (or ``name : type``) flush left, the prose indented.
        prose = [line.strip() for line in body if line.strip() and line[:1].isspace()]
        return _join(prose or stripped)
    text = _join(stripped)
    match = _TYPE_PREFIX.match(text)
    return match.group(1) if match else text


def _sphinx_field(text: str, params: dict[str, str], returns: str | None) -> str | None:
    match = _SPHINX_FIELD.match(text)
    if not match:
        return returns
    kind, arg, body = match.group(1), (match.group(2) or "").split(), match.group(3) or ""
    if kind in {"param", "parameter", "arg", "argument", "key", "keyword"} and arg:
        # ``:param type name:`` puts the name last.
        params.setdefault(arg[-1].lstrip("*"), body.strip())
    elif kind in {"returns", "return"} and returns is None:
        return body.strip() or None
    return returns


def _join(parts: list[str]) -> str:
    return " ".join(part for part in parts if part).strip()
