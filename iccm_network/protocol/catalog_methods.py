"""Resources, prompts and completion: the part of ``ServerProtocol`` that serves the catalog.

A mixin of ``ServerProtocol`` (``protocol.server``), kept apart so that each
file holds one kind of request. Reads, prompts and completion hooks run like
tool calls: they become ``ToolCall`` entries whose ``render`` shapes the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from iccm_network.catalog.table import META_SUBSCRIPTION_ID, Catalog, Deferred, resource_not_found
from iccm_network.errors import InvalidParams, MethodNotFound, ServerBusy
from iccm_network.protocol.calls import Batch, ServerInfo, ToolCall
from iccm_network.protocol.versions import Features
from iccm_network.protocol.wire import (
    RequestId,
    finish_result,
    id_key,
    list_page,
)

if TYPE_CHECKING:
    from iccm_network.tools.routes import RouteTable

__all__ = ["CATALOG_METHODS", "CatalogMethods", "Listen"]

_LIST_FILTERS: Final = {
    "toolsListChanged": "tools",
    "resourcesListChanged": "resources",
    "promptsListChanged": "prompts",
}
"""A ``subscriptions/listen`` filter's list-change flags, and the lists they name."""


@dataclass(frozen=True, slots=True)
class Listen:
    """One open ``subscriptions/listen`` stream (2026-07-28), as acknowledged."""

    request_id: RequestId
    uris: frozenset[str]
    """The resources whose ``notifications/resources/updated`` it gets."""
    lists: frozenset[str]
    """The lists (``"tools"``, ``"resources"``, ``"prompts"``) whose changes it gets."""
    closing: dict[str, Any]
    """Its result, sent when the server ends the stream."""


class CatalogMethods:
    """``resources/*``, ``prompts/*``, ``completion/complete`` and subscriptions."""

    _catalog: Catalog
    _info: ServerInfo
    _in_flight: int
    _max_in_flight: int
    _running: dict[tuple[type, Any], ToolCall]
    _to_run: list[ToolCall]
    _subscribed: set[str]
    _listens: dict[tuple[type, Any], Listen]
    _max_subscriptions: int
    _routes: RouteTable

    if TYPE_CHECKING:
        # ServerProtocol writes the notifications.
        def _notify(self, method: str, params: dict[str, Any]) -> None: ...

    def _catalog_request(
        self,
        method: str,
        params: Mapping[str, Any],
        meta: Mapping[str, Any] | None,
        request_id: RequestId,
        feats: Features,
        client_info: Mapping[str, Any] | None,
        batch: Batch | None,
    ) -> dict[str, Any] | None:
        catalog = self._catalog
        listing = _LISTINGS.get(method)
        if listing is not None:
            return self._list_page(listing, catalog.definitions(listing, feats), params, feats)
        if method == "resources/read":
            planned: dict[str, Any] | Deferred = catalog.read(params, feats)
        elif method == "prompts/get":
            planned = catalog.get_prompt(params, feats)
        elif method == "completion/complete":
            planned = catalog.complete(params, feats)
        elif method == "subscriptions/listen" and feats.modern:
            self._listen(params, request_id, feats)
            return None  # the stream stays open; its reply would close it
        elif method in ("resources/subscribe", "resources/unsubscribe") and not feats.modern:
            uri = params.get("uri")
            if type(uri) is not str:
                raise InvalidParams(f'Invalid params: {method} needs a string "uri"')
            if method == "resources/unsubscribe":
                self._subscribed.discard(uri)
            elif catalog.known_uri(uri):
                if uri not in self._subscribed:
                    self._make_room(1)
                self._subscribed.add(uri)
            else:
                raise resource_not_found(uri, feats)
            return {}
        else:
            raise MethodNotFound(f"Method not found: {method}")
        if isinstance(planned, dict):
            return finish_result(planned, feats)
        if self._in_flight >= self._max_in_flight:
            raise ServerBusy(
                f"Server busy: {self._in_flight} calls already running on this connection",
                data={"maxInFlight": self._max_in_flight},
            )
        token = None if meta is None else meta.get("progressToken")
        call = ToolCall(
            tool=planned.tool,
            arguments=planned.arguments,
            request_id=request_id,
            features=feats,
            client_info=client_info,
            progress_token=token if isinstance(token, (str, int)) else None,
            batch=batch,
            render=planned.render,
        )
        self._in_flight += 1
        if batch is not None:
            batch.pending += 1
        self._running[id_key(request_id)] = call
        self._to_run.append(call)
        return None

    def _make_room(self, more: int) -> None:
        """Raise ``ServerBusy`` unless ``more`` subscriptions fit in ``max_subscriptions``."""
        listens = self._listens.values()
        held = len(self._subscribed) + sum(1 + len(listen.uris) for listen in listens)
        limit = self._max_subscriptions
        if held + more > limit:
            raise ServerBusy(
                f"Server busy: a connection may hold {limit} resource subscriptions"
                f" (max_subscriptions); this one holds {held} and asks for {more} more",
                data={"maxSubscriptions": limit},
            )

    def _list_page(
        self, key: str, items: list[dict[str, Any]], params: Mapping[str, Any], feats: Features
    ) -> dict[str, Any]:
        info = self._info
        return list_page(
            key, items, params, feats, page_size=info.page_size, ttl_ms=info.list_ttl_ms
        )

    def _listen(self, params: Mapping[str, Any], request_id: RequestId, feats: Features) -> None:
        wanted = params.get("notifications")
        if type(wanted) is not dict:
            raise InvalidParams(
                'Invalid params: subscriptions/listen needs a "notifications" object'
            )
        uris = wanted.get("resourceSubscriptions", [])
        if type(uris) is not list or not all(type(uri) is str for uri in uris):
            raise InvalidParams('Invalid params: "resourceSubscriptions" must be a list of strings')
        for flag in _LIST_FILTERS:
            if type(wanted.get(flag, False)) is not bool:
                raise InvalidParams(f'Invalid params: "{flag}" must be a boolean')
        # Counted before the URIs are matched against the templates, which
        # would otherwise be work without bound.
        self._make_room(1 + len(uris))
        # Acknowledge only what this server can send: changes to the lists it
        # has, updates of the resources it knows.
        has = {
            "tools": bool(self._routes),
            "resources": self._catalog.has_resources,
            "prompts": bool(self._catalog.prompts),
        }
        honoured: dict[str, Any] = {
            flag: True for flag, kind in _LIST_FILTERS.items() if wanted.get(flag) and has[kind]
        }
        known = [uri for uri in uris if self._catalog.known_uri(uri)]
        if known:
            honoured["resourceSubscriptions"] = known
        # Kept even when nothing is honoured: the stream is open until the
        # client cancels it or the server ends it with its result.
        self._listens[id_key(request_id)] = Listen(
            request_id,
            frozenset(honoured.get("resourceSubscriptions", ())),
            frozenset(_LIST_FILTERS[flag] for flag in honoured if flag in _LIST_FILTERS),
            finish_result({"_meta": {META_SUBSCRIPTION_ID: request_id}}, feats),
        )
        self._notify(
            "notifications/subscriptions/acknowledged",
            {"_meta": {META_SUBSCRIPTION_ID: request_id}, "notifications": honoured},
        )


_LISTINGS: Final = {
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
    "prompts/list": "prompts",
}
CATALOG_METHODS: Final = frozenset(
    {
        *_LISTINGS,
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "prompts/get",
        "completion/complete",
    }
)
