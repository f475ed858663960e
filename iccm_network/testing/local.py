"""In-memory calls: the server's own protocol, route table and call runner, with no socket.

``LocalConnection`` feeds JSON text to the app's server side in memory
(``iccm_network.transport.memory.MemoryServer``: a ``ServerProtocol`` and the calls it
asks for run as the WebSocket server runs them), and builds its requests and
matches its replies with the client's ``ClientProtocol``. ``acall`` and
``arequest`` make one call on a fresh connection; ``call`` and ``request``
are the same for tests that are not coroutines. ``MCPClient(app)`` is the
full client over the same in-memory server side.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, ParamSpec, TypeVar

from iccm_network import __version__
from iccm_network.app import App
from iccm_network.protocol.client import ClientProtocol, Reply, error_from
from iccm_network.protocol.versions import ALL_VERSIONS, LATEST_HANDSHAKE_VERSION
from iccm_network.tools.routes import Tool
from iccm_network.transport.memory import MemoryServer

__all__ = ["LocalConnection", "acall", "arequest", "call", "request"]

P = ParamSpec("P")
T = TypeVar("T")

_CLIENT_INFO: Final = {"name": "iccm-network.testing", "version": __version__}


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
        self.protocol_version = protocol_version
        self.notifications: list[dict[str, Any]] = []
        """Every notification the server sent (``notifications/progress``), in order."""
        self._frames: list[str] = []
        self._server = MemoryServer(app, self._frames.append, tools=tools)
        self._client = ClientProtocol(protocol_version=protocol_version, client_info=_CLIENT_INFO)
        self._initialized = not self._client.needs_initialize

    async def send(self, message: Any) -> list[Any]:
        """Send one frame and run what it asks for; return every frame sent back.

        Args:
            message: A JSON-RPC message or batch, or raw frame text (for tests
                of malformed input: it goes to the server as it is).

        Returns:
            The frames the server sent in reply, parsed, in order: replies and
            any ``notifications/progress``.
        """
        text = message if isinstance(message, str) else json.dumps(message)
        await asyncio.gather(*self._server.receive_text(text))
        frames, self._frames[:] = list(self._frames), []
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
        return dict((await self._exchange(method, params)).message)

    async def _exchange(self, method: str, params: Mapping[str, Any] | None) -> Reply:
        request = self._client.request(method, {} if params is None else params)
        frames: list[Any] = []
        for text in self._client.data_to_send():
            frames.extend(await self.send(text))
        for frame in frames:
            event = self._client.receive_message(frame)
            if isinstance(event, Reply) and event.request is request:
                return event
        raise RuntimeError(f"no reply to {method} (request id {request.id}): {frames}")

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
            raise error_from(reply["error"])
        result: dict[str, Any] = reply["result"]
        return result

    async def _initialize(self) -> None:
        self._initialized = True
        reply = await self._exchange("initialize", self._client.initialize_params())
        self._client.initialized()
        for text in self._client.data_to_send():
            await self.send(text)
        if reply.message.get("result", {}).get("protocolVersion") != self.protocol_version:
            raise RuntimeError(
                f"initialize did not negotiate {self.protocol_version}: {dict(reply.message)}"
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
