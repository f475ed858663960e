"""A small file store exposing resources, a prompt and completion hooks.

Run it with ``python examples/file_store.py``, then look around::

    iccm-network resources ws://localhost:8000
    iccm-network read ws://localhost:8000 file://notes/todo.txt
    iccm-network prompts ws://localhost:8000

What it shows:

* ``store://config``: a fixed resource returning JSON;
* ``file://{+path}``: a URI template whose variable may hold ``/``;
  an unknown path raises ``FileNotFoundError``, which the client sees as
  "resource not found";
* ``store://logo``: binary contents, sent as a base64 ``blob``;
* ``store://files/{name}/lines/{count}``: typed template variables (``count``
  is an ``int``, checked before the function runs);
* ``review``: a prompt with typed arguments; ``focus`` is a ``Literal`` and
  completes by itself, ``path`` completes through a hook;
* ``write_file``: a tool that changes a file and tells subscribed clients.
"""

from __future__ import annotations

from typing import Any, Literal

from iccm_network import App, Message

app = App("file-store", version="1.0.0", instructions="Read files as resources.")

FILES: dict[str, str] = {
    "notes/todo.txt": "buy milk\nwrite tests\nship it\n",
    "notes/ideas.md": "# Ideas\n\n- a diagram tool\n",
    "src/main.py": "print('hello')\n",
}
LOGO = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])


@app.resource("store://config", mime_type="application/json", title="Store settings")
def config() -> dict[str, Any]:
    """How many files the store holds, and its name."""
    return {"name": app.name, "files": len(FILES)}


@app.resource("file://{+path}", mime_type="text/plain")
def read_file(path: str) -> str:
    """A file of the store.

    Args:
        path: The file's path inside the store, such as ``notes/todo.txt``.
    """
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(path) from None


@app.resource("store://logo", mime_type="image/png")
def logo() -> bytes:
    """The store's logo (the PNG signature, to keep the example small)."""
    return LOGO


@app.resource("store://files/{name}/lines/{count}")
async def head(name: str, count: int) -> str:
    """The first lines of a file.

    Args:
        name: The file's path inside the store.
        count: How many lines.
    """
    if name not in FILES:
        raise FileNotFoundError(name)
    return "".join(FILES[name].splitlines(keepends=True)[:count])


@app.prompt(title="Review a file")
def review(path: str, focus: Literal["bugs", "style", "speed"] = "bugs") -> list[Message]:
    """Ask the model to review one file of the store.

    Args:
        path: The file to review.
        focus: What to look for.
    """
    return [
        Message(f"Review this file for {focus}:\n\n{FILES.get(path, '(no such file)')}"),
        Message("I will read it carefully.", role="assistant"),
    ]


@app.complete("review", "path")
@app.complete("file://{+path}", "path")
def complete_path(value: str) -> list[str]:
    """The stored paths that start with what was typed."""
    return sorted(path for path in FILES if path.startswith(value))


@app.tool
async def write_file(path: str, text: str) -> str:
    """Write a file and tell the clients subscribed to it.

    Args:
        path: The file's path inside the store.
        text: Its new contents.
    """
    FILES[path] = text
    await app.notify_resource_updated(f"file://{path}")
    return f"wrote {len(text)} characters to {path}"


if __name__ == "__main__":
    app.run()
