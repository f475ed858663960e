"""A one-shot MCP client, run inside a network namespace by the network tests.

``python ns_client.py URL`` performs ``initialize``, calls ``add`` with 2 and 3,
prints the result's text on stdout and exits 0; any failure exits non-zero
with the reason on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect

from iccm_network._timeout import timeout as async_timeout


async def main(url: str) -> str:
    async with async_timeout(10), connect(url, open_timeout=5) as ws:
        initialize = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "ns-client", "version": "1"},
        }
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize})
        )
        assert json.loads(await ws.recv())["result"]["serverInfo"]["name"] == "networked"
        call = {"name": "add", "arguments": {"a": 2, "b": 3}}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        )
        text: str = json.loads(await ws.recv())["result"]["content"][0]["text"]
        return text


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1])))
