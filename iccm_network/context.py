"""The ``Context`` a tool may ask for: who is calling, and a progress channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["Context"]

ProgressSender = Callable[[dict[str, Any]], Awaitable[None]]


class Context:
    """Describes one tool call; declare a parameter annotated ``Context`` to get it.

    The parameter is left out of the tool's ``inputSchema`` and filled in by
    the framework.

    Args:
        request_id: The JSON-RPC id of the ``tools/call`` request.
        protocol_version: The MCP revision the call is served under.
        client_info: The client's ``clientInfo`` (name, version), when known.
        progress_token: The request's ``_meta.progressToken``, if any.
        send_progress: Sends the params of one ``notifications/progress``.
        logger: The logger a tool should use for this call.
    """

    __slots__ = (
        "_progress_token",
        "_send_progress",
        "client_info",
        "logger",
        "protocol_version",
        "request_id",
    )

    def __init__(
        self,
        *,
        request_id: str | int | float | None,
        protocol_version: str,
        client_info: Mapping[str, Any] | None = None,
        progress_token: str | int | None = None,
        send_progress: ProgressSender | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.request_id = request_id
        self.protocol_version = protocol_version
        self.client_info: Mapping[str, Any] = client_info or {}
        self.logger = logger or logging.getLogger("iccm_network.tool")
        self._progress_token = progress_token
        self._send_progress = send_progress

    @property
    def progress_token(self) -> str | int | None:
        """The progress token the caller sent, or ``None``."""
        return self._progress_token

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send ``notifications/progress`` for this call.

        A no-op when the request carried no ``progressToken``.

        Args:
            progress: Progress so far; should increase with every report.
            total: The value ``progress`` reaches when done, if known.
            message: A short human-readable status.
        """
        if self._progress_token is None or self._send_progress is None:
            return
        params: dict[str, Any] = {"progressToken": self._progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._send_progress(params)
