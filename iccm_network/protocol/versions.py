"""The MCP protocol revisions served, and what each one changes on the wire."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALL_VERSIONS",
    "DEFAULT_VERSION",
    "HANDSHAKE_VERSIONS",
    "LATEST_HANDSHAKE_VERSION",
    "META_CLIENT_CAPABILITIES",
    "META_CLIENT_INFO",
    "META_LOG_LEVEL",
    "META_PROTOCOL_VERSION",
    "META_SERVER_INFO",
    "MODERN_VERSIONS",
    "Features",
    "features",
]

HANDSHAKE_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Revisions negotiated with ``initialize``, oldest first."""

MODERN_VERSIONS: Final = ("2026-07-28",)
"""Stateless revisions: every request carries its version in ``params._meta``."""

ALL_VERSIONS: Final = (*HANDSHAKE_VERSIONS, *MODERN_VERSIONS)
LATEST_HANDSHAKE_VERSION: Final = HANDSHAKE_VERSIONS[-1]

DEFAULT_VERSION: Final = "2024-11-05"
"""Rules for requests before ``initialize``: what the old ICCM clients speak."""

META_PROTOCOL_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES: Final = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO: Final = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO: Final = "io.modelcontextprotocol/serverInfo"
META_LOG_LEVEL: Final = "io.modelcontextprotocol/logLevel"
"""A 2026-07-28 request's opt-in to log messages: the least severe level it wants."""


class Features:
    """What one protocol revision puts in tool definitions and results.

    Args:
        version: The revision.
    """

    __slots__ = (
        "annotations",
        "modern",
        "result_type",
        "structured_content",
        "title",
        "validation_as_tool_error",
        "version",
    )

    def __init__(self, version: str) -> None:
        index = ALL_VERSIONS.index(version)
        self.version = version
        # Tool annotations arrived in 2025-03-26; titles, outputSchema and
        # structuredContent in 2025-06-18; 2025-11-25 asks servers to report
        # argument validation failures as tool errors the model can read.
        self.annotations = index >= ALL_VERSIONS.index("2025-03-26")
        self.title = index >= ALL_VERSIONS.index("2025-06-18")
        self.structured_content = self.title
        self.validation_as_tool_error = index >= ALL_VERSIONS.index("2025-11-25")
        self.modern = version in MODERN_VERSIONS
        self.result_type = self.modern


_FEATURES: Final = {version: Features(version) for version in ALL_VERSIONS}


def features(version: str) -> Features:
    """The ``Features`` of a served revision.

    Args:
        version: One of ``ALL_VERSIONS``.
    """
    return _FEATURES[version]
