"""A server whose tools use every annotation iccm-network supports.

It is the project's own property-test target (``tests/test_testing.py`` runs
``check_app`` on it) and a catalogue for readers: each tool shows one family
of type hints and the Python values its function receives. Run it with
``python examples/everything.py`` and list its schemas with
``iccm-network tools ws://localhost:8000``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from typing_extensions import NotRequired, Required, TypedDict

from iccm_network import App, Context

app = App("everything", version="1.0.0")


class Color(enum.Enum):
    """A colour, sent as its name."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3


@dataclass
class Point:
    """A point in the plane.

    Args:
        x: Horizontal position.
        y: Vertical position.
        label: An optional name for the point.
    """

    x: float
    y: float
    label: str | None = None


@dataclass
class Shape:
    """A named polygon.

    Args:
        name: What to call it.
        points: Its corners, in order.
        color: Its fill.
    """

    name: str
    points: list[Point]
    color: Color = Color.RED
    tags: set[str] = field(default_factory=set)


@dataclass
class TreeNode:
    """A tree of integers; it refers to itself, so its schema uses ``$defs``."""

    value: int
    children: list[TreeNode] = field(default_factory=list)


class Address(TypedDict):
    """A postal address.

    Args:
        street: Street and number.
        city: The city.
        postcode: Optional postcode.
    """

    street: str
    city: str
    postcode: NotRequired[str]


class SearchOptions(TypedDict, total=False):
    query: Required[str]
    limit: int
    since: datetime.date


def _describe(value: Any) -> Any:
    """A JSON-able account of what a tool received, Python types included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, "fields": _describe(dataclasses.asdict(value))}
    if isinstance(value, enum.Enum):
        return {"type": type(value).__name__, "member": value.name}
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_describe(v) for v in items]
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID, Path)):
        return {"type": type(value).__name__, "value": str(value)}
    return value


@app.tool
def scalars(
    text: str, count: int, ratio: float, flag: bool, nothing: None, anything: Any
) -> dict[str, Any]:
    """Take one of each JSON scalar, plus anything at all.

    Args:
        text: Any string.
        count: Any integer.
        ratio: Any number; an integer arrives as a float.
        flag: True or false.
        nothing: Only null.
        anything: Any JSON value.
    """
    return {"text": text, "count": count, "ratio": ratio, "flag": flag, "anything": anything}


@app.tool
def containers(
    items: list[int],
    pair: tuple[str, int],
    floats: tuple[float, ...],
    tags: set[str],
    scores: dict[str, float],
    raw: list[Any] | None = None,
) -> list[Any]:
    """Take the container types: list, fixed and variable tuples, set, dict.

    Args:
        items: A list of integers.
        pair: Exactly a string and an integer.
        floats: Any number of numbers.
        tags: Distinct strings.
        scores: Names to numbers.
        raw: A list of anything.
    """
    return [items, list(pair), list(floats), sorted(tags), scores, raw]


@app.tool
def unions(
    maybe: Optional[int],  # noqa: UP045 - this tool exists to show the old spelling
    either: Union[int, str],  # noqa: UP007
    modern: str | None = None,
    when: datetime.datetime | str = "soon",
) -> str:
    """Take Optional, Union and ``X | Y`` in their old and new spellings.

    Args:
        maybe: An integer or null.
        either: An integer or a string.
        modern: A string or null.
        when: A timestamp, or free text such as "soon".
    """
    return f"{maybe!r} {either!r} {modern!r} {when!r}"


@app.tool
def choices(
    mode: Literal["fast", "slow"],
    color: Color,
    priority: Priority,
    mixed: Literal[1, "one", True] = 1,
    only: Literal["x"] = "x",
) -> dict[str, Any]:
    """Take literals and enums: the function receives enum members.

    Args:
        mode: How to go.
        color: A colour name.
        priority: 1, 2 or 3.
        mixed: A literal whose values have different JSON types.
        only: A one-value literal.
    """
    return {"mode": mode, "color": color.name, "priority": priority.name, "mixed": mixed}


@app.tool
def records(address: Address, options: SearchOptions, point: Point, shape: Shape) -> dict[str, Any]:
    """Take TypedDicts (with Required/NotRequired) and dataclasses.

    Args:
        address: A TypedDict with an optional key.
        options: A total=False TypedDict with one required key.
        point: A dataclass with a default.
        shape: A dataclass of dataclasses and an enum.
    """
    return {"address": address, "options": _describe(options), "shape": _describe(shape)}


@app.tool
def stamps(
    when: datetime.datetime,
    day: datetime.date,
    at: datetime.time,
    ident: uuid.UUID,
    path: Path,
) -> dict[str, Any]:
    """Take the string formats: date-time, date, time, uuid and a path.

    Args:
        when: A timestamp (RFC 3339).
        day: A calendar date.
        at: A time of day.
        ident: A UUID.
        path: A filesystem path.
    """
    return {"received": _describe([when, day, at, ident, path])}


@app.tool
def described(
    count: Annotated[int, "How many times to repeat"],
    word: Annotated[str, "The word to repeat"] = "echo",
) -> str:
    """Take parameters described with Annotated instead of the docstring."""
    return " ".join([word] * min(count, 3))


@app.tool
def nested(
    groups: dict[str, list[Point]],
    matrix: list[list[float]],
    lookup: dict[str, Optional[Color]],  # noqa: UP045
    tree: TreeNode,
    shapes: Optional[list[Shape]] = None,  # noqa: UP045
) -> dict[str, Any]:
    """Take nested combinations, including a recursive dataclass.

    Args:
        groups: Named lists of points.
        matrix: Rows of numbers.
        lookup: Names to colours or null.
        tree: A tree of integers.
        shapes: Optional list of shapes.
    """
    return {"groups": _describe(groups), "tree": _describe(tree), "shapes": _describe(shapes)}


@app.tool(annotations={"readOnlyHint": True})
def defaults(
    text: str = "hi",
    count: int = 3,
    ratio: float = 0.5,
    flag: bool = False,
    color: Color = Color.GREEN,
    day: datetime.date = datetime.date(2024, 1, 1),
    tags: tuple[str, ...] = ("a", "b"),
) -> str:
    """Every parameter optional, each default published in the schema.

    Args:
        text: A string.
        count: An integer.
        ratio: A number.
        flag: A boolean.
        color: A colour.
        day: A date.
        tags: Some strings.
    """
    return f"{text} {count} {ratio} {flag} {color.name} {day} {tags}"


@app.tool
async def progress(steps: int, ctx: Context) -> int:
    """An async tool that reports progress through its Context.

    Args:
        steps: How many steps to report (at most 5 are sent).
    """
    for step in range(min(steps, 5)):
        await ctx.report_progress(step + 1, total=steps)
    return steps


if __name__ == "__main__":
    app.run()
