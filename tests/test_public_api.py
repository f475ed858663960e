"""The public surface: exactly these names, each documented."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import iccm_network

PUBLIC = {
    "App",
    "Audio",
    "File",
    "Image",
    "ResourceLink",
    "Context",
    "ICCMNetworkError",
    "MCPClient",
    "MCPConnectionError",
    "MCPError",
    "MCPServer",
    "Message",
    "Server",
    "Settings",
    "Tool",
    "ToolDefinitionError",
    "ToolError",
    "__version__",
}


def test_public_names_are_exactly_these() -> None:
    assert set(iccm_network.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(iccm_network, name)


@pytest.mark.parametrize("name", sorted(PUBLIC - {"__version__"}))
def test_every_public_name_has_a_docstring(name: str) -> None:
    assert inspect.getdoc(getattr(iccm_network, name))


PACKAGE = Path(iccm_network.__file__).parent
MODULES = sorted(
    ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if path.name not in ("__init__.py", "__main__.py") or path.parent != PACKAGE
)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_declares_its_exports_and_documents_them(module: str) -> None:
    loaded = importlib.import_module(f"iccm_network.{module}")
    assert inspect.getdoc(loaded), f"{module} has no module docstring"
    for name in loaded.__all__:
        value = getattr(loaded, name)
        is_alias = hasattr(value, "__origin__")  # Callable[...] aliases count as classes on 3.10
        if (inspect.isclass(value) and not is_alias) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module}.{name} has no docstring"


def test_the_protocol_core_does_no_io() -> None:
    # The sans-I/O layers must stay importable and usable without a socket.
    for module in (
        "protocol.server",
        "tools.routes",
        "tools.schema",
        "tools.convert",
        "protocol.results",
        "tools.validation",
        "content",
        "protocol.capabilities",
    ):
        source = inspect.getsource(importlib.import_module(f"iccm_network.{module}"))
        assert "import websockets" not in source and "from websockets" not in source
        assert "import socket" not in source and "import asyncio\n" not in source
