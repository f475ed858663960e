"""What a server declares it can do: the ``capabilities`` object (pure).

Only what the app has is declared. Each feature is one flag, so a new
feature (resources, prompts, completion) adds a keyword, not a new builder.
"""

from __future__ import annotations

from typing import Any, Final

from iccm_network.errors import InvalidParams

__all__ = ["LOG_LEVELS", "log_level_index", "server_capabilities"]

LOG_LEVELS: Final = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
"""MCP's log levels (RFC 5424 severities), least severe first."""


def server_capabilities(
    *,
    tools: bool = False,
    logging: bool = True,
    resources: bool = False,
    resource_subscribe: bool = False,
    prompts: bool = False,
    completions: bool = False,
    list_changed: bool = True,
) -> dict[str, Any]:
    """The ``capabilities`` object for what a server offers.

    Args:
        tools: The app has tools.
        logging: Tools may send log messages (``notifications/message``).
        resources: The app has resources or resource templates.
        resource_subscribe: Clients may subscribe to resource updates.
        prompts: The app has prompts.
        completions: The server answers ``completion/complete``.
        list_changed: ``notifications/.../list_changed`` are sent when the
            lists change after start.
    """
    capabilities: dict[str, Any] = {}
    if tools:
        capabilities["tools"] = {"listChanged": list_changed}
    if resources:
        capabilities["resources"] = {"subscribe": resource_subscribe, "listChanged": list_changed}
    if prompts:
        capabilities["prompts"] = {"listChanged": list_changed}
    if completions:
        capabilities["completions"] = {}
    if logging:
        capabilities["logging"] = {}
    return capabilities


def log_level_index(level: Any) -> int:
    """The rank of an MCP log level, least severe first.

    Args:
        level: The level as received.

    Raises:
        InvalidParams: It is not one of ``LOG_LEVELS``.
    """
    if level not in LOG_LEVELS:
        raise InvalidParams(
            f"Invalid params: unknown log level {level!r}", data={"levels": list(LOG_LEVELS)}
        )
    return LOG_LEVELS.index(level)
