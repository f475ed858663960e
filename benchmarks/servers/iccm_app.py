"""The benchmark tools as an iccm-network ``App``, served on 127.0.0.1.

Run as ``python -m benchmarks.servers.iccm_app [--port N] [--tools 50]``.
It logs and picks its event loop as ``App.run()`` does: stderr at
``MCP_LOG_LEVEL`` (INFO by default), uvloop when installed unless
``MCP_EVENT_LOOP`` says otherwise.
"""

from __future__ import annotations

import asyncio
import cProfile
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from benchmarks.payloads import SLOW_SECONDS, big_text, register_summary
from benchmarks.servers.common import announce, parse_options, released
from iccm_network import App
from iccm_network.logs import configure_logging
from iccm_network.transport.lifecycle import run_event_loop

__all__ = ["build_app", "main"]


class Address(TypedDict):
    """A postal address.

    Attributes:
        street: Street and number.
        city: City.
        postcode: Postal code.
    """

    street: str
    city: str
    postcode: str


async def echo(text: str) -> str:
    """Send the text back.

    Args:
        text: Any text.
    """
    return text


async def register(
    name: str,
    email: str,
    age: int,
    score: int,
    priority: Literal["low", "normal", "high"],
    address: Address,
    tags: list[str],
    note: str = "",
    active: bool = True,
    retries: int = 0,
) -> dict[str, Any]:
    """Register a person: ten fields of strings, integers, an enum, an object and a list.

    Args:
        name: Full name.
        email: Contact address.
        age: Age in years.
        score: A score from 0 to 100.
        priority: How urgent the registration is.
        address: Where the person lives.
        tags: Free-form labels.
        note: A remark.
        active: Whether the account starts active.
        retries: Delivery attempts so far.
    """
    return register_summary(
        {"name": name, "age": age, "priority": priority, "address": address, "tags": tags}
    )


async def slow() -> str:
    """Sleep for a tenth of a second, then answer."""
    await asyncio.sleep(SLOW_SECONDS)
    return "done"


async def blob(size: int) -> str:
    """Return ``size`` characters of text.

    Args:
        size: Characters wanted.
    """
    return big_text(size)


def _lookup(key: str, limit: int = 10, exact: bool = False) -> list[str]:
    """Find entries by key.

    Args:
        key: What to look for.
        limit: At most this many results.
        exact: Match the whole key only.
    """
    return [key] * min(limit, 3)


async def _update(
    record: Address, priority: Literal["low", "normal", "high"], tags: list[str]
) -> dict[str, Any]:
    """Update a record.

    Args:
        record: The new address.
        priority: The new priority.
        tags: Labels to set.
    """
    return {"city": record["city"], "priority": priority, "tags": tags}


def _measure(values: list[float], unit: Literal["m", "s"] = "m") -> float:
    """Add up measurements.

    Args:
        values: The measurements.
        unit: Their unit.
    """
    return sum(values)


_FILLERS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("lookup", _lookup),
    ("update", _update),
    ("measure", _measure),
)


def build_app(tools: int = 4) -> App:
    """The benchmark app: echo, register, slow and blob, plus fillers up to ``tools``.

    Args:
        tools: How many tools to register; at least the four real ones.
    """
    app = App("iccm-benchmark", version="1.0.0", shutdown_grace=1.0)
    for fn in (echo, register, slow, blob):
        app.add_tool(fn)
    for index in range(max(0, tools - 4)):
        prefix, fn = _FILLERS[index % len(_FILLERS)]
        app.add_tool(fn, name=f"{prefix}_{index:02d}")
    return app


async def _serve(app: App, port: int, lifetime: float) -> None:
    async with app.serving(host="127.0.0.1", port=port) as server:
        announce(server.port)
        await released(lifetime)


def main(argv: list[str] | None = None) -> None:
    """Build the app from the command line and serve it until released.

    Args:
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    options = parse_options(__doc__ or "", argv)
    app = build_app(options.tools)
    settings = app.settings()
    configure_logging(settings.log_level)
    if options.profile is None:
        run_event_loop(_serve(app, options.port, options.lifetime), settings.event_loop)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_event_loop(_serve(app, options.port, options.lifetime), settings.event_loop)
    finally:
        profiler.disable()
        profiler.dump_stats(options.profile)


if __name__ == "__main__":
    main()
