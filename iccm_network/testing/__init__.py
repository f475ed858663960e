"""Property-test an app's tools: strategies from their schemas, in-memory calls, ``check_app``.

The one-line test a component copies::

    from iccm_network.testing import check_app
    from horace.server import app

    def test_every_tool_honours_its_schema() -> None:
        check_app(app)

Three pieces, usable on their own, one module each:

- ``strategies``: ``arguments_for(tool)`` and ``invalid_arguments_for(tool)``,
  Hypothesis strategies for argument objects that the tool's ``inputSchema``
  accepts, and for ones it rejects (a wrong type at some path, a missing
  required property, an unexpected property, a malformed date or UUID).
- ``local``: ``LocalConnection``, ``call`` and ``request`` (``acall`` and
  ``arequest`` to await): a ``tools/call`` through the server's own
  ``ServerProtocol``, route table, validation and conversion, as JSON text,
  with no socket.
- ``check``: ``check_app(app)`` and ``check_tool(app, name)``: for every tool,
  the schema is valid Draft 2020-12, every generated valid argument set
  reaches the function with the declared Python types, and every invalid one
  is refused with -32602 (or, from 2025-11-25, an ``isError`` result listing
  the failing paths) without reaching the function.
- ``check_catalog``: ``check_catalog(app)``, ``check_prompt(app, name)`` and
  ``check_resource_template(app, uri_template)``: the same for prompt
  arguments and URI template variables, which travel as strings (``prompts/get``
  and ``resources/read``; refusals are -32602 naming the argument).

This package needs Hypothesis (``pip install iccm-network[test]``); the rest of
the library does not.
"""

from iccm_network.testing.check import check_app, check_tool
from iccm_network.testing.check_catalog import check_catalog, check_prompt, check_resource_template
from iccm_network.testing.local import LocalConnection, acall, arequest, call, request
from iccm_network.testing.strategies import arguments_for, invalid_arguments_for

__all__ = [
    "LocalConnection",
    "acall",
    "arequest",
    "arguments_for",
    "call",
    "check_app",
    "check_catalog",
    "check_prompt",
    "check_resource_template",
    "check_tool",
    "invalid_arguments_for",
    "request",
]
