"""iccm-network: MCP servers over WebSocket from typed tool functions.

A component declares ``@app.tool`` functions and calls ``app.run()``; the
library handles JSON-RPC 2.0, both eras of MCP, validation, concurrency,
limits and shutdown.
"""

from __future__ import annotations

__version__ = "0.1.0"

from iccm_network.app import App
from iccm_network.catalog.prompts import Message
from iccm_network.client import MCPClient
from iccm_network.compat import MCPServer
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
from iccm_network.transport.websocket import Server

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
