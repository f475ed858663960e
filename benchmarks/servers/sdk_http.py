"""The official MCP SDK's own Streamable HTTP server with the benchmark's echo tool.

Run as ``python -m benchmarks.servers.sdk_http [--port N] [--mode json|sse]
[--loop asyncio|uvloop]``: an ``MCPServer`` (``mcp`` 2.x) serving ``echo``
through its ``streamable_http_app`` on uvicorn, stateless (no sessions, like
an App), with JSON replies (``json``, its cheapest mode) or SSE replies
(``sse``), on asyncio's own loop or on uvloop (what ``uvicorn.run`` picks
when it is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket

import uvicorn
from mcp.server import MCPServer

from benchmarks.servers.common import announce, released

__all__ = ["main"]


async def echo(text: str) -> str:
    """Send the text back.

    Args:
        text: Any text.
    """
    return text


async def serve(port: int, mode: str, lifetime: float) -> None:
    """Serve until standard input closes or ``lifetime`` passes.

    Args:
        port: Port on 127.0.0.1 (0: any free one).
        mode: ``json`` or ``sse`` replies.
        lifetime: The longest the server may run.
    """
    server = MCPServer("sdk-bench", log_level="WARNING")
    server.add_tool(echo)
    app = server.streamable_http_app(json_response=mode == "json", stateless_http=True)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    runner = uvicorn.Server(config)
    serving = asyncio.create_task(runner.serve(sockets=[sock]))
    while not runner.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    announce(sock.getsockname()[1])
    await released(lifetime)
    runner.should_exit = True
    await serving


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve.

    Args:
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("json", "sse"), default="json")
    parser.add_argument("--lifetime", type=float, default=600.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    main = serve(options.port, options.mode, options.lifetime)
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


if __name__ == "__main__":
    main()
