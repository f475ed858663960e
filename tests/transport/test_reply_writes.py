"""Replies that complete in the same turn of the event loop leave in one write.

A write per reply is a system call per reply: most of what a small call
costs a server. The server frames the replies of one turn and writes them
together at its end, unless 64 KiB wait already. The writes are counted on
asyncio's own socket transport (the server runs in this process, on the
test's loop); a spy that passes every write on, not a stand-in.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App, Server
from iccm_network._timeout import timeout as async_timeout

app = App("reply-writes", version="0.0.1")
gate: dict[str, Any] = {}
"""``open``, the event the gated calls wait for, and ``waiting``, how many wait."""

BIG = 40 * 1024
# asyncio's TCP transport on a selector loop; private, so typeshed omits it.
SOCKET_TRANSPORT: Any = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]


@app.tool
async def gated(size: int) -> str:
    """Wait until the test opens the gate, then answer ``size`` characters.

    Args:
        size: Characters in the answer.
    """
    gate["waiting"] += 1
    await gate["open"].wait()
    return "x" * size


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    gate["open"], gate["waiting"] = asyncio.Event(), 0
    async with app.serving(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def server_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write carrying a reply: the server's frames are unmasked, a client's are not."""
    writes: list[bytes] = []
    write = SOCKET_TRANSPORT.write

    def counting_write(self: Any, data: Any) -> None:
        if b'"result"' in bytes(data):
            writes.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(SOCKET_TRANSPORT, "write", counting_write)
    return writes


async def gated_calls(ws: ClientConnection, sizes: list[int]) -> list[dict[str, Any]]:
    for number, size in enumerate(sizes, 1):
        request = {"name": "gated", "arguments": {"size": size}}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": request})
        )
    async with async_timeout(10):
        while gate["waiting"] < len(sizes):
            await asyncio.sleep(0.005)
        # Every call wakes in the same turn of the loop, and replies in it.
        gate["open"].set()
        return [json.loads(await ws.recv()) for _ in sizes]


async def test_replies_of_one_turn_leave_in_one_write(
    server: Server, server_writes: list[bytes]
) -> None:
    async with connect(server.url) as ws:
        answers = await gated_calls(ws, [5] * 10)
    assert sorted(answer["id"] for answer in answers) == list(range(1, 11))
    assert all(answer["result"]["content"][0]["text"] == "xxxxx" for answer in answers)
    assert len(server_writes) == 1
    assert server_writes[0].count(b'"result"') == 10


async def test_replies_waiting_for_their_write_never_pass_64_kib(
    server: Server, server_writes: list[bytes]
) -> None:
    # Four 40 KiB replies in one turn: the second brings what waits past
    # 64 KiB, so those two leave at once and the other two at the turn's end.
    async with connect(server.url, max_size=2**20) as ws:
        answers = await gated_calls(ws, [BIG] * 4)
    assert all(len(answer["result"]["content"][0]["text"]) == BIG for answer in answers)
    assert [write.count(b'"result"') for write in server_writes] == [2, 2]
