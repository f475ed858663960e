"""The tools the official MCP conformance suite calls, served over Streamable HTTP.

``.ci/run`` starts it bound to loopback and runs the suite's server scenarios
that a tools-only server can pass (listed in ``.ci/conformance-scenarios.txt``)
against ``http://127.0.0.1:PORT/mcp``::

    MCP_HOST=127.0.0.1 MCP_PORT=8765 python examples/conformance_app.py
"""

from __future__ import annotations

from iccm_network import App, Context, ToolError

app = App("iccm-conformance", version="1.0.0")


@app.tool
def test_simple_text() -> str:
    """Return a fixed text."""
    return "This is a simple text response for testing."


@app.tool
def test_error_handling() -> str:
    """Always fail, as a tool error."""
    raise ToolError("This tool intentionally returns an error for testing")


@app.tool
async def test_tool_with_progress(ctx: Context) -> str:
    """Report progress three times, then finish.

    Args:
        ctx: The call's context.
    """
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"at {step}%")
    return "Progress test completed"


if __name__ == "__main__":
    app.run()
