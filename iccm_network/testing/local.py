"""In-memory calls: the server's own protocol, route table and call runner, with no socket.

``LocalConnection`` feeds JSON text to a ``ServerProtocol`` and runs the calls
it asks for through ``iccm_network.calls.run_call``, as the WebSocket server
does. ``acall`` and ``arequest`` make one call on a fresh connection; ``call``
and ``request`` are the same for tests that are not coroutines.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, ParamSpec, TypeVar

from iccm_network import __version__
from iccm_network.app import App
from iccm_network.calls import WorkerThreads, run_call
from iccm_network.errors import error_class_for_code
from iccm_network.protocol import ServerProtocol, ToolCall
from iccm_network.routes import RouteTable, Tool
from iccm_network.versions import (
    ALL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    MODERN_VERSIONS,
)

__all__ = ["LocalConnection", "acall", "arequest", "call", "request"]

P = ParamSpec("P")
T = TypeVar("T")

_CLIENT_INFO: Final = {"name": "iccm-network.testing", "version": __version__}

_WORKERS: Final = WorkerThreads(8)
"""Sync tools called in memory run here, as on a server's worker threads."""


class LocalConnection:
    """One connection to an app with no socket: the server's protocol, in memory.

    Frames are JSON text through ``ServerProtocol`` exactly as on the wire;
    calls run as the server runs them (sync tools in a worker thread, the
    tool's timeout applied, a ``Context`` for the tools that ask for one).
    The ``initialize`` handshake, or for stateless revisions the ``_meta``
    envelope, is added for you.

    Args:
        app: The app whose tools to serve.
        protocol_version: The MCP revision to speak.
        tools: Serve these tools instead of ``app.tools`` (for instrumented copies).
    """

    def __init__(
        self,
        app: App,
        *,
        protocol_version: str = LATEST_HANDSHAKE_VERSION,
        tools: Mapping[str, Tool] | None = None,
    ) -> None:
        if protocol_version not in ALL_VERSIONS:
            raise ValueError(
                f"unknown protocol version {protocol_version!r}; expected one of {ALL_VERSIONS}"
            )
        settings = app.settings()
        self.protocol_version = protocol_version
        self.notifications: list[dict[str, Any]] = []
        """Every notification the server sent (``notifications/progress``), in order."""
        self._protocol = ServerProtocol(
            RouteTable(app.tools if tools is None else tools),
            app.info,
            max_in_flight=settings.max_in_flight,
            max_batch=settings.max_batch,
        )
        self._default_timeout = settings.tool_timeout
        self._initialized = protocol_version in MODERN_VERSIONS
        self._next_id = 0

    async def send(self, message: Any) -> list[Any]:
        """Send one frame and run what it asks for; return every frame sent back.

        Args:
            message: A JSON-RPC message or batch, or raw frame text.

        Returns:
            The frames the server sent in reply, parsed, in order: replies and
            any ``notifications/progress``.
        """
        text = message if isinstance(message, str) else json.dumps(message)
        self._protocol.receive_text(text)
        frames = self._protocol.data_to_send()
        while calls := self._protocol.calls_to_run():
            outcomes = await asyncio.gather(*(self._run(call, frames) for call in calls))
            for call, outcome in zip(calls, outcomes, strict=True):
                self._protocol.complete(call, outcome)
            frames.extend(self._protocol.data_to_send())
        parsed = [json.loads(frame) for frame in frames]
        self.notifications.extend(
            frame for frame in parsed if isinstance(frame, dict) and "id" not in frame
        )
        return parsed

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; return its JSON-RPC reply (``result`` or ``error``).

        Args:
            method: The method, such as ``"tools/list"``.
            params: Its params; the ``_meta`` envelope is added for stateless revisions.
        """
        if not self._initialized:
            await self._initialize()
        self._next_id += 1
        request_id = self._next_id
        body = dict(params or {})
        if self.protocol_version in MODERN_VERSIONS:
            body["_meta"] = {
                META_PROTOCOL_VERSION: self.protocol_version,
                META_CLIENT_CAPABILITIES: {},
                META_CLIENT_INFO: _CLIENT_INFO,
                **body.get("_meta", {}),
            }
        frames = await self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body}
        )
        for frame in frames:
            if isinstance(frame, dict) and frame.get("id") == request_id:
                return frame
        raise RuntimeError(f"no reply to {method} (request id {request_id}): {frames}")

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool; return its ``tools/call`` result.

        Args:
            name: The tool's name.
            arguments: Its arguments, as JSON-able data.

        Raises:
            MCPError: The server answered with a JSON-RPC error (its subclass
                by code, such as ``InvalidParams`` for -32602).
        """
        reply = await self.request("tools/call", {"name": name, "arguments": dict(arguments or {})})
        if "error" in reply:
            error = reply["error"]
            cls = error_class_for_code(error["code"])
            raise cls(error["message"], data=error.get("data"), code=error["code"])
        result: dict[str, Any] = reply["result"]
        return result

    async def _initialize(self) -> None:
        self._initialized = True  # first, so that the initialize request itself goes through
        reply = await self.request(
            "initialize",
            {
                "protocolVersion": self.protocol_version,
                "capabilities": {},
                "clientInfo": _CLIENT_INFO,
            },
        )
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if reply.get("result", {}).get("protocolVersion") != self.protocol_version:
            raise RuntimeError(f"initialize did not negotiate {self.protocol_version}: {reply}")

    async def _run(self, call: ToolCall, frames: list[str]) -> Any:
        async def send_progress(params: dict[str, Any]) -> None:
            frames.append(self._protocol.progress_frame(params))

        return await run_call(
            call, _WORKERS, default_timeout=self._default_timeout, send_progress=send_progress
        )


async def arequest(
    app: App,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Send one request to ``app`` in memory; return the raw JSON-RPC reply.

    ``request`` takes the same arguments and blocks, for a test that is not a
    coroutine.

    Args:
        app: The app.
        method: The method, such as ``"tools/call"``.
        params: Its params.
        protocol_version: The MCP revision to speak.
    """
    return await LocalConnection(app, protocol_version=protocol_version).request(method, params)


async def acall(
    app: App,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
) -> dict[str, Any]:
    """Call one of ``app``'s tools in memory; return the ``tools/call`` result.

    ``call`` takes the same arguments and blocks, for a test that is not a
    coroutine: ``call(app, "add", {"a": 1, "b": 2})["isError"] is False``.

    Args:
        app: The app.
        name: The tool's name.
        arguments: Its arguments.
        protocol_version: The MCP revision to speak.

    Raises:
        MCPError: The server answered with a JSON-RPC error.
    """
    return await LocalConnection(app, protocol_version=protocol_version).call(name, arguments)


def _blocking(coroutine_function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """``coroutine_function`` run to completion on a new event loop, named without its ``a``."""
    name = coroutine_function.__name__.removeprefix("a")

    @functools.wraps(coroutine_function)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine_function(*args, **kwargs))
        raise RuntimeError(f"{name}() cannot run inside an event loop; use `await a{name}(...)`")

    run.__name__ = name
    run.__qualname__ = name
    return run


request = _blocking(arequest)
call = _blocking(acall)
