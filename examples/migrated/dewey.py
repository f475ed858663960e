"""Dewey's server module after the move to iccm-network, runnable with stand-ins.

Before, ``dewey/mcp_server.py`` was a ``DeweyMCPServer`` class of about 330
lines: the tool table, a ``websockets.serve`` loop with the legacy
``(websocket, path)`` handler, a hand-written JSON-RPC dispatcher, error
replies and start/stop. After, it is the same tool table and one
``MCPServer``. The tool bodies below are in-memory stand-ins for
``dewey/tools.py`` (no database), with the same names and arguments; the
real module passes ``handlers={name: getattr(tools, name) for name in TOOLS}``.

Run it with ``MCP_PORT=9020 python examples/migrated/dewey.py``.
See ``docs/migration.md`` for the walk-through.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from iccm_network import ToolError
from iccm_network.compat import MCPServer

# Dewey's ``self.tools``, moved to module level unchanged (six of its tools shown).
TOOLS: dict[str, dict[str, Any]] = {
    "dewey_begin_conversation": {
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
    "dewey_store_message": {
        "description": "Store a single message in a conversation",
        "inputSchema": {
            "type": "object",
            "properties": {
                "conversation_id": {"type": "string", "description": "UUID of the conversation"},
                "role": {"type": "string", "description": "Role: user, assistant, or system"},
                "content": {"type": "string", "description": "Message content"},
                "turn_number": {"type": "integer", "description": "Optional turn number"},
                "metadata": {"type": "object", "description": "Optional metadata"},
            },
            "required": ["conversation_id", "role", "content"],
        },
    },
    "dewey_get_conversation": {
        "description": "Retrieve all messages from a conversation",
        "inputSchema": {
            "type": "object",
            "properties": {
                "conversation_id": {"type": "string", "description": "UUID of the conversation"}
            },
            "required": ["conversation_id"],
        },
    },
    "dewey_list_conversations": {
        "description": "List conversations with pagination and filtering",
        "inputSchema": {
            "type": "object",
            "properties": {
                "session_id": {"type": "string", "description": "Optional session ID filter"},
                "limit": {"type": "integer", "description": "Maximum results (default 20)"},
                "offset": {"type": "integer", "description": "Number to skip (default 0)"},
                "sort_by": {
                    "type": "string",
                    "description": "Sort field: created_at or updated_at",
                },
            },
        },
    },
    "dewey_delete_conversation": {
        "description": "Delete a conversation and all its messages",
        "inputSchema": {
            "type": "object",
            "properties": {
                "conversation_id": {"type": "string", "description": "UUID of the conversation"},
                "force": {"type": "boolean", "description": "Force delete without confirmation"},
            },
            "required": ["conversation_id"],
        },
    },
    "dewey_search": {
        "description": "Full-text search across all messages",
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Search query string"},
                "session_id": {"type": "string", "description": "Optional session ID filter"},
                "limit": {"type": "integer", "description": "Maximum results (default 20)"},
                "offset": {"type": "integer", "description": "Number to skip (default 0)"},
            },
            "required": ["query"],
        },
    },
}


class DeweyToolError(ToolError):
    """``dewey.tools.ToolError``, now rooted in iccm-network's ``ToolError``.

    The caller gets an ``isError`` result with the message; the old JSON-RPC
    error code travels in the error's ``data``.

    Args:
        message: What went wrong.
        code: Dewey's error code, kept for callers that log it.
    """

    def __init__(self, message: str, code: int = -32000) -> None:
        super().__init__(message, data={"code": code})
        self.code = code


# -- stand-ins for dewey/tools.py (the real ones use the asyncpg pool) --------

_conversations: dict[str, dict[str, Any]] = {}
_messages: dict[str, list[dict[str, Any]]] = {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _conversation(conversation_id: str) -> dict[str, Any]:
    try:
        return _conversations[conversation_id]
    except KeyError:
        raise DeweyToolError(f"Conversation {conversation_id} not found", code=-32001) from None


async def dewey_begin_conversation(
    session_id: str | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    conversation_id = str(uuid.uuid4())
    created_at = _now()
    _conversations[conversation_id] = {
        "id": conversation_id,
        "session_id": session_id,
        "metadata": metadata or {},
        "created_at": created_at,
        "updated_at": created_at,
    }
    _messages[conversation_id] = []
    return {"conversation_id": conversation_id, "session_id": session_id, "created_at": created_at}


async def dewey_store_message(
    conversation_id: str,
    role: str,
    content: str,
    turn_number: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if role not in ("user", "assistant", "system", "tool"):
        raise DeweyToolError(f"Invalid role: {role}", code=-32602)
    conversation = _conversation(conversation_id)
    messages = _messages[conversation_id]
    message = {
        "message_id": str(uuid.uuid4()),
        "turn_number": turn_number if turn_number is not None else len(messages) + 1,
        "role": role,
        "content": content,
        "metadata": metadata or {},
        "created_at": _now(),
    }
    messages.append(message)
    conversation["updated_at"] = message["created_at"]
    return {
        "message_id": message["message_id"],
        "conversation_id": conversation_id,
        "turn_number": message["turn_number"],
    }


async def dewey_get_conversation(conversation_id: str) -> dict[str, Any]:
    return {**_conversation(conversation_id), "messages": _messages[conversation_id]}


async def dewey_list_conversations(
    session_id: str | None = None, limit: int = 20, offset: int = 0, sort_by: str = "created_at"
) -> dict[str, Any]:
    if sort_by not in ("created_at", "updated_at"):
        raise DeweyToolError(f"Invalid sort_by: {sort_by}", code=-32602)
    found = [c for c in _conversations.values() if session_id in (None, c["session_id"])]
    found.sort(key=lambda c: str(c[sort_by]), reverse=True)
    return {"conversations": found[offset : offset + limit], "total": len(found)}


async def dewey_delete_conversation(conversation_id: str, force: bool = False) -> dict[str, Any]:
    _conversation(conversation_id)
    deleted = len(_messages.pop(conversation_id))
    del _conversations[conversation_id]
    return {"deleted": True, "messages_deleted": deleted}


async def dewey_search(
    query: str, session_id: str | None = None, limit: int = 20, offset: int = 0
) -> dict[str, Any]:
    hits = [
        {"conversation_id": conversation_id, **message}
        for conversation_id, messages in _messages.items()
        if session_id in (None, _conversations[conversation_id]["session_id"])
        for message in messages
        if query.lower() in message["content"].lower()
    ]
    return {"results": hits[offset : offset + limit], "total": len(hits)}


# -- the server: everything DeweyMCPServer did by hand ------------------------

server = MCPServer(
    "dewey-mcp-server",  # the serverInfo.name Dewey always sent
    "1.0.0",
    tools=TOOLS,  # port: MCP_PORT, read by the library
    handlers={
        "dewey_begin_conversation": dewey_begin_conversation,
        "dewey_store_message": dewey_store_message,
        "dewey_get_conversation": dewey_get_conversation,
        "dewey_list_conversations": dewey_list_conversations,
        "dewey_delete_conversation": dewey_delete_conversation,
        "dewey_search": dewey_search,
    },
)
app = server.app

if __name__ == "__main__":
    app.run()
