"""The ``MCPClient`` calls for resources, prompts and completion.

``MCPClient`` inherits them from ``CatalogCalls``; every request goes
through the client's ``request`` and so through ``ClientProtocol``, which
builds the JSON-RPC messages. Results are returned as on the wire (plain
dicts), except where a call says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from iccm_network.errors import MCPError

__all__ = ["CatalogCalls", "ResourceCallback"]

logger = logging.getLogger("iccm_network.client")

ResourceCallback = Callable[[str], Any]
"""Called with the URI of a subscribed resource that changed."""


class CatalogCalls:
    """Resource, prompt and completion calls; ``MCPClient`` has them."""

    _resource_callbacks: dict[str, ResourceCallback]
    protocol_version: str

    async def request(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send a request and return its result (``MCPClient.request``)."""
        raise NotImplementedError  # pragma: no cover - MCPClient provides it

    async def _listing(self, method: str, key: str, timeout: float | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: Any = None
        seen: set[str] = set()
        while True:
            page = await self.request(
                method, {} if cursor is None else {"cursor": cursor}, timeout=timeout
            )
            if not isinstance(page, dict) or not isinstance(page.get(key), list):
                raise MCPError(f"{method} returned a result without a {key} array")
            items.extend(page[key])
            cursor = page.get("nextCursor")
            if cursor is None:
                return items
            if str(cursor) in seen:
                raise MCPError(f"{method} repeated the cursor {cursor!r}")
            seen.add(str(cursor))

    async def list_resources(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every fixed resource, as on the wire, following ``nextCursor``.

        Args:
            timeout: Seconds to wait for each page.
        """
        return await self._listing("resources/list", "resources", timeout)

    async def list_resource_templates(
        self, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every resource template, as on the wire, following ``nextCursor``.

        Args:
            timeout: Seconds to wait for each page.
        """
        return await self._listing("resources/templates/list", "resourceTemplates", timeout)

    async def read_resource(
        self, uri: str, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Read a resource: its ``contents`` entries (``text``, or base64 ``blob``).

        Args:
            uri: The resource's URI.
            timeout: Seconds to wait for the reply.

        Raises:
            MCPError: Unknown resource (-32002 in the handshake era, -32602
                under 2026-07-28), invalid template variables, or a failure.
        """
        result = await self.request("resources/read", {"uri": uri}, timeout=timeout)
        if not isinstance(result, dict) or not isinstance(result.get("contents"), list):
            raise MCPError("resources/read returned a result without a contents array")
        contents: list[dict[str, Any]] = result["contents"]
        return contents

    async def list_prompts(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every prompt, as on the wire, following ``nextCursor``.

        Args:
            timeout: Seconds to wait for each page.
        """
        return await self._listing("prompts/list", "prompts", timeout)

    async def get_prompt(
        self,
        name: str,
        arguments: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Get a prompt's messages: the ``prompts/get`` result as on the wire.

        Args:
            name: The prompt's name.
            arguments: Its arguments, as strings.
            timeout: Seconds to wait for the reply.

        Raises:
            MCPError: ``InvalidParams`` naming a bad argument, or another error.
        """
        params = {"name": name, "arguments": dict(arguments or {})}
        result = await self.request("prompts/get", params, timeout=timeout)
        if not isinstance(result, dict) or not isinstance(result.get("messages"), list):
            raise MCPError("prompts/get returned a result without a messages array")
        return result

    async def complete(
        self,
        argument: str,
        value: str = "",
        *,
        prompt: str | None = None,
        template: str | None = None,
        context: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Ask for completions of one argument: ``{"values", "total", "hasMore"}``.

        Args:
            argument: The prompt argument or template variable.
            value: What has been typed so far.
            prompt: The prompt's name (give this or ``template``).
            template: The resource template's URI template.
            context: The other arguments already given.
            timeout: Seconds to wait for the reply.

        Raises:
            ValueError: Neither or both of ``prompt`` and ``template``.
        """
        if (prompt is None) == (template is None):
            raise ValueError("complete() needs exactly one of prompt= or template=")
        ref = (
            {"type": "ref/prompt", "name": prompt}
            if prompt is not None
            else {"type": "ref/resource", "uri": template}
        )
        params: dict[str, Any] = {"ref": ref, "argument": {"name": argument, "value": value}}
        if context:
            params["context"] = {"arguments": dict(context)}
        result = await self.request("completion/complete", params, timeout=timeout)
        if not isinstance(result, dict) or not isinstance(result.get("completion"), dict):
            raise MCPError("completion/complete returned a result without a completion")
        completion: dict[str, Any] = result["completion"]
        return completion

    async def _subscribe(self, uri: str, timeout: float | None) -> None:
        """Ask for ``uri``'s updates in the connection's era (``MCPClient`` provides it)."""
        raise NotImplementedError  # pragma: no cover - MCPClient provides it

    async def _unsubscribe(self, uri: str, timeout: float | None) -> None:
        """Stop ``uri``'s updates in the connection's era (``MCPClient`` provides it)."""
        raise NotImplementedError  # pragma: no cover - MCPClient provides it

    async def subscribe_resource(
        self, uri: str, on_update: ResourceCallback, *, timeout: float | None = None
    ) -> None:
        """Subscribe to a resource; ``on_update(uri)`` runs on each change.

        In the handshake era this sends ``resources/subscribe``; under
        2026-07-28 it opens a ``subscriptions/listen`` stream for ``uri`` and
        returns once the server has acknowledged it. A subscription lives as
        long as the connection: after a reconnect, subscribe again.

        Args:
            uri: The resource's URI.
            on_update: Called with the URI of each ``notifications/resources/updated``.
            timeout: Seconds to wait for the reply or the acknowledgement.

        Raises:
            MCPError: Unknown resource, or (2026-07-28) a server that does
                not acknowledge updates of ``uri``.
            TimeoutError: No answer within ``timeout``.
        """
        self._resource_callbacks[uri] = on_update
        try:
            await self._subscribe(uri, timeout)
        except BaseException:
            self._resource_callbacks.pop(uri, None)
            raise

    async def unsubscribe_resource(self, uri: str, *, timeout: float | None = None) -> None:
        """End a subscription made with ``subscribe_resource``.

        Under 2026-07-28 this cancels its ``subscriptions/listen`` stream
        (over HTTP, by closing the stream's response).

        Args:
            uri: The resource's URI.
            timeout: Seconds to wait for the reply (handshake era).
        """
        self._resource_callbacks.pop(uri, None)
        await self._unsubscribe(uri, timeout)

    def _resource_updated(self, params: Mapping[str, Any]) -> None:
        uri = params.get("uri")
        if not isinstance(uri, str):
            return
        callback = self._resource_callbacks.get(uri)
        if callback is None:
            return
        try:
            callback(uri)
        except Exception:
            logger.exception("resource update callback failed")
