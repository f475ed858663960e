"""``MCPServer``: the seed components' server API, as a thin layer over ``App``.

The ICCM components describe their tools by hand, in one of three shapes::

    {"dewey_search": {"description": ..., "inputSchema": {...}}}       # Dewey, Horace
    [{"name": "logger_log", "description": ..., "inputSchema": {...}}]  # Godot
    [Tool(name="fiedler_send", description=..., inputSchema={...})]     # Fiedler (mcp.types)

``MCPServer`` accepts any of them, with each handler either in its entry
(``"handler"``) or in a separate ``handlers`` mapping, and registers every tool
with ``App.add_tool(..., input_schema=...)``: the hand-written schema is
published and enforced as is. Handlers are called as ``handler(**arguments)``;
a sync handler runs in a worker thread, and an awaitable it returns (a lambda
around an async method, say) is awaited. Everything else (protocol, limits,
``/healthz``, graceful shutdown, log shipping to Godot) is what ``App`` does.

New code should use ``App`` and ``@app.tool``; this module exists so that a
component can move to the library by changing its server module only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iccm_network.app import App
from iccm_network.errors import ToolDefinitionError
from iccm_network.transport.lifecycle import signal_handlers, started
from iccm_network.transport.websocket import Server

__all__ = ["MCPServer"]

logger = logging.getLogger("iccm_network.compat")

_ENTRY_KEYS = frozenset(
    {"name", "title", "description", "inputSchema", "handler", "annotations", "timeout"}
)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One tool description, whatever shape it came in."""

    name: str
    handler: Callable[..., Any]
    description: str | None
    input_schema: Mapping[str, Any] | None
    title: str | None
    annotations: Mapping[str, Any] | None
    timeout: float | None


class MCPServer:
    """An MCP server described the way the seed components describe theirs.

    Example::

        server = MCPServer("dewey", "1.0.0", 9020, tools=TOOLS, handlers=HANDLERS)
        await server.start()          # returns once listening
        await server.serve_forever()  # until stop(), SIGTERM or SIGINT

    Args:
        name: The server's name, sent as ``serverInfo.name``.
        version: The server's version.
        port: Port to bind (default: ``MCP_PORT``, else 8000; 0 picks a free one).
        tools: The tools: a mapping of name to entry (Dewey, Horace), a list
            of entries that carry ``name`` (Godot), or a list of objects with
            ``name``/``description``/``inputSchema`` attributes such as
            ``mcp.types.Tool`` (Fiedler). A mapping entry may hold
            ``description``, ``inputSchema``, ``handler``, ``title``,
            ``annotations`` and ``timeout``; without ``inputSchema`` the schema
            is generated from the handler's type hints.
        handlers: Handlers by tool name, for entries without a ``handler``.
        host: Interface to bind (default: every interface, or ``MCP_HOST``).
        title: A human-readable title for ``serverInfo``.
        instructions: Guidance for the model, sent with ``initialize``.
        **settings: Any other ``Settings`` field, such as ``shutdown_grace``.

    Raises:
        ToolDefinitionError: An entry has no handler, an unknown key, a bad
            schema or a duplicate name, or a handler names no tool.
    """

    def __init__(
        self,
        name: str,
        version: str = "1.0.0",
        port: int | None = None,
        tools: Mapping[str, Any] | Iterable[Any] | None = None,
        *,
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        host: str | None = None,
        title: str | None = None,
        instructions: str | None = None,
        **settings: Any,
    ) -> None:
        self.app = App(
            name,
            version,
            title=title,
            instructions=instructions,
            host=host,
            port=port,
            **settings,
        )
        for entry in _entries(tools if tools is not None else {}, handlers or {}):
            self.app.add_tool(
                entry.handler,
                name=entry.name,
                description=entry.description,
                input_schema=entry.input_schema,
                title=entry.title,
                annotations=entry.annotations,
                timeout=entry.timeout,
            )
        self._server: Server | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._running: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"MCPServer({self.name!r}, {self.version!r}, tools={list(self.app.tools)})"

    @property
    def name(self) -> str:
        """The server's name."""
        return self.app.name

    @property
    def version(self) -> str:
        """The server's version."""
        return self.app.version

    @property
    def host(self) -> str | None:
        """The interface bound; ``None`` means every interface."""
        return self.app.settings().host

    @property
    def port(self) -> int:
        """The bound port once started (useful with port 0), else the configured one."""
        if self._server is None:
            return self.app.settings().port
        return self._server.port

    @property
    def url(self) -> str:
        """A ``ws://`` URL that reaches the running server from this machine.

        Raises:
            RuntimeError: The server is not started.
        """
        return self.server.url

    @property
    def server(self) -> Server:
        """The running ``Server`` (connections, draining state, sockets).

        Raises:
            RuntimeError: The server is not started.
        """
        if self._server is None:
            raise RuntimeError(f"MCPServer {self.name!r} is not started")
        return self._server

    async def start(self) -> None:
        """Bind and start serving; returns once the server is listening.

        Raises:
            RuntimeError: The server is already running.
            OSError: The port cannot be bound.
        """
        if self._server is not None and not self._server.draining:
            raise RuntimeError(f"MCPServer {self.name!r} is already running")
        server = self.app.server()
        running = contextlib.AsyncExitStack()
        await running.enter_async_context(started(server, self.name))
        self._server = server
        self._stopping = None
        self._running = running

    async def serve_forever(self) -> None:
        """Serve until ``stop()``, SIGTERM or SIGINT; starts the server if needed.

        A signal begins a graceful shutdown: in-flight calls get the
        ``shutdown_grace`` period to finish, then connections close with
        ``shutdown_close_code``. Signal handlers are installed only where asyncio allows it
        (the main thread, on Unix).
        """
        if self._server is None or self._server.draining:
            await self.start()
        server = self.server
        with signal_handlers(self._on_signal):
            try:
                await server.serve_forever()
            finally:
                if self._stopping is not None:
                    await self._stopping
                elif not server.draining:  # cancelled: nobody is waiting for a drain
                    await server.shutdown(grace=0)
                await self._close()

    async def stop(self, grace: float | None = None) -> None:
        """Stop gracefully: refuse newcomers, drain in-flight calls, close the connections.

        Does nothing if the server was never started.

        Args:
            grace: Seconds in-flight calls get; ``shutdown_grace`` by default.
        """
        if self._server is not None:
            await self._server.shutdown(grace)
        await self._close()

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT: the container entrypoint. Blocks.

        The same as ``server.app.run()``: sets up stderr logging unless the
        application configured it, then serves.
        """
        self.app.run()

    async def _close(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()

    def _on_signal(self, signum: int) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        if self._stopping is None:
            self._stopping = asyncio.create_task(self.stop())


def _entries(
    tools: Mapping[str, Any] | Iterable[Any], handlers: Mapping[str, Callable[..., Any]]
) -> list[_Entry]:
    """Every tool description in ``tools``, normalised, with its handler."""
    if isinstance(tools, Mapping):
        keyed: list[tuple[str | None, Any]] = [(str(key), spec) for key, spec in tools.items()]
    elif isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise ToolDefinitionError(
            "tools must be a mapping of name to entry or a list of entries, "
            f"got {type(tools).__name__}"
        )
    else:
        keyed = [(None, spec) for spec in tools]
    entries = [_entry(key, spec, handlers) for key, spec in keyed]
    orphans = sorted(set(handlers) - {entry.name for entry in entries})
    if orphans:
        raise ToolDefinitionError(f"handlers given for tools that are not declared: {orphans}")
    return entries


def _entry(key: str | None, spec: Any, handlers: Mapping[str, Callable[..., Any]]) -> _Entry:
    fields = _fields(key, spec)
    name = fields.get("name", key)
    if key is not None and name != key:
        raise ToolDefinitionError(f"tool {key!r}: its entry names it {name!r}")
    if not isinstance(name, str):
        raise ToolDefinitionError(f"a tool entry has no name: {spec!r}")
    handler = fields.get("handler")
    if handler is not None and name in handlers:
        raise ToolDefinitionError(
            f"tool {name!r}: a handler is given both in its entry and in handlers"
        )
    if handler is None:
        handler = handlers.get(name)
    if handler is None:
        raise ToolDefinitionError(
            f"tool {name!r} has no handler: add a 'handler' to its entry or handlers[{name!r}]"
        )
    if not callable(handler):
        raise ToolDefinitionError(f"tool {name!r}: the handler {handler!r} is not callable")
    return _Entry(
        name=name,
        handler=handler,
        description=fields.get("description"),
        input_schema=fields.get("inputSchema"),
        title=fields.get("title"),
        annotations=fields.get("annotations"),
        timeout=fields.get("timeout"),
    )


def _fields(key: str | None, spec: Any) -> dict[str, Any]:
    """The non-``None`` fields of one entry: a dict or a ``Tool``-like object."""
    owner = f"tool {key!r}" if key is not None else "a tool entry"
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - _ENTRY_KEYS)
        if unknown:
            hint = ""
            if "outputSchema" in unknown:
                hint = (
                    "; MCPServer cannot publish an outputSchema: drop it, or register "
                    "the tool with App and a return annotation"
                )
            raise ToolDefinitionError(
                f"{owner}: unknown keys {unknown}; an entry may have {sorted(_ENTRY_KEYS)}{hint}"
            )
        fields = {k: v for k, v in spec.items() if v is not None}
    else:
        # mcp.types.Tool spells the schema inputSchema in mcp 1.x and input_schema in 2.x.
        fields = {
            "name": getattr(spec, "name", None),
            "title": getattr(spec, "title", None),
            "description": getattr(spec, "description", None),
            "inputSchema": _first_attribute(spec, "inputSchema", "input_schema"),
            "handler": getattr(spec, "handler", None),
            "annotations": getattr(spec, "annotations", None),
            "timeout": getattr(spec, "timeout", None),
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if fields.get("name") is None and fields.get("inputSchema") is None:
            raise ToolDefinitionError(
                f"{owner}: expected a dict or an object with name, description and "
                f"inputSchema attributes, got {type(spec).__name__}"
            )
        if _first_attribute(spec, "outputSchema", "output_schema") is not None:
            raise ToolDefinitionError(
                f"tool {fields.get('name')!r}: MCPServer cannot publish an outputSchema: "
                "drop it, or register the tool with App and a return annotation"
            )
    annotations = fields.get("annotations")
    if annotations is not None and not isinstance(annotations, Mapping):
        dump = getattr(annotations, "model_dump", None)  # mcp.types.ToolAnnotations
        if dump is None:
            raise ToolDefinitionError(f"{owner}: annotations must be a mapping")
        fields["annotations"] = dump(by_alias=True, exclude_none=True)
    return fields


def _first_attribute(spec: Any, *names: str) -> Any:
    for attribute in names:
        value = getattr(spec, attribute, None)
        if value is not None:
            return value
    return None
