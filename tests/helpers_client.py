"""What the client, CLI and doctor tests share: tools, throwaway servers, a free port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sample_tools import add, fail, free_port
from websockets.asyncio.server import serve

from iccm_network._timeout import timeout as async_timeout
from iccm_network.cli.main import main

__all__ = [
    "TIMEOUT",
    "add",
    "fail",
    "free_port",
    "initialize_result",
    "never_answers",
    "raw_server",
    "run_main",
    "tcp_server",
]

TIMEOUT = 10.0
"""Seconds any one test may wait; each takes milliseconds when all is well."""


def initialize_result(name: str, protocol_version: str = "2025-11-25") -> dict[str, Any]:
    """What a hand-written MCP server answers to ``initialize``."""
    return {
        "protocolVersion": protocol_version,
        "capabilities": {},
        "serverInfo": {"name": name, "version": "0"},
    }


async def run_main(argv: list[str]) -> int:
    """Run the CLI in a thread (it starts its own event loop), within ``TIMEOUT``."""
    async with async_timeout(TIMEOUT):
        return await asyncio.to_thread(main, argv)


@asynccontextmanager
async def raw_server(handler: Callable[..., Awaitable[None]], **options: Any) -> AsyncIterator[str]:
    """A plain ``websockets`` server on a free port; yields its URL."""
    options.setdefault("logger", logging.getLogger("tests.raw_server"))
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


@asynccontextmanager
async def tcp_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A plain TCP server on a free port; yields a ``ws://`` URL for it."""
    listener = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    finally:
        listener.close()
        await listener.wait_closed()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A TCP handler that reads until the client leaves and never says a word."""
    await reader.read()
    writer.close()
