"""Godot's server module after the move to iccm-network, runnable with stand-ins.

Before, Godot's ``mcp_server.py`` held its tools, a ``TOOLS`` list, three
``handle_*`` functions that built JSON-RPC replies, an ``if/elif`` router and
a ``websockets.serve`` loop that swallowed bad JSON without replying. After,
the ``TOOLS`` list is handed to ``MCPServer`` as it is, with a handler per
name; the tool functions keep their signatures.

The tool bodies are stand-ins: a bounded in-memory queue instead of Redis and
in-memory conversations instead of Postgres. ``logger_query`` and
``logger_clear`` answer from that queue instead of proxying to Dewey. Run it
with ``MCP_PORT=9060 python examples/migrated/godot.py``; see
``docs/migration.md`` for the walk-through.
"""

from __future__ import annotations

import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Any

from iccm_network import ToolError
from iccm_network.compat import MCPServer

LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
MAX_QUEUE_SIZE = 10_000

# Godot's TOOLS list, unchanged (five of its seven tools shown).
TOOLS: list[dict[str, Any]] = [
    {
        "name": "logger_log",
        "description": "Push a log entry to the logging queue",
        "inputSchema": {
            "type": "object",
            "properties": {
                "component": {"type": "string", "description": "Component name"},
                "level": {"type": "string", "enum": ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]},
                "message": {"type": "string", "description": "Log message"},
                "trace_id": {"type": "string", "description": "Optional trace ID for correlation"},
                "data": {"type": "object", "description": "Optional structured data"},
            },
            "required": ["component", "level", "message"],
        },
    },
    {
        "name": "logger_query",
        "description": "Query logs from storage (proxies to Dewey)",
        "inputSchema": {
            "type": "object",
            "properties": {
                "trace_id": {"type": "string"},
                "component": {"type": "string"},
                "level": {"type": "string"},
                "start_time": {"type": "string"},
                "end_time": {"type": "string"},
                "limit": {"type": "integer", "default": 100},
            },
        },
    },
    {
        "name": "logger_clear",
        "description": "Clear logs from storage (proxies to Dewey)",
        "inputSchema": {
            "type": "object",
            "properties": {"component": {"type": "string"}, "before_time": {"type": "string"}},
        },
    },
    {
        "name": "logger_set_level",
        "description": "Set log level for a component",
        "inputSchema": {
            "type": "object",
            "properties": {
                "component": {"type": "string"},
                "level": {"type": "string", "enum": ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]},
            },
            "required": ["component", "level"],
        },
    },
    {
        "name": "conversation_begin",
        "description": "Start a new conversation and return its ID",
        "inputSchema": {
            "type": "object",
            "properties": {
                "session_id": {
                    "type": "string",
                    "description": "Optional session ID to group conversations",
                },
                "metadata": {
                    "type": "object",
                    "description": "Optional metadata as key-value pairs",
                },
            },
        },
    },
]

# -- stand-ins for Redis and Postgres -------------------------------------------

_queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUE_SIZE)
_levels: dict[str, str] = {}
_conversations: dict[str, dict[str, Any]] = {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


async def logger_log(
    component: str,
    level: str,
    message: str,
    trace_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Queue one log entry (Godot: LPUSH + LTRIM on Redis)."""
    _queue.appendleft(
        {
            "component": component,
            "level": level.upper(),
            "message": message,
            "trace_id": trace_id,
            "data": data,
            "created_at": _now(),
        }
    )
    return {"status": "ok", "message": "Log entry queued."}


async def logger_query(
    trace_id: str | None = None,
    component: str | None = None,
    level: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Filter the queued entries (Godot: forwarded to dewey_query_logs)."""
    if level is not None and level.upper() not in LEVELS:
        raise ToolError(f"Invalid log level {level!r}; expected one of {list(LEVELS)}")
    worst = LEVELS.index(level.upper()) if level is not None else len(LEVELS) - 1
    logs = [
        entry
        for entry in _queue
        if trace_id in (None, entry["trace_id"])
        and component in (None, entry["component"])
        and LEVELS.index(entry["level"]) <= worst
        and (start_time is None or entry["created_at"] >= start_time)
        and (end_time is None or entry["created_at"] <= end_time)
    ]
    return {"logs": logs[:limit], "count": min(len(logs), limit)}


async def logger_clear(
    component: str | None = None, before_time: str | None = None
) -> dict[str, Any]:
    """Drop queued entries (Godot: forwarded to dewey_clear_logs)."""
    kept = [
        entry
        for entry in _queue
        if not (
            component in (None, entry["component"])
            and (before_time is None or entry["created_at"] < before_time)
        )
    ]
    deleted = len(_queue) - len(kept)
    _queue.clear()
    _queue.extend(kept)
    return {"status": "ok", "deleted": deleted}


async def logger_set_level(component: str, level: str) -> dict[str, Any]:
    """Store a component's log level (Godot: HSET logger_config:levels)."""
    _levels[component] = level.upper()
    return {"status": "ok", "component": component, "level": level.upper()}


async def conversation_begin(
    session_id: str | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Start a conversation (Godot: INSERT INTO conversations)."""
    conversation_id = str(uuid.uuid4())
    created_at = _now()
    _conversations[conversation_id] = {"session_id": session_id, "metadata": metadata}
    return {"conversation_id": conversation_id, "session_id": session_id, "created_at": created_at}


# -- the server: replaces handle_initialize, handle_tools_list, handle_tools_call,
# handle_client and the websockets.serve loop ----------------------------------

server = MCPServer(
    "godot",
    "1.0.0",
    tools=TOOLS,  # port: MCP_PORT, read by the library
    handlers={
        "logger_log": logger_log,
        "logger_query": logger_query,
        "logger_clear": logger_clear,
        "logger_set_level": logger_set_level,
        "conversation_begin": conversation_begin,
    },
)
app = server.app

if __name__ == "__main__":
    app.run()
