"""pytest fixtures for testing an iccm-network app.

Enable them in your root ``conftest.py`` and say which app to test::

    pytest_plugins = ["iccm_network.pytest_plugin"]

    @pytest.fixture
    def mcp_app() -> App:
        return app

Then a test asks for what it needs:

- ``mcp_memory_client``: an ``MCPClient`` connected to the app in memory
  (``MCPClient(app)``): the very client users have, through the app's real
  server protocol, validation and conversion, with no socket:
  ``await mcp_memory_client.call("add", {"a": 1, "b": 2})``.
- ``mcp_local``: a ``LocalConnection`` to the app, in memory, for raw
  JSON-RPC replies: ``await mcp_local.call("add", {"a": 1, "b": 2})``.
- ``mcp_server``: the app serving on 127.0.0.1 on a free port, for the test.
- ``mcp_client``: an ``MCPClient`` connected to ``mcp_server`` over a real
  WebSocket: ``await mcp_client.call("add", {"a": 1, "b": 2})``.

The async fixtures need pytest-asyncio (part of ``iccm-network[test]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from iccm_network.app import App
from iccm_network.client import MCPClient
from iccm_network.testing import LocalConnection
from iccm_network.transport.websocket import Server

__all__ = ["mcp_app", "mcp_client", "mcp_local", "mcp_memory_client", "mcp_server"]


@pytest.fixture
def mcp_app() -> App:
    """The app under test: override this fixture in your ``conftest.py``."""
    raise pytest.UsageError(
        "define an `mcp_app` fixture that returns your App to use the iccm_network fixtures"
    )


@pytest.fixture
def mcp_local(mcp_app: App) -> LocalConnection:
    """An in-memory connection to ``mcp_app``, speaking the newest handshake revision."""
    return LocalConnection(mcp_app)


@pytest_asyncio.fixture
async def mcp_memory_client(mcp_app: App) -> AsyncIterator[MCPClient]:
    """An ``MCPClient`` connected to ``mcp_app`` in memory, with no socket."""
    async with MCPClient(mcp_app, call_timeout=10, retries=0) as client:
        yield client


@pytest_asyncio.fixture
async def mcp_server(mcp_app: App) -> AsyncIterator[Server]:
    """``mcp_app`` serving on 127.0.0.1 on a free port; ``server.url`` is its address."""
    async with mcp_app.serving(host="127.0.0.1", port=0) as server:
        yield server


@pytest_asyncio.fixture
async def mcp_client(mcp_server: Server) -> AsyncIterator[MCPClient]:
    """An ``MCPClient`` connected to ``mcp_server`` (fails fast: no retries)."""
    async with MCPClient(mcp_server.url, connect_timeout=5, call_timeout=10, retries=0) as client:
        yield client
