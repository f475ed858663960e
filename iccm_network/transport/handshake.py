"""MCP's ``initialize`` handshake and lone exchanges over any client transport.

These run before a reader task owns the connection (``MCPClient`` while it
connects, ``doctor`` for every step, the Godot shipper): they send what a
``ClientProtocol`` queued and read until the reply, turning every way a
server can fail to speak MCP into an ``MCPConnectionError`` with
``step="protocol"``, ``"closed"`` or ``"timeout"``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from iccm_network.errors import MCPConnectionError
from iccm_network.protocol.client import (
    ClientProtocol,
    ClientProtocolError,
    Reply,
    Request,
    Stray,
)
from iccm_network.protocol.client_events import excerpt
from iccm_network.transport.client import ClientTransport
from iccm_network.transport.connect import remaining
from iccm_network.transport.failures import not_mcp, reword

__all__ = ["exchange", "flush", "initialize"]


async def flush(transport: ClientTransport, protocol: ClientProtocol) -> None:
    """Send every message ``protocol`` queued.

    Args:
        transport: An open transport.
        protocol: Its protocol.

    Raises:
        MCPConnectionError: The connection is closed.
    """
    for text in protocol.data_to_send():
        await transport.send(text)


async def exchange(
    transport: ClientTransport,
    protocol: ClientProtocol,
    request: Request,
    timeout: float,
) -> tuple[Reply, str | bytes]:
    """Send what ``protocol`` queued and read messages until ``request``'s reply.

    Notifications are skipped and the server's ``ping`` requests answered.

    Args:
        transport: An open transport no other task reads from.
        protocol: Its protocol, with ``request`` queued.
        request: The request whose reply to wait for.
        timeout: Seconds to wait for the reply.

    Returns:
        The reply and its message's text.

    Raises:
        MCPConnectionError: ``step="closed"``, ``"timeout"`` or ``"protocol"``
            (the answer is not JSON-RPC).
    """
    deadline = time.monotonic() + timeout
    method = request.method
    try:
        await flush(transport, protocol)
        while True:
            frame = await asyncio.wait_for(transport.receive(), remaining(deadline))
            try:
                events = protocol.receive_text(frame)
            except ClientProtocolError as exc:
                raise not_mcp(transport.url, method, exc.what) from None
            await flush(transport, protocol)
            for event in events:
                if isinstance(event, Reply) and event.request is request:
                    return event, frame
                if isinstance(event, Stray | Reply):
                    raise not_mcp(transport.url, method, f"an unexpected reply {excerpt(frame)}")
    except asyncio.TimeoutError as exc:
        protocol.cancel(request, "no reply in time", notify=False)
        raise MCPConnectionError.diagnosed(
            "timeout",
            "timeout",
            f"{transport.url} accepted the WebSocket but did not answer {method} within "
            f"{timeout:g} s.",
            "that the server speaks MCP and that its event loop is not blocked (a synchronous "
            "tool or a slow start-up).",
        ) from exc
    except MCPConnectionError as exc:
        raise reword(exc, f"before answering {method}") from exc.__cause__


async def initialize(
    transport: ClientTransport, protocol: ClientProtocol, timeout: float
) -> dict[str, Any]:
    """Run MCP's ``initialize`` handshake and send ``notifications/initialized``.

    Args:
        transport: An open transport no other task reads from.
        protocol: Its protocol (it knows the revision and ``clientInfo``).
        timeout: Seconds to wait for the answer.

    Returns:
        The ``initialize`` result: ``protocolVersion``, ``serverInfo``, ...

    Raises:
        MCPConnectionError: ``step="protocol"``, ``"closed"`` or ``"timeout"``.
    """
    reply, frame = await exchange(transport, protocol, protocol.initialize(), timeout)
    if not reply.ok:
        raw = reply.message.get("error")
        error = raw if isinstance(raw, dict) else {}
        raise not_mcp(
            transport.url,
            "initialize",
            f"error {error.get('code')} {error.get('message', '')!r}".rstrip(),
        )
    result = reply.message.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
        raise not_mcp(
            transport.url, "initialize", f"a result without protocolVersion {excerpt(frame)}"
        )
    protocol.initialized()
    try:
        await flush(transport, protocol)
    except MCPConnectionError as exc:
        raise reword(exc, "right after initialize") from exc.__cause__
    return result
