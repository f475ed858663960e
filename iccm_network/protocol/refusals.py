"""One log line for each ``tools/call`` the protocol refuses before it runs.

The protocol core decides refusals (unknown tool, invalid arguments, bad
params, busy), so it writes their lines; calls that ran are logged by the
transport's call log. Standard ``logging`` only: no I/O of its own.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["log_refused"]

calls_logger = logging.getLogger("iccm_network.calls")


def log_refused(
    tool: Any, request_id: Any, reason: str, errors: list[dict[str, str]] | None = None
) -> None:
    """Log one INFO line for a ``tools/call`` refused before it ran.

    Args:
        tool: The requested tool name (whatever the client sent).
        request_id: The request's id (``None`` for a notification).
        reason: ``unknown-tool``, ``invalid-arguments``, ``invalid-params`` or ``busy``.
        errors: For invalid arguments, each failing path and message.
    """
    if not calls_logger.isEnabledFor(logging.INFO):
        return
    # The name is whatever a peer sent: cut it to a tool name's longest, and
    # escape lone surrogates that no UTF-8 log file could take.
    tool = str(tool)[:128].encode("utf-8", "backslashreplace").decode("utf-8")
    outcome = "refused:" + reason
    fields: dict[str, Any] = {"tool": tool, "request_id": request_id, "outcome": outcome}
    if errors:
        fields["errors"] = errors
        paths = ",".join(problem["path"] or "/" for problem in errors)
        calls_logger.info(
            "call tool=%s id=%r outcome=%s paths=%s", tool, request_id, outcome, paths, extra=fields
        )
    else:
        calls_logger.info("call tool=%s id=%r outcome=%s", tool, request_id, outcome, extra=fields)
