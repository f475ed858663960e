"""A Horace-like file catalog: register files by content hash, search, verify.

The tools are plain sync functions that read whole files to hash them. That
is safe here: iccm-network runs sync tools in a worker thread, so however
large the file, the event loop keeps answering other calls and keepalive
pings (the old Horace hashed on the loop and timed out under load). Several
calls may therefore run at once, so the in-memory catalog is guarded by a lock.

Files must live under ``CATALOG_ROOT`` (default: the current directory);
paths may be absolute or relative to it. Run it with::

    CATALOG_ROOT=/srv/files MCP_PORT=8070 python examples/horace_catalog.py
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from typing_extensions import TypedDict

from iccm_network import App, ToolError

Algorithm = Literal["sha256", "sha1", "md5", "blake2b"]
CHUNK = 1 << 20
"""Bytes read per step: large enough that hashlib releases the GIL while hashing."""


class FileRecord(TypedDict):
    """One catalogued file."""

    file_id: str
    path: str
    size: int
    sha256: str
    owner: str | None
    tags: list[str]
    registered_at: str


class Verification(TypedDict):
    """The result of re-hashing a catalogued file."""

    file_id: str
    unchanged: bool
    sha256: str


app = App("catalog", version="1.0.0")

_lock = threading.Lock()
_files: dict[str, FileRecord] = {}
_by_hash: dict[str, str] = {}

readonly = {"readOnlyHint": True, "idempotentHint": True}


def storage_root() -> Path:
    """The directory every catalogued file must live under (``CATALOG_ROOT``)."""
    return Path(os.environ.get("CATALOG_ROOT", ".")).resolve()


def _resolve(file_path: str) -> Path:
    root = storage_root()
    path = (root / file_path).resolve()
    if not path.is_relative_to(root):
        raise ToolError(f"{file_path} is outside the catalog root {root}")
    if not path.exists():
        raise ToolError(f"{file_path} does not exist")
    return path


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _record(file_id: str) -> FileRecord:
    with _lock:
        record = _files.get(file_id)
    if record is None:
        raise ToolError(f"no file with id {file_id}")
    return record


@app.tool(annotations=readonly)
def catalog_hash_file(file_path: str, algorithm: Algorithm = "sha256") -> str:
    """Hash a file's content without registering it.

    Args:
        file_path: The file, absolute or relative to the catalog root.
        algorithm: The hash algorithm.
    """
    return _digest(_resolve(file_path), algorithm)


@app.tool
def catalog_register_file(
    file_path: str, owner: str | None = None, tags: list[str] | None = None
) -> FileRecord:
    """Register a file by its content; registering the same content again
    returns the existing record.

    Args:
        file_path: The file, absolute or relative to the catalog root.
        owner: Who owns the file.
        tags: Labels to search by.
    """
    path = _resolve(file_path)
    if not path.is_file():
        raise ToolError(f"{file_path} is not a regular file")
    size = path.stat().st_size
    checksum = _digest(path, "sha256")  # the slow part, outside the lock
    with _lock:
        existing = _by_hash.get(checksum)
        if existing is not None:
            return _files[existing]
        record: FileRecord = {
            "file_id": uuid.uuid4().hex,
            "path": str(path),
            "size": size,
            "sha256": checksum,
            "owner": owner,
            "tags": sorted(set(tags or [])),
            "registered_at": datetime.now(timezone.utc).isoformat(),
        }
        _files[record["file_id"]] = record
        _by_hash[checksum] = record["file_id"]
    return record


@app.tool(annotations=readonly)
def catalog_get_file(file_id: str) -> FileRecord:
    """Get a catalogued file's record.

    Args:
        file_id: The id catalog_register_file returned.
    """
    return _record(file_id)


@app.tool(annotations=readonly)
def catalog_search(
    tag: str | None = None, owner: str | None = None, limit: int = 20
) -> list[FileRecord]:
    """Find catalogued files, oldest first.

    Args:
        tag: Only files with this tag.
        owner: Only files with this owner.
        limit: Maximum records to return.
    """
    with _lock:
        records = list(_files.values())
    found = [
        r for r in records if (tag is None or tag in r["tags"]) and owner in (None, r["owner"])
    ]
    return found[: max(limit, 0)]


@app.tool(annotations=readonly)
def catalog_verify(file_id: str) -> Verification:
    """Re-hash a catalogued file and say whether its content changed.

    Args:
        file_id: The id catalog_register_file returned.
    """
    record = _record(file_id)
    current = _digest(_resolve(record["path"]), "sha256")
    return {"file_id": file_id, "unchanged": current == record["sha256"], "sha256": current}


if __name__ == "__main__":
    app.run()
