"""The import graph: no cycles, and pure cores that import no I/O library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "iccm_network"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> set[str]:
    """Modules imported at module level, type-only imports (``if TYPE_CHECKING``) included."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        imported = _imports(ast.parse(path.read_text()))
        graph[_module_name(path)] = {name for name in imported if name.startswith("iccm_network")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done or module not in graph:
            return None
        for imported in sorted(graph[module]):
            cycle = walk(imported, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = walk(module, [])
        if cycle is not None:
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


PURE_PACKAGES = ("protocol", "tools", "catalog")
"""The layers that make every protocol decision: no I/O, testable without a socket."""


@pytest.mark.parametrize(
    "path",
    sorted(path for name in PURE_PACKAGES for path in (PACKAGE / name).rglob("*.py")),
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_a_pure_core_imports_no_io_library(path: Path) -> None:
    tree = ast.parse(path.read_text())
    every = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots = {name.split(".")[0] for name in every}
    assert not roots & {"asyncio", "websockets", "h11", "socket", "ssl"}


def test_declaring_tools_loads_no_transport() -> None:
    # `import iccm_network` and registering a tool load neither websockets
    # nor h11: the transport comes with the first server, and the import
    # stays quick (its time is measured in `python -m benchmarks coldstart`).
    script = (
        "import sys, iccm_network\n"
        "app = iccm_network.App('quick')\n"
        "def echo(text: str) -> str:\n"
        "    return text\n"
        "app.add_tool(echo)\n"
        "loaded = [m for m in sys.modules"
        " if m.split('.')[0] in ('websockets', 'h11') or m.startswith('iccm_network.transport')]\n"
        "print(sorted(loaded))\n"
        "from iccm_network import Server\n"
        "print(Server.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == ["[]", "iccm_network.transport.websocket"]
