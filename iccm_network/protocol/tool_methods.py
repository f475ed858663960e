"""``tools/list`` and ``tools/call``: the part of ``ServerProtocol`` that serves tools.

A mixin of ``ServerProtocol`` (``protocol.server``), kept apart so that each
file holds one kind of request; it reads the protocol's route table and
in-flight bookkeeping, and hands validated calls to the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from iccm_network.errors import InvalidParams, ServerBusy
from iccm_network.protocol.calls import Batch, ServerInfo, ToolCall
from iccm_network.protocol.capabilities import LOG_LEVELS, log_level_index
from iccm_network.protocol.refusals import log_refused
from iccm_network.protocol.results import error_result
from iccm_network.protocol.versions import META_LOG_LEVEL, Features
from iccm_network.protocol.wire import (
    RequestId,
    id_key,
    list_page,
)
from iccm_network.tools.routes import RouteTable, Tool

__all__ = ["ToolMethods"]


class ToolMethods:
    """``tools/list`` and ``tools/call`` for ``ServerProtocol``."""

    _routes: RouteTable
    _tool_named: Callable[[str], Tool | None]
    _info: ServerInfo
    _in_flight: int
    _max_in_flight: int
    _running: dict[tuple[type, Any], ToolCall]
    _to_run: list[ToolCall]

    def _tools_list(self, params: Mapping[str, Any], feats: Features) -> dict[str, Any]:
        info = self._info
        tools = self._routes.definitions(feats)
        return list_page(
            "tools", tools, params, feats, page_size=info.page_size, ttl_ms=info.list_ttl_ms
        )

    def _tools_call(
        self,
        params: Mapping[str, Any],
        meta: Mapping[str, Any] | None,
        request_id: RequestId,
        feats: Features,
        client_info: Mapping[str, Any] | None,
        batch: Batch | None,
        notification: bool,
    ) -> dict[str, Any] | None:
        name = params.get("name")
        if type(name) is not str:
            log_refused(name, request_id, "invalid-params")
            raise InvalidParams('Invalid params: tools/call needs a string "name"')
        tool = self._tool_named(name)
        if tool is None:
            log_refused(name, request_id, "unknown-tool")
            raise InvalidParams(f"Unknown tool: {name}", data={"name": name})
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        elif type(arguments) is not dict:
            log_refused(name, request_id, "invalid-params")
            raise InvalidParams('Invalid params: "arguments" must be an object')
        try:
            kwargs = tool.prepare(arguments)
        except InvalidParams as exc:
            problems = exc.data["errors"]
            log_refused(name, request_id, "invalid-arguments", problems)
            if not feats.validation_as_tool_error:
                raise
            listing = "; ".join(f"{p['path'] or '/'}: {p['message']}" for p in problems)
            return error_result(f"{exc.message}: {listing}", feats, data=exc.data)
        if self._in_flight >= self._max_in_flight:
            log_refused(name, request_id, "busy")
            raise ServerBusy(
                f"Server busy: {self._in_flight} calls already running on this connection",
                data={"maxInFlight": self._max_in_flight},
            )
        token = None if meta is None else meta.get("progressToken")
        log_level = None
        if feats.modern and meta is not None and META_LOG_LEVEL in meta:
            log_level = LOG_LEVELS[log_level_index(meta[META_LOG_LEVEL])]
        call = ToolCall(
            tool=tool,
            arguments=kwargs,
            request_id=request_id,
            features=feats,
            client_info=client_info,
            progress_token=token if isinstance(token, (str, int)) else None,
            log_level=log_level,
            notification=notification,
            batch=batch,
        )
        self._in_flight += 1
        if batch is not None:
            batch.pending += 1
        if not notification:
            self._running[id_key(request_id)] = call
        self._to_run.append(call)
        return None
