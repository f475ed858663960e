"""The smallest useful iccm-network server: two tools, one call to run().

Run it with ``python examples/hello.py`` (listens on every interface, port
8000 or ``MCP_PORT``), then call it::

    iccm-network call ws://localhost:8000 hello '{"name": "Ada"}'
"""

from __future__ import annotations

from iccm_network import App

app = App("hello", version="1.0.0")


@app.tool
def hello(name: str = "world") -> str:
    """Greet someone.

    Args:
        name: Who to greet.
    """
    return f"Hello, {name}!"


@app.tool(annotations={"readOnlyHint": True, "idempotentHint": True})
async def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first addend.
        b: The second addend.
    """
    return a + b


if __name__ == "__main__":
    app.run()
