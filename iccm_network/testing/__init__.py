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

``check`` and ``strategies`` need Hypothesis (``pip install
"iccm-network[testing]"``); without it, importing one of their names raises
an ``ImportError`` that says so. ``local`` and the rest of the library do not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from iccm_network.testing.local import LocalConnection, acall, arequest, call, request

if TYPE_CHECKING:
    from iccm_network.testing.check import check_app, check_tool
    from iccm_network.testing.check_catalog import (
        check_catalog,
        check_prompt,
        check_resource_template,
    )
    from iccm_network.testing.strategies import arguments_for, invalid_arguments_for

_NEED_HYPOTHESIS = {
    "check_app": "check",
    "check_tool": "check",
    "check_catalog": "check_catalog",
    "check_prompt": "check_catalog",
    "check_resource_template": "check_catalog",
    "arguments_for": "strategies",
    "invalid_arguments_for": "strategies",
}

MISSING_HYPOTHESIS = (
    "iccm_network.testing.{name} needs Hypothesis, which iccm-network itself does not "
    'install: pip install "iccm-network[testing]"'
)
"""The message of the ``ImportError`` for a name that needs Hypothesis without it."""


def __getattr__(name: str) -> Any:
    module = _NEED_HYPOTHESIS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_HYPOTHESIS.format(name=name), name="hypothesis") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
