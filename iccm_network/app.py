"""``App``: collect tool functions, compile them, and serve them.

``add_tool()`` is the real registration API; ``@app.tool`` is sugar over it
and hands the function back unchanged, so tests can still call it directly.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from iccm_network.app_catalog import CatalogRegistry
from iccm_network.catalog.table import Catalog
from iccm_network.config import Settings
from iccm_network.errors import ToolDefinitionError
from iccm_network.logs import configure_logging
from iccm_network.protocol.server import ServerInfo, ServerProtocol
from iccm_network.tools.routes import RouteTable, Tool, compile_tool

if TYPE_CHECKING:
    # The transport (websockets, h11) loads when an App first serves, so
    # that registering tools, tests in memory and the CLI start quickly.
    from iccm_network.transport.websocket import Server

__all__ = ["App", "ServesApp"]

F = TypeVar("F", bound=Callable[..., Any])


class ServesApp(Protocol):
    """What an app tells of its changes: a ``Server``, or an in-memory connection."""

    def replace_routes(self, routes: RouteTable) -> None:
        """Serve ``routes`` from now on and tell the clients their tools changed.

        Args:
            routes: The app's tools, compiled.
        """

    def announce_change(self, kind: str, change: Callable[[ServerProtocol], None]) -> None:
        """Apply ``change`` to every connection's protocol, then tell the clients.

        Args:
            kind: ``"tools"``, ``"resources"`` or ``"prompts"``.
            change: Updates one connection's ``ServerProtocol``.
        """


class App(CatalogRegistry):
    """An MCP server made of typed tool functions.

    Args:
        name: The server's name, sent as ``serverInfo.name``.
        version: The server's version.
        title: A human-readable title for ``serverInfo``.
        instructions: Guidance for the model, sent with ``initialize``.
        host: Interface to bind (default: every interface, or ``MCP_HOST``).
        port: Port to bind (default: ``MCP_PORT``, else 8000).
        **settings: Any other ``Settings`` field, such as ``max_message_size``
            or ``tool_timeout``; they override the environment.
    """

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        *,
        title: str | None = None,
        instructions: str | None = None,
        host: str | None = None,
        port: int | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("an App needs a non-empty name")
        self.name = name
        self.version = version
        self.title = title
        self.instructions = instructions
        self._settings = dict(settings, host=host, port=port)
        Settings.from_environment({}, **self._settings)  # fail now on a bad setting
        self._tools: dict[str, Tool] = {}
        self._catalog = Catalog()
        # Servers made by this app, and in-memory connections to it: a tool
        # added or removed later reaches them.
        self._servers: weakref.WeakSet[ServesApp] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"App({self.name!r}, version={self.version!r}, tools={list(self._tools)})"

    @property
    def tools(self) -> Mapping[str, Tool]:
        """The registered tools by name, in registration order."""
        return dict(self._tools)

    # -- registration --------------------------------------------------------

    def add_tool(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Tool:
        """Register a function as a tool.

        Args:
            fn: The tool function, sync (run in a worker thread) or async.
            name: The tool name; defaults to the function's name.
            description: Defaults to the docstring.
            input_schema: A hand-written ``inputSchema``, used as is instead
                of the one generated from the type hints.
            title: A human-readable title.
            annotations: MCP hints: ``readOnlyHint``, ``destructiveHint``,
                ``idempotentHint``, ``openWorldHint``.
            timeout: Seconds a call may run before it is cancelled.

        Raises:
            ToolDefinitionError: The name is taken or invalid, or the
                function cannot be described as a JSON Schema.
        """
        tool = compile_tool(
            fn,
            name=name,
            description=description,
            input_schema=input_schema,
            title=title,
            annotations=annotations,
            timeout=timeout,
        )
        existing = self._tools.get(tool.name)
        if existing is not None:
            raise ToolDefinitionError(
                f"tool {tool.name!r} is already registered by "
                f"{getattr(existing.fn, '__qualname__', existing.fn)!s}"
            )
        self._tools[tool.name] = tool
        self._tools_changed()
        return tool

    def remove_tool(self, name: str) -> Tool:
        """Unregister a tool; running servers stop offering it at once.

        Clients connected in the handshake era are sent
        ``notifications/tools/list_changed``. Calls already running finish.

        Args:
            name: The tool's name.

        Raises:
            KeyError: No tool has that name.
        """
        tool = self._tools.pop(name)
        self._tools_changed()
        return tool

    def keep_current(self, server: ServesApp) -> None:
        """Tell ``server`` of every tool, resource and prompt added or removed from now on.

        ``server()`` does this for the servers it makes, and ``MCPClient(app)``
        for its in-memory connection. The app holds ``server`` weakly.

        Args:
            server: A ``Server``, or anything with its ``replace_routes`` and
                ``announce_change``.
        """
        self._servers.add(server)

    def _tools_changed(self) -> None:
        routes = RouteTable(self._tools)
        for server in list(self._servers):
            server.replace_routes(routes)

    def _catalog_changed(self, kind: str) -> None:
        # The servers read the app's own catalog, so nothing needs swapping:
        # the connections only hear that the listing changed.
        for server in list(self._servers):
            server.announce_change(kind, _unchanged)

    @overload
    def tool(self, fn: F, /) -> F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator form of ``add_tool``; returns the function unchanged.

        Use it bare (``@app.tool``) or with options
        (``@app.tool(name="x", timeout=30)``).

        Args:
            fn: The function, when used bare.
            name: The tool name; defaults to the function's name.
            description: Defaults to the docstring.
            title: A human-readable title.
            annotations: MCP hints such as ``readOnlyHint``.
            timeout: Seconds a call may run before it is cancelled.
        """

        def register(f: F) -> F:
            self.add_tool(
                f,
                name=name,
                description=description,
                title=title,
                annotations=annotations,
                timeout=timeout,
            )
            return f

        return register if fn is None else register(fn)

    # -- serving -------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        """The settings a server would use: overrides, app, environment, defaults.

        Args:
            **overrides: Settings that win over everything else.
        """
        return Settings.from_environment(**self._settings).replace(**overrides)

    @property
    def info(self) -> ServerInfo:
        """What a server of this app says about itself (``serverInfo``, instructions)."""
        return ServerInfo(
            name=self.name, version=self.version, title=self.title, instructions=self.instructions
        )

    def server(self, **overrides: Any) -> Server:
        """A ``Server`` for the tools registered so far, not yet started.

        Args:
            **overrides: Settings, as for ``settings()``.
        """
        from iccm_network.transport.websocket import Server

        server = Server(
            RouteTable(self._tools), self.info, self.settings(**overrides), catalog=self._catalog
        )
        self.keep_current(server)
        return server

    @contextlib.asynccontextmanager
    async def serving(
        self, host: str | None = None, port: int | None = None, **overrides: Any
    ) -> AsyncIterator[Server]:
        """Run the server in the background for the ``async with`` block.

        Example: ``async with app.serving(host="127.0.0.1", port=0) as server``,
        then connect to ``server.url``.

        Args:
            host: Interface to bind.
            port: Port to bind; 0 picks a free one.
            **overrides: Other settings.
        """
        from iccm_network.transport.lifecycle import started

        async with started(self.server(host=host, port=port, **overrides), self.name) as server:
            yield server

    async def serve(
        self, host: str | None = None, port: int | None = None, **overrides: Any
    ) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully.

        When ``GODOT_URL`` is set and ``LOGGING_ENABLED`` is not false, the
        ``iccm_network`` log records (connection events, errors, start and
        stop) are also shipped to Godot, from a bounded background queue.

        Args:
            host: Interface to bind (default: every interface).
            port: Port to bind.
            **overrides: Other settings.
        """
        from iccm_network.transport.lifecycle import serve_until_stopped

        await serve_until_stopped(self.server(host=host, port=port, **overrides), self.name)

    def run(self, host: str | None = None, port: int | None = None, **overrides: Any) -> None:
        """Serve until SIGTERM or SIGINT: the container entrypoint. Blocks.

        Sets up logging to stderr at ``MCP_LOG_LEVEL`` unless the application
        configured logging already, and runs on ``uvloop`` when it is
        installed (``MCP_EVENT_LOOP``).

        Args:
            host: Interface to bind (default: every interface).
            port: Port to bind.
            **overrides: Other settings.
        """
        from iccm_network.transport.lifecycle import run_event_loop

        settings = self.settings(host=host, port=port, **overrides)
        configure_logging(settings.log_level)
        run_event_loop(self.serve(host=host, port=port, **overrides), settings.event_loop)


def _unchanged(protocol: ServerProtocol) -> None:
    """Nothing to swap in a connection's protocol: it reads the shared catalog."""
