"""iccm-network: MCP servers over WebSocket from typed tool functions.

A component declares ``@app.tool`` functions and calls ``app.run()``; the
library handles JSON-RPC 2.0, both eras of MCP, validation, concurrency,
limits and shutdown.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from iccm_network.app import App
from iccm_network.catalog.prompts import Message
from iccm_network.config import Settings
from iccm_network.content import Audio, File, Image, ResourceLink
from iccm_network.context import Context
from iccm_network.errors import (
    ICCMNetworkError,
    MCPConnectionError,
    MCPError,
    ToolDefinitionError,
    ToolError,
)
from iccm_network.tools.routes import Tool

if TYPE_CHECKING:
    from iccm_network.client import MCPClient
    from iccm_network.compat import MCPServer
    from iccm_network.transport.websocket import Server

# A server does not need the client, nor a new server the migration shim, and
# declaring tools needs no transport: they are imported on first use, which
# keeps ``import iccm_network`` quick.
_LAZY = {
    "MCPClient": "iccm_network.client",
    "MCPServer": "iccm_network.compat",
    "Server": "iccm_network.transport.websocket",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    # app
    "App",
    "Context",
    "Message",
    "Server",
    "Settings",
    "Tool",
    # rich results
    "Audio",
    "File",
    "Image",
    "ResourceLink",
    # client
    "MCPClient",
    # migration
    "MCPServer",
    # errors
    "ICCMNetworkError",
    "MCPConnectionError",
    "MCPError",
    "ToolDefinitionError",
    "ToolError",
    "__version__",
]
