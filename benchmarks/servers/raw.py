"""The baselines: MCP over ``websockets`` + ``json`` by hand, with no framework.

Run as ``python -m benchmarks.servers.raw [--port N] [--sequential]``.

By default each ``tools/call`` runs in its own task, as a competent
hand-written server would do it: this is the ceiling iccm-network is measured
against. ``--sequential`` is the style of the old ICCM servers: each message
is answered before the next one is read, so one slow call holds up the
connection. Both check the ``register`` arguments by hand and answer with the
same bytes as iccm-network.
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.payloads import PRIORITIES, SLOW_SECONDS, big_text, register_summary
from benchmarks.servers.common import announce, parse_options, released

__all__ = ["answer", "main"]

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ADDRESS_KEYS: Final = ("street", "city", "postcode")
_STRING_FIELDS: Final = ("name", "email")
_INTEGER_FIELDS: Final = ("age", "score")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _text(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _register_is_valid(args: dict[str, Any]) -> bool:
    address = args.get("address")
    tags = args.get("tags")
    return (
        all(isinstance(args.get(key), str) for key in _STRING_FIELDS)
        and all(_is_int(args.get(key)) for key in _INTEGER_FIELDS)
        and args.get("priority") in PRIORITIES
        and isinstance(address, dict)
        and len(address) == len(_ADDRESS_KEYS)
        and all(isinstance(address.get(key), str) for key in _ADDRESS_KEYS)
        and isinstance(tags, list)
        and all(isinstance(tag, str) for tag in tags)
        and isinstance(args.get("note", ""), str)
        and isinstance(args.get("active", True), bool)
        and _is_int(args.get("retries", 0))
    )


async def _echo(args: dict[str, Any]) -> dict[str, Any]:
    text = args.get("text")
    if not isinstance(text, str):
        return _text("text must be a string", error=True)
    return _text(text)


async def _register(args: dict[str, Any]) -> dict[str, Any]:
    if not _register_is_valid(args):
        return _text("invalid arguments", error=True)
    summary = register_summary(args)
    result = _text(_encode(summary))
    result["structuredContent"] = summary
    return result


async def _slow(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(SLOW_SECONDS)
    return _text("done")


async def _blob(args: dict[str, Any]) -> dict[str, Any]:
    size = args.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        return _text("size must be an integer", error=True)
    return _text(big_text(size))


_HANDLERS: Final[dict[str, Handler]] = {
    "echo": _echo,
    "register": _register,
    "slow": _slow,
    "blob": _blob,
}
_TOOL_LIST: Final = {
    "tools": [
        {"name": name, "description": name, "inputSchema": {"type": "object"}} for name in _HANDLERS
    ]
}


async def answer(text: str) -> str | None:
    """The reply to one received message, or ``None`` for a notification.

    Args:
        text: The frame's text.
    """
    try:
        message = json.loads(text)
        method = message["method"]
        if "id" not in message:
            return None
        if method == "tools/call":
            params = message["params"]
            result = await _HANDLERS[params["name"]](params.get("arguments") or {})
        elif method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "raw-benchmark", "version": "1.0.0"},
            }
        elif method == "tools/list":
            result = _TOOL_LIST
        elif method == "ping":
            result = {}
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            return _encode({"jsonrpc": "2.0", "id": message["id"], "error": error})
    except Exception as exc:  # a hand-written server answers rather than dying
        error = {"code": -32603, "message": f"Internal error: {type(exc).__name__}"}
        return _encode({"jsonrpc": "2.0", "id": None, "error": error})
    return _encode({"jsonrpc": "2.0", "id": message["id"], "result": result})


async def _reply(connection: ServerConnection, text: str) -> None:
    reply = await answer(text)
    if reply is not None:
        try:
            await connection.send(reply)
        except ConnectionClosed:
            pass


async def _concurrent(connection: ServerConnection) -> None:
    running: set[asyncio.Task[None]] = set()
    try:
        async for text in connection:
            task = asyncio.create_task(_reply(connection, str(text)))
            running.add(task)
            task.add_done_callback(running.discard)
    except ConnectionClosed:
        pass
    finally:
        for task in running:
            task.cancel()


async def _sequential(connection: ServerConnection) -> None:
    try:
        async for text in connection:
            reply = await answer(str(text))
            if reply is not None:
                await connection.send(reply)
    except ConnectionClosed:
        pass


async def _serve(port: int, sequential: bool, lifetime: float) -> None:
    handler = _sequential if sequential else _concurrent
    async with serve(handler, "127.0.0.1", port, max_size=16 * 1024 * 1024) as server:
        announce(server.sockets[0].getsockname()[1])
        await released(lifetime)


def main(argv: list[str] | None = None) -> None:
    """Serve the hand-written baseline until released.

    Args:
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    options = parse_options(__doc__ or "", argv)
    serving = functools.partial(_serve, options.port, options.sequential, options.lifetime)
    if options.profile is None:
        asyncio.run(serving())
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serving())
    finally:
        profiler.disable()
        profiler.dump_stats(options.profile)


if __name__ == "__main__":
    main()
