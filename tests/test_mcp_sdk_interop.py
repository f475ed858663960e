"""The official MCP Python SDK talks to an iccm-network server in every mode it offers.

Each test serves a small app on 127.0.0.1 (port 0) and connects to it with the
SDK (``mcp`` 2.x) through the WebSocket adapter in ``mcp_sdk_adapter``:

- ``session``: a low-level ``ClientSession`` and its ``initialize()`` handshake;
- ``legacy``: ``Client(mode="legacy")``, the same handshake through the high-level client;
- ``auto``: ``Client(mode="auto")``, which probes ``server/discover`` and adopts 2026-07-28;
- ``2026-07-28``: ``Client(mode="2026-07-28")``, no handshake at all, every
  request carries its own ``_meta`` envelope.

The SDK validates every result against the negotiated revision's schema, so a
passing call also means the server's result had the shape that revision requires.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_sdk_adapter import WebSocketTransport, open_client, open_session
from mcp_types import INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION
from sample_tools import add, echo, fail
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from iccm_network import App

TIMEOUT = 5.0
"""Seconds one whole test may take; each takes a few milliseconds when all is well."""

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"

app = App("interop", version="1.2.3")
for tool in (add, echo, fail):
    app.add_tool(tool)


@app.tool
def stats(values: list[float]) -> dict[str, float]:
    """Summarize some numbers.

    Args:
        values: The numbers.
    """
    return {"min": min(values), "max": max(values)}


@app.tool
def crash() -> str:
    """Fail with an unexpected exception, whose text must not reach the client."""
    raise RuntimeError("database password is hunter2")


class ToolApi(Protocol):
    """What ``ClientSession`` and ``Client`` have in common, and what the tests use."""

    async def list_tools(self) -> types.ListToolsResult: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult: ...


@dataclass
class Connection:
    """One connected SDK client, whichever API it came from."""

    api: ToolApi
    """The object the test drives: the ``ClientSession`` itself, or the ``Client``."""
    session: ClientSession
    """The low-level session (``Client.session`` for a ``Client``)."""
    transport: WebSocketTransport
    """The adapter, with every frame that crossed the wire."""

    @property
    def protocol_version(self) -> str | None:
        return self.session.protocol_version

    @property
    def server_info(self) -> types.Implementation | None:
        return self.session.server_info


MODES = ["session", "legacy", "auto", "2026-07-28"]
NEGOTIATED = {
    "session": "2025-11-25",  # ClientSession.initialize() proposes the newest handshake version
    "legacy": "2025-11-25",
    "auto": "2026-07-28",  # server/discover succeeded, so no fallback to initialize
    "2026-07-28": "2026-07-28",
}


@asynccontextmanager
async def serving() -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port and yield its URL.

    Started inside the test's own task (not in a fixture), so the server's
    context is entered and exited by the same task.
    """
    async with app.serving(host="127.0.0.1", port=0) as server:
        assert server.port > 0
        yield server.url


@asynccontextmanager
async def connected(mode: str, path: str = "/") -> AsyncIterator[Connection]:
    """Serve ``app`` and connect an SDK client in ``mode``; the whole test is bounded by TIMEOUT."""
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            transport = WebSocketTransport(url + path)
            if mode == "session":
                async with open_session(transport) as session:
                    await session.initialize()
                    yield Connection(session, session, transport)
            else:
                async with open_client(transport, mode=mode) as client:
                    yield Connection(client, client.session, transport)


def text_of(result: types.CallToolResult) -> str:
    """The result's single text block."""
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def wire_requests(transport: WebSocketTransport, method: str) -> list[dict[str, Any]]:
    """The requests for ``method`` that went out on the wire, as sent."""
    return [m for m in transport.sent() if m.get("method") == method and "id" in m]


def wire_reply(transport: WebSocketTransport, request: dict[str, Any]) -> dict[str, Any]:
    """The reply the server sent to ``request``, as received."""
    replies = [m for m in transport.received() if m.get("id") == request["id"]]
    assert len(replies) == 1, replies
    reply: dict[str, Any] = replies[0]
    return reply


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each of the SDK's ways to connect."""
    value: str = request.param
    return value


# --- connecting -------------------------------------------------------------------------------


async def test_connects_and_negotiates_the_expected_version(mode: str) -> None:
    async with connected(mode) as connection:
        assert connection.protocol_version == NEGOTIATED[mode]
        if mode != "2026-07-28":  # a pinned modern client never asks who the server is
            assert connection.server_info is not None
            assert (connection.server_info.name, connection.server_info.version) == (
                "interop",
                "1.2.3",
            )


async def test_any_path_is_accepted(mode: str) -> None:
    async with connected(mode, path="/some/deep/path?x=1") as connection:
        assert {tool.name for tool in (await connection.api.list_tools()).tools} >= {"add"}


async def test_the_mcp_subprotocol_the_adapter_offers_is_selected() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            async with connect(url, subprotocols=[Subprotocol("mcp")]) as websocket:
                assert websocket.subprotocol == "mcp"


async def test_handshake_sends_initialize_then_initialized() -> None:
    async with connected("session") as connection:
        await connection.api.list_tools()  # by its reply, the notification went out before it
        methods = [m.get("method") for m in connection.transport.sent()]
        assert methods == ["initialize", "notifications/initialized", "tools/list"]
        initialize = wire_requests(connection.transport, "initialize")[0]
        result = wire_reply(connection.transport, initialize)["result"]
        assert result["protocolVersion"] == "2025-11-25"
        assert result["serverInfo"] == {"name": "interop", "version": "1.2.3"}
        assert "tools" in result["capabilities"]
        # The notification got no reply: every frame received answers a request.
        assert all("id" in m for m in connection.transport.received())


async def test_auto_mode_adopts_the_discover_result() -> None:
    async with connected("auto") as connection:
        discover = wire_requests(connection.transport, "server/discover")
        assert len(discover) == 1
        assert wire_requests(connection.transport, "initialize") == []
        result = wire_reply(connection.transport, discover[0])["result"]
        assert "2026-07-28" in result["supportedVersions"]
        assert result["resultType"] == "complete"
        assert result["cacheScope"] in ("public", "private")
        assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0
        assert "tools" in result["capabilities"]


async def test_session_ping_answers_an_empty_result() -> None:
    async with connected("session") as connection:
        # ClientSession.send_ping is not deprecated (only Client.send_ping is).
        result = await connection.session.send_ping()
        assert isinstance(result, types.EmptyResult)
        ping = wire_requests(connection.transport, "ping")[0]
        assert wire_reply(connection.transport, ping)["result"] == {}


# --- tools/list -------------------------------------------------------------------------------


async def test_list_tools_shows_every_tool_with_its_input_schema(mode: str) -> None:
    async with connected(mode) as connection:
        listing = await connection.api.list_tools()
        tools = {tool.name: tool for tool in listing.tools}
        assert set(tools) == {"add", "echo", "stats", "fail", "crash"}
        assert listing.next_cursor is None

        add_tool = tools["add"]
        assert add_tool.description == "Add two integers."
        schema = add_tool.input_schema
        assert schema["type"] == "object"
        assert schema["properties"]["a"]["type"] == "integer"
        assert schema["properties"]["b"]["type"] == "integer"
        assert schema["properties"]["a"]["description"] == "The first addend."
        assert sorted(schema["required"]) == ["a", "b"]
        assert schema["additionalProperties"] is False

        assert tools["stats"].input_schema["properties"]["values"]["type"] == "array"
        assert tools["crash"].input_schema["type"] == "object"
        assert tools["crash"].input_schema.get("required", []) == []


async def test_output_schema_comes_from_the_return_annotation(mode: str) -> None:
    async with connected(mode) as connection:
        tools = {tool.name: tool for tool in (await connection.api.list_tools()).tools}
        add_output = tools["add"].output_schema
        assert add_output is not None
        assert add_output["type"] == "object"
        assert add_output["properties"]["result"]["type"] == "integer"
        stats_output = tools["stats"].output_schema
        assert stats_output is not None and stats_output["type"] == "object"
        # A str return gives text only: no outputSchema.
        assert tools["echo"].output_schema is None


async def test_modern_tools_list_carries_cache_hints(mode: str) -> None:
    async with connected(mode) as connection:
        await connection.api.list_tools()
        request = wire_requests(connection.transport, "tools/list")[0]
        result = wire_reply(connection.transport, request)["result"]
        if NEGOTIATED[mode] == "2026-07-28":
            assert request["params"]["_meta"][PROTOCOL_VERSION_KEY] == "2026-07-28"
            assert result["resultType"] == "complete"
            assert result["cacheScope"] in ("public", "private")
            assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0
        else:
            assert PROTOCOL_VERSION_KEY not in request.get("params", {}).get("_meta", {})


# --- tools/call -------------------------------------------------------------------------------


async def test_int_result_is_text_and_wrapped_structured_content(mode: str) -> None:
    async with connected(mode) as connection:
        result = await connection.api.call_tool("add", {"a": 2, "b": 3})
        assert result.is_error is False
        assert text_of(result) == "5"
        assert result.structured_content == {"result": 5}


async def test_str_result_is_the_text_itself_without_structured_content(mode: str) -> None:
    async with connected(mode) as connection:
        result = await connection.api.call_tool("echo", {"text": "héllo, wörld"})
        assert result.is_error is False
        assert text_of(result) == "héllo, wörld"
        assert result.structured_content is None
        request = wire_requests(connection.transport, "tools/call")[0]
        assert "structuredContent" not in wire_reply(connection.transport, request)["result"]


async def test_object_result_is_compact_json_and_structured_content_as_is(mode: str) -> None:
    async with connected(mode) as connection:
        result = await connection.api.call_tool("stats", {"values": [1, 2.5]})
        assert result.is_error is False
        assert result.structured_content == {"min": 1.0, "max": 2.5}
        text = text_of(result)
        assert json.loads(text) == {"min": 1.0, "max": 2.5}
        assert " " not in text  # compact JSON


async def test_modern_results_carry_result_type(mode: str) -> None:
    async with connected(mode) as connection:
        await connection.api.call_tool("add", {"a": 1, "b": 1})
        request = wire_requests(connection.transport, "tools/call")[0]
        result = wire_reply(connection.transport, request)["result"]
        if NEGOTIATED[mode] == "2026-07-28":
            assert request["params"]["_meta"][PROTOCOL_VERSION_KEY] == "2026-07-28"
            assert result["resultType"] == "complete"
        assert result["isError"] is False


async def test_tool_error_gives_is_error_with_its_message(mode: str) -> None:
    async with connected(mode) as connection:
        result = await connection.api.call_tool("fail", {"reason": "the disk is full"})
        assert result.is_error is True
        assert "the disk is full" in text_of(result)


async def test_unexpected_exception_gives_is_error_without_its_text(mode: str) -> None:
    async with connected(mode) as connection:
        result = await connection.api.call_tool("crash", {})
        assert result.is_error is True
        text = text_of(result)
        assert text  # a readable message...
        assert "hunter2" not in text and "Traceback" not in text  # ...that leaks nothing


async def test_unknown_tool_is_invalid_params(mode: str) -> None:
    async with connected(mode) as connection:
        with pytest.raises(MCPError) as caught:
            await connection.api.call_tool("no_such_tool", {})
        assert caught.value.code == INVALID_PARAMS


async def test_invalid_arguments_are_a_tool_error_listing_the_path(mode: str) -> None:
    # Every SDK mode negotiates 2025-11-25 or later, where a schema violation is
    # reported as an isError result the model can correct itself from.
    async with connected(mode) as connection:
        result = await connection.api.call_tool("add", {"a": "two", "b": 3})
        assert result.is_error is True
        assert "/a" in text_of(result)


async def test_concurrent_calls_each_get_their_own_reply(mode: str) -> None:
    async with connected(mode) as connection:
        sums: dict[int, int] = {}

        async def call(n: int) -> None:
            result = await connection.api.call_tool("add", {"a": n, "b": 1000})
            sums[n] = json.loads(text_of(result))

        async with anyio.create_task_group() as task_group:
            for n in range(20):
                task_group.start_soon(call, n)
        assert sums == {n: n + 1000 for n in range(20)}


# --- every handshake version, through the low-level session ------------------------------------


def initialize_request(version: str) -> types.InitializeRequest:
    return types.InitializeRequest(
        params=types.InitializeRequestParams(
            protocol_version=version,
            capabilities=types.ClientCapabilities(),
            client_info=types.Implementation(name="interop-test", version="0"),
        )
    )


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_every_handshake_version_is_echoed_and_shapes_results(version: str) -> None:
    has_structured = version >= "2025-06-18"  # outputSchema and structuredContent arrived here
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            transport = WebSocketTransport(url)
            async with open_session(transport) as session:
                initialized = await session.send_request(
                    initialize_request(version), types.InitializeResult
                )
                assert initialized.protocol_version == version
                session.adopt(initialized)
                await session.send_notification(types.InitializedNotification())

                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                assert (tools["add"].output_schema is not None) is has_structured

                result = await session.call_tool("add", {"a": 20, "b": 22})
                assert text_of(result) == "42"
                request = wire_requests(transport, "tools/call")[0]
                wire_result = wire_reply(transport, request)["result"]
                assert ("structuredContent" in wire_result) is has_structured
                assert wire_result["isError"] is False


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18"])
async def test_invalid_arguments_before_2025_11_25_are_invalid_params(version: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            async with open_session(url) as session:
                initialized = await session.send_request(
                    initialize_request(version), types.InitializeResult
                )
                session.adopt(initialized)
                with pytest.raises(MCPError) as caught:
                    await session.call_tool("add", {"a": "two", "b": 3})
                assert caught.value.code == INVALID_PARAMS
                errors = caught.value.data["errors"]
                assert [error["path"] for error in errors] == ["/a"]
                assert all(isinstance(error["message"], str) for error in errors)


async def test_unknown_handshake_version_is_answered_with_the_newest() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            async with open_session(url) as session:
                initialized = await session.send_request(
                    initialize_request("1999-01-01"), types.InitializeResult
                )
                assert initialized.protocol_version == "2025-11-25"


async def test_unsupported_modern_version_is_32022_naming_the_supported_ones() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving() as url:
            async with open_session(url) as session:
                with pytest.raises(MCPError) as caught:
                    await session.send_discover("2099-01-01")
                assert caught.value.code == UNSUPPORTED_PROTOCOL_VERSION
                data = types.UnsupportedProtocolVersionErrorData.model_validate(caught.value.data)
                assert data.requested == "2099-01-01"
                assert set(data.supported) == {
                    "2024-11-05",
                    "2025-03-26",
                    "2025-06-18",
                    "2025-11-25",
                    "2026-07-28",
                }
                # ...and the SDK's own discover() then settles on 2026-07-28.
                discovered = await session.discover()
                assert "2026-07-28" in discovered.supported_versions
                assert session.protocol_version == "2026-07-28"
