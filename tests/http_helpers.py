"""Raw HTTP/1.1 requests for the Streamable HTTP tests, spoken with ``h11``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h11

__all__ = ["Answer", "HttpLink", "request", "rpc"]


@dataclass
class Answer:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def events(self) -> list[Any]:
        """The JSON ``data`` of each SSE event."""
        return [
            json.loads(line[5:].strip())
            for line in self.body.decode().splitlines()
            if line.startswith("data:")
        ]


class HttpLink:
    """One keep-alive connection that sends requests one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> HttpLink:
        """Connect to 127.0.0.1:port."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

    async def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        repeated: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """Send one request and read its whole response.

        Args:
            method: The HTTP method.
            path: The target.
            body: The body.
            headers: Headers, one value each.
            repeated: More header lines, sent after ``headers`` (a name may repeat).
        """
        if self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        fields = {"Host": "127.0.0.1", "Content-Length": str(len(body)), **(headers or {})}
        lines = [*fields.items(), *repeated]
        out = self.h11.send(h11.Request(method=method, target=path, headers=lines))
        if body:
            out += self.h11.send(h11.Data(data=body))
        out += self.h11.send(h11.EndOfMessage())
        self.writer.write(out)
        await self.writer.drain()
        status = 0
        got: dict[str, str] = {}
        content = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.reader.read(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                got = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return Answer(status, got, bytes(content))


async def request(
    port: int,
    method: str = "POST",
    path: str = "/mcp",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    repeated: Sequence[tuple[str, str]] = (),
) -> Answer:
    """One request on a fresh connection."""
    link = await HttpLink.open(port)
    try:
        return await link.send(method, path, body, headers, repeated)
    finally:
        await link.close()


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def rpc(
    port: int,
    message: Any,
    headers: dict[str, str] | None = None,
    path: str = "/mcp",
) -> Answer:
    """POST one JSON-RPC message (or batch) the way MCP clients do."""
    return await request(
        port, "POST", path, json.dumps(message).encode(), {**JSON_HEADERS, **(headers or {})}
    )
