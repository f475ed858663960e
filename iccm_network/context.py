"""The ``Context`` a tool may ask for: who is calling, progress and log channels."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from iccm_network.protocol.capabilities import LOG_LEVELS

__all__ = ["Context"]

ProgressSender = Callable[[dict[str, Any]], Awaitable[None]]
LogSender = Callable[[dict[str, Any]], Awaitable[None]]


class Context:
    """Describes one tool call; declare a parameter annotated ``Context`` to get it.

    ``await ctx.report_progress(...)`` sends progress and ``await
    ctx.info(...)`` (``debug``, ``warning``, ``error``, ``log``) log messages
    to the caller.

    The parameter is left out of the tool's ``inputSchema`` and filled in by
    the framework.

    Args:
        request_id: The JSON-RPC id of the ``tools/call`` request.
        protocol_version: The MCP revision the call is served under.
        client_info: The client's ``clientInfo`` (name, version), when known.
        progress_token: The request's ``_meta.progressToken``, if any.
        send_progress: Sends the params of one ``notifications/progress``.
        logger: The logger a tool should use for this call.
        send_log: Sends the params of one ``notifications/message``; the
            connection drops those below the level the client asked for.
        log_name: The ``logger`` named in log messages (the tool's name).
    """

    __slots__ = (
        "_progress_token",
        "_log_name",
        "_send_log",
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
        send_log: LogSender | None = None,
        log_name: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.protocol_version = protocol_version
        self.client_info: Mapping[str, Any] = client_info or {}
        self.logger = logger or logging.getLogger("iccm_network.tool")
        self._progress_token = progress_token
        self._send_progress = send_progress
        self._send_log = send_log
        self._log_name = log_name

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

    async def log(self, level: str, message: str, **data: Any) -> None:
        """Send a log message to the caller (``notifications/message``).

        Sent only when the client wants that level: in the handshake era
        every level until ``logging/setLevel`` raises the minimum; under
        2026-07-28 only when the request's ``_meta`` asked for a level.

        Args:
            level: ``"debug"``, ``"info"``, ``"notice"``, ``"warning"``,
                ``"error"``, ``"critical"``, ``"alert"`` or ``"emergency"``.
            message: The text.
            **data: JSON-able details; with any, ``data`` is an object
                holding ``message`` and them, else the text alone.
        """
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {LOG_LEVELS}")
        if self._send_log is None:
            return
        # convert imports this module (for the Context annotation): import late.
        from iccm_network.tools.convert import to_jsonable

        payload: Any = message if not data else to_jsonable({"message": message, **data})
        params: dict[str, Any] = {"level": level, "data": payload}
        if self._log_name is not None:
            params["logger"] = self._log_name
        await self._send_log(params)

    async def debug(self, message: str, **data: Any) -> None:
        """Send a ``debug`` log message to the caller; see ``log``.

        Args:
            message: The text.
            **data: JSON-able details.
        """
        await self.log("debug", message, **data)

    async def info(self, message: str, **data: Any) -> None:
        """Send an ``info`` log message to the caller; see ``log``.

        Args:
            message: The text.
            **data: JSON-able details.
        """
        await self.log("info", message, **data)

    async def warning(self, message: str, **data: Any) -> None:
        """Send a ``warning`` log message to the caller; see ``log``.

        Args:
            message: The text.
            **data: JSON-able details.
        """
        await self.log("warning", message, **data)

    async def error(self, message: str, **data: Any) -> None:
        """Send an ``error`` log message to the caller; see ``log``.

        Args:
            message: The text.
            **data: JSON-able details.
        """
        await self.log("error", message, **data)
