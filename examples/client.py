"""Call an iccm-network server from Python: list its tools, then call one.

    python examples/client.py ws://localhost:9060
    python examples/client.py ws://localhost:9060 logger_log \\
        '{"component": "demo", "level": "INFO", "message": "hello"}'

``MCPClient`` performs the MCP handshake, reconnects when the server
restarts, and raises ``ToolError`` for a failed tool and
``MCPConnectionError`` (saying which step failed) when the server cannot be
reached. Exit codes match the ``iccm-network call`` command: 0 ok, 1 tool or
protocol error, 2 connection failure.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

from iccm_network import MCPClient, MCPConnectionError, MCPError, ToolError


async def main(
    url: str,
    tool: str | None = None,
    arguments: dict[str, Any] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """List the server's tools, and call ``tool`` if one is named.

    Args:
        url: The server's ``ws://`` URL.
        tool: A tool to call after listing.
        arguments: The tool's arguments.
        out: Where to print.

    Returns:
        The process exit code.
    """
    try:
        async with MCPClient(url) as client:
            for definition in await client.list_tools():
                summary = (definition.get("description") or "").strip().splitlines()
                print(f"{definition['name']}: {summary[0] if summary else ''}", file=out)
            if tool is not None:
                result = await client.call(tool, arguments or {})
                print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
    except ToolError as exc:
        print(f"tool error: {exc.message}", file=sys.stderr)
        return 1
    except MCPError as exc:
        print(f"protocol error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except MCPConnectionError as exc:
        print(
            f"connection failed at step {exc.step} ({exc.reason}): {exc.problem}", file=sys.stderr
        )
        if exc.check:
            print(f"check: {exc.check}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url, tool = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    sys.exit(asyncio.run(main(url, tool, arguments)))
