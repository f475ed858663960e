"""Horace's server module after the move to iccm-network, runnable with stand-ins.

Before, ``src/mcp_server.py`` was a ``HoraceMCPServer`` class: the tool table,
a legacy ``(websocket, path)`` handler (which current ``websockets`` no longer
calls), a JSON-RPC dispatcher with four ``except`` branches, and start/stop.
After, the table is handed to ``MCPServer``; one small adapter keeps Horace's
``Tools`` methods, which take the arguments as one dict, and maps Horace's
exceptions the way the old dispatcher did.

``Tools`` below is a stand-in for ``src/tools.py`` (an in-memory catalog, no
database); it accepts any readable file. Run it with
``MCP_PORT=8070 python examples/migrated/horace.py``; see ``docs/migration.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from iccm_network import ToolError
from iccm_network.compat import MCPServer

# Horace's ``self.tools``, moved to module level unchanged.
TOOLS: dict[str, dict[str, Any]] = {
    "horace_register_file": {
        "description": "Register a file with Horace catalog",
        "inputSchema": {
            "type": "object",
            "properties": {
                "file_path": {
                    "type": "string",
                    "description": "Absolute path to file in /mnt/irina_storage/",
                },
                "metadata": {
                    "type": "object",
                    "description": "File metadata",
                    "properties": {
                        "owner": {"type": "string"},
                        "purpose": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "collection": {"type": "string"},
                        "correlation_id": {"type": "string"},
                    },
                },
            },
            "required": ["file_path", "metadata"],
        },
    },
    "horace_search_files": {
        "description": "Search file catalog by metadata",
        "inputSchema": {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}},
                "owner": {"type": "string"},
                "collection": {"type": "string"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
            },
        },
    },
    "horace_get_file_info": {
        "description": "Get detailed metadata for specific file",
        "inputSchema": {
            "type": "object",
            "properties": {"file_id": {"type": "string"}, "include_versions": {"type": "boolean"}},
            "required": ["file_id"],
        },
    },
    "horace_create_collection": {
        "description": "Create or update a file collection",
        "inputSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "file_ids": {"type": "array", "items": {"type": "string"}},
                "metadata": {"type": "object"},
            },
            "required": ["name"],
        },
    },
    "horace_list_collections": {
        "description": "List all collections",
        "inputSchema": {
            "type": "object",
            "properties": {"limit": {"type": "integer"}, "offset": {"type": "integer"}},
        },
    },
    "horace_update_file": {
        "description": "Update file metadata or trigger re-versioning",
        "inputSchema": {
            "type": "object",
            "properties": {
                "file_id": {"type": "string"},
                "metadata": {"type": "object"},
                "check_for_changes": {"type": "boolean"},
            },
            "required": ["file_id"],
        },
    },
    "horace_restore_version": {
        "description": "Restore a file to a previous version",
        "inputSchema": {
            "type": "object",
            "properties": {"file_id": {"type": "string"}, "version": {"type": "integer"}},
            "required": ["file_id", "version"],
        },
    },
}


# -- stand-ins for src/exceptions.py and src/tools.py --------------------------


class HoraceError(Exception):
    """Horace's own failure, with a machine-readable code."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


class DuplicateFileError(HoraceError):
    """The file's content is already registered under ``file_id``."""

    def __init__(self, file_id: str) -> None:
        super().__init__("File already registered", "DUPLICATE_FILE")
        self.file_id = file_id


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Tools:
    """In-memory stand-in for Horace's ``Tools(db)``: one method per tool, each
    taking the call's arguments as a single dict."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}

    def _file(self, file_id: str) -> dict[str, Any]:
        if file_id not in self.files:
            raise HoraceError(f"File {file_id} not found", "FILE_NOT_FOUND")
        return self.files[file_id]

    async def horace_register_file(self, arguments: dict[str, Any]) -> dict[str, Any]:
        path = Path(arguments["file_path"])
        if not path.is_file():
            raise HoraceError(f"File not found: {path}", "FILE_NOT_FOUND")
        # Hashing reads the whole file: off the event loop, as Horace should have.
        checksum = await asyncio.to_thread(_sha256, path)
        for record in self.files.values():
            if record["checksum"] == checksum:
                raise DuplicateFileError(record["file_id"])
        file_id = str(uuid.uuid4())
        version = {"version": 1, "checksum": checksum, "size": path.stat().st_size}
        self.files[file_id] = {
            "file_id": file_id,
            "file_path": str(path),
            "checksum": checksum,
            "metadata": arguments["metadata"],
            "version": 1,
            "versions": [version],
            "registered_at": datetime.now(timezone.utc),  # a datetime: sent as ISO 8601
        }
        return {"file_id": file_id, "checksum": checksum, "version": 1}

    async def horace_search_files(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tags = set(arguments.get("tags", []))
        found = [
            record
            for record in self.files.values()
            if tags <= set(record["metadata"].get("tags", []))
            and arguments.get("owner") in (None, record["metadata"].get("owner"))
            and arguments.get("collection") in (None, record["metadata"].get("collection"))
        ]
        offset = arguments.get("offset", 0)
        page = found[offset : offset + arguments.get("limit", 50)]
        return {"files": [{k: v for k, v in r.items() if k != "versions"} for r in page]}

    async def horace_get_file_info(self, arguments: dict[str, Any]) -> dict[str, Any]:
        record = self._file(arguments["file_id"])
        if arguments.get("include_versions"):
            return record
        return {k: v for k, v in record.items() if k != "versions"}

    async def horace_create_collection(self, arguments: dict[str, Any]) -> dict[str, Any]:
        for file_id in arguments.get("file_ids", []):
            self._file(file_id)
        collection = {
            "name": arguments["name"],
            "description": arguments.get("description", ""),
            "file_ids": arguments.get("file_ids", []),
            "metadata": arguments.get("metadata", {}),
        }
        self.collections[arguments["name"]] = collection
        return collection

    async def horace_list_collections(self, arguments: dict[str, Any]) -> dict[str, Any]:
        offset = arguments.get("offset", 0)
        names = sorted(self.collections)[offset : offset + arguments.get("limit", 50)]
        return {"collections": [self.collections[name] for name in names]}

    async def horace_update_file(self, arguments: dict[str, Any]) -> dict[str, Any]:
        record = self._file(arguments["file_id"])
        record["metadata"] = {**record["metadata"], **arguments.get("metadata", {})}
        changed = False
        if arguments.get("check_for_changes"):
            checksum = await asyncio.to_thread(_sha256, Path(record["file_path"]))
            changed = checksum != record["checksum"]
            if changed:
                record["version"] += 1
                record["checksum"] = checksum
                record["versions"].append({"version": record["version"], "checksum": checksum})
        return {"file_id": record["file_id"], "version": record["version"], "changed": changed}

    async def horace_restore_version(self, arguments: dict[str, Any]) -> dict[str, Any]:
        record = self._file(arguments["file_id"])
        wanted = [v for v in record["versions"] if v["version"] == arguments["version"]]
        if not wanted:
            raise HoraceError(f"Version {arguments['version']} not found", "VERSION_NOT_FOUND")
        record["checksum"] = wanted[0]["checksum"]
        return {"file_id": record["file_id"], "restored_version": arguments["version"]}


# -- the adapter and the server: everything HoraceMCPServer did by hand --------


def horace_handler(
    method: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Call a ``Tools`` method with the arguments dict, mapping Horace's errors.

    A duplicate file is still a success that names the existing file, as the
    old dispatcher made it; any other ``HoraceError`` becomes a tool error.
    """

    async def handler(**arguments: Any) -> dict[str, Any]:
        try:
            return await method(arguments)
        except DuplicateFileError as exc:
            return {"file_id": exc.file_id, "message": exc.message}
        except HoraceError as exc:
            raise ToolError(exc.message, data={"error_code": exc.error_code}) from exc

    return handler


tools_instance = Tools()  # Horace: Tools(db), after ``await db.connect()``
server = MCPServer(
    "horace-mcp-server",  # the serverInfo.name Horace always sent
    "1.0.0",
    tools=TOOLS,  # port: MCP_PORT, read by the library
    handlers={name: horace_handler(getattr(tools_instance, name)) for name in TOOLS},
)
app = server.app

if __name__ == "__main__":
    app.run()
