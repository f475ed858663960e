"""A WebSocket transport for the official MCP Python SDK (``mcp`` 2.x), for tests.

The SDK no longer ships a WebSocket transport. Its client side is built on one
contract, ``mcp.client.Transport``: an async context manager that
yields ``(read_stream, write_stream)``, where the client reads
``SessionMessage | Exception`` items and writes ``SessionMessage`` items. This
module implements that contract over one ``websockets`` connection, one
JSON-RPC message per text frame, so both of the SDK's client APIs can talk to
an iccm-network server::

    async with open_client("ws://127.0.0.1:8070", mode="auto") as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})

    async with open_session("ws://127.0.0.1:8070") as session:
        await session.initialize()
        tools = await session.list_tools()

``WebSocketTransport`` also keeps every frame it moved in ``frames``, so a test
can assert on (or report) the exact wire traffic behind an SDK call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import Client, ClientSession
from mcp.client import Transport
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

__all__ = [
    "Frame",
    "WebSocketTransport",
    "open_client",
    "open_session",
    "websocket_transport",
]

logger = logging.getLogger(__name__)

TransportStreams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]
"""What a transport yields: the SDK reads the first and writes the second."""

Direction = Literal["sent", "received"]
Frame = tuple[Direction, str]
"""One text frame as it crossed the wire: who sent it, and its exact text."""


@asynccontextmanager
async def websocket_transport(
    url: str,
    *,
    open_timeout: float = 5.0,
    frames: list[Frame] | None = None,
) -> AsyncIterator[TransportStreams]:
    """Connect to ``url`` and yield the stream pair an MCP SDK session drives.

    Two tasks bridge the socket and the SDK: the reader parses each received
    text frame into a ``SessionMessage`` (a frame that is not a JSON-RPC
    message is handed over as the parse exception, which the SDK routes to the
    session's ``message_handler``); the writer serializes each outgoing
    ``SessionMessage`` into one text frame. When the server closes the
    connection the read stream ends, so the SDK fails pending requests with
    ``CONNECTION_CLOSED`` instead of hanging. Leaving the context closes the
    WebSocket with a normal close handshake.

    Args:
        url: The server's ``ws://`` URL; any path is forwarded as is.
        open_timeout: Seconds allowed for the TCP connect and the opening handshake.
        frames: If given, every frame sent or received is appended to it.
    """
    websocket = await connect(
        url,
        subprotocols=[Subprotocol("mcp")],
        max_size=None,
        open_timeout=open_timeout,
        close_timeout=2.0,
    )
    # Unbuffered, like the SDK's own transports: back-pressure reaches the socket.
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_frames() -> None:
        try:
            async for data in websocket:
                text = data if isinstance(data, str) else data.decode()
                if frames is not None:
                    frames.append(("received", text))
                item: SessionMessage | Exception
                try:
                    item = SessionMessage(jsonrpc_message_adapter.validate_json(text))
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    logger.warning("not a JSON-RPC message: %.200r", text)
                    item = exc
                await read_writer.send(item)
        except ConnectionClosed:
            pass  # an abnormal close ends the stream like a normal one
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the session went away first
        finally:
            await read_writer.aclose()  # end of stream: the session fails pending requests

    async def write_frames() -> None:
        async for session_message in write_reader:
            text = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
            if frames is not None:
                frames.append(("sent", text))
            try:
                await websocket.send(text)
            except ConnectionClosed:
                return  # the reader sees the close and ends the read stream

    # Exits in reverse order: stop both tasks, close the four stream ends, then the socket.
    async with websocket, read_writer, read_stream, write_stream, write_reader:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(read_frames)
            task_group.start_soon(write_frames)
            try:
                yield read_stream, write_stream
            finally:
                task_group.cancel_scope.cancel()


@dataclass
class WebSocketTransport:
    """The SDK's ``Transport`` over a WebSocket: pass it to ``Client(...)``.

    Single use, like every SDK transport: ``Client`` enters it once and exits it
    when the client closes.

    Args:
        url: The server's ``ws://`` URL.
        open_timeout: Seconds allowed for the connect and opening handshake.
    """

    url: str
    open_timeout: float = 5.0
    frames: list[Frame] = field(default_factory=list)
    """Every text frame moved so far, in order."""
    _stack: AsyncExitStack | None = field(default=None, init=False, repr=False)

    def sent(self) -> list[Any]:
        """The JSON values of the frames sent so far, in order."""
        return [json.loads(text) for direction, text in self.frames if direction == "sent"]

    def received(self) -> list[Any]:
        """The JSON values of the frames received so far, in order."""
        return [json.loads(text) for direction, text in self.frames if direction == "received"]

    async def __aenter__(self) -> TransportStreams:
        if self._stack is not None:
            raise RuntimeError("a WebSocketTransport can be entered only once")
        self._stack = AsyncExitStack()
        return await self._stack.enter_async_context(
            websocket_transport(self.url, open_timeout=self.open_timeout, frames=self.frames)
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None, "__aexit__ without __aenter__"
        return await self._stack.__aexit__(exc_type, exc_value, traceback)


@asynccontextmanager
async def open_client(
    url: str | WebSocketTransport, *, mode: str = "auto", **options: Any
) -> AsyncIterator[Client]:
    """Open an SDK ``Client`` over a WebSocket and negotiate ``mode``.

    Args:
        url: The server's URL, or a ``WebSocketTransport`` to keep its frames.
        mode: ``"legacy"`` (``initialize`` handshake), ``"auto"``
            (``server/discover``, falling back to ``initialize``) or a modern
            protocol version such as ``"2026-07-28"`` (no handshake at all).
        **options: Any other ``Client`` keyword argument.
    """
    # Annotated so that mypy checks WebSocketTransport against the SDK's Transport protocol.
    transport: Transport = url if isinstance(url, WebSocketTransport) else WebSocketTransport(url)
    async with Client(transport, mode=mode, **options) as client:
        yield client


@asynccontextmanager
async def open_session(
    url: str | WebSocketTransport, **options: Any
) -> AsyncIterator[ClientSession]:
    """Open a low-level SDK ``ClientSession`` over a WebSocket.

    The session is running but not initialized: call ``await
    session.initialize()`` (or ``discover()``) yourself.

    Args:
        url: The server's URL, or a ``WebSocketTransport`` to keep its frames.
        **options: Any other ``ClientSession`` keyword argument.
    """
    transport = url if isinstance(url, WebSocketTransport) else WebSocketTransport(url)
    async with transport as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream, **options) as session:
            yield session
