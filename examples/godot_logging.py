"""A Godot-like logging service: components ship log entries, operators query them.

Every iccm-network server ships its own connection events and errors to a
service like this one when ``GODOT_URL`` points at it (it calls
``logger_log``); a Godot built with the library never ships its own
``logger_log`` traffic back to itself. Entries live in a bounded in-memory
buffer (``GODOT_MAX_ENTRIES``, default 10000); the real Godot queues them in
Redis for a worker that writes them to Postgres.

The tools are async because each is a few dictionary operations: no I/O, so
nothing to move off the event loop. Run it with::

    MCP_PORT=9060 python examples/godot_logging.py
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from iccm_network import App, ToolError

Level = Literal["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
SEVERITY: dict[str, int] = {"ERROR": 0, "WARN": 1, "INFO": 2, "DEBUG": 3, "TRACE": 4}


class LogEntry(TypedDict):
    """One stored log entry."""

    id: int
    component: str
    level: Level
    message: str
    trace_id: str | None
    data: dict[str, Any] | None
    created_at: str


app = App(
    "godot",
    version="1.0.0",
    instructions="Central log store. Use logger_query with a trace_id to follow one request.",
)

_entries: deque[LogEntry] = deque(maxlen=int(os.environ.get("GODOT_MAX_ENTRIES", "10000")))
_thresholds: dict[str, Level] = {}
_ids = itertools.count(1)


@app.tool
async def logger_log(
    component: str,
    level: Level,
    message: str,
    trace_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store one log entry.

    Entries less severe than the component's level (see logger_set_level)
    are counted but not stored.

    Args:
        component: The component that logged it, such as "horace".
        level: Severity, from ERROR (most severe) to TRACE.
        message: The log message.
        trace_id: Correlates the entries of one request across components.
        data: Structured detail.
    """
    threshold = _thresholds.get(component, "TRACE")
    if SEVERITY[level] > SEVERITY[threshold]:
        return {"status": "ok", "stored": False}
    entry: LogEntry = {
        "id": next(_ids),
        "component": component,
        "level": level,
        "message": message,
        "trace_id": trace_id,
        "data": data,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    _entries.append(entry)
    return {"status": "ok", "stored": True, "id": entry["id"]}


@app.tool(annotations={"readOnlyHint": True})
async def logger_query(
    component: str | None = None,
    level: Level | None = None,
    trace_id: str | None = None,
    search: str | None = None,
    limit: Annotated[int, "Maximum entries to return, 1-1000"] = 100,
) -> list[LogEntry]:
    """Return stored entries, newest first.

    Args:
        component: Only this component's entries.
        level: Only entries at least this severe.
        trace_id: Only entries with this trace id.
        search: Only entries whose message contains this text (case-insensitive).
        limit: Maximum entries to return, 1-1000.
    """
    if not 1 <= limit <= 1000:
        raise ToolError(f"limit must be between 1 and 1000, got {limit}")
    worst = SEVERITY[level] if level is not None else SEVERITY["TRACE"]
    needle = search.lower() if search is not None else None
    found: list[LogEntry] = []
    for entry in reversed(_entries):
        if (
            component in (None, entry["component"])
            and trace_id in (None, entry["trace_id"])
            and SEVERITY[entry["level"]] <= worst
            and (needle is None or needle in entry["message"].lower())
        ):
            found.append(entry)
            if len(found) == limit:
                break
    return found


@app.tool(annotations={"idempotentHint": True})
async def logger_set_level(component: str, level: Level) -> dict[str, Any]:
    """Set the least severe level stored for a component.

    Args:
        component: The component to configure.
        level: Entries less severe than this are dropped.
    """
    _thresholds[component] = level
    return {"status": "ok", "component": component, "level": level}


@app.tool(annotations={"destructiveHint": True})
async def logger_clear(component: str | None = None) -> dict[str, Any]:
    """Delete stored entries.

    Args:
        component: Only this component's entries; all entries when omitted.
    """
    kept = [e for e in _entries if component is not None and e["component"] != component]
    deleted = len(_entries) - len(kept)
    _entries.clear()
    _entries.extend(kept)
    return {"status": "ok", "deleted": deleted}


if __name__ == "__main__":
    app.run()
