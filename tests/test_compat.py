"""``MCPServer``, the seed-compatible shim, over real loopback sockets.

It must accept the three shapes the ICCM components described their tools in
(Dewey's dict of dicts, Godot's list of dicts, Fiedler's ``mcp.types.Tool``
objects), publish their schemas unchanged, call handlers as
``handler(**arguments)`` whether sync or async, and start, serve and stop the
way the seed's ``MCPServer`` did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from mcp.types import Tool as SdkTool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from iccm_network import ToolDefinitionError, ToolError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.compat import MCPServer

TIMEOUT = 10.0
"""Seconds any one wait may take; each takes milliseconds when all is well."""

ECHO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "What to send back"},
        "times": {"type": "integer"},
    },
    "required": ["text"],
}


async def echo(text: str, times: int = 1) -> str:
    return text * times


def shout(text: str, times: int = 1) -> str:
    return text.upper() * times


class Wire:
    """Raw JSON-RPC over one connection, as the old ICCM clients spoke it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(json.dumps(message))
        async with async_timeout(TIMEOUT):
            reply: dict[str, Any] = json.loads(await self.ws.recv())
        assert reply["id"] == self.next_id
        return reply

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = await self.request("tools/call", {"name": name, "arguments": arguments})
        result: dict[str, Any] = reply["result"]
        return result

    async def start_call(self, request_id: str | int, name: str, arguments: Any) -> None:
        """Send a call without waiting for its reply."""
        params = {"name": name, "arguments": arguments}
        message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        await self.ws.send(json.dumps(message))

    async def tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = (await self.request("tools/list"))["result"]["tools"]
        return tools


@asynccontextmanager
async def running(server: MCPServer) -> AsyncIterator[Wire]:
    await server.start()
    try:
        async with connect(server.url) as ws:
            yield Wire(ws)
    finally:
        await server.stop(grace=0)


def make(tools: Any, **kwargs: Any) -> MCPServer:
    return MCPServer("compat-test", "1.2.3", 0, tools=tools, host="127.0.0.1", **kwargs)


# -- the three shapes ----------------------------------------------------------


async def test_a_dewey_style_dict_of_dicts_is_published_unchanged_and_called() -> None:
    tools = {"echo": {"description": "Echo text", "inputSchema": ECHO_SCHEMA, "handler": echo}}
    async with running(make(tools)) as wire:
        assert await wire.tools() == [
            {"name": "echo", "description": "Echo text", "inputSchema": ECHO_SCHEMA}
        ]
        result = await wire.call("echo", {"text": "ab", "times": 2})
        assert result == {"content": [{"type": "text", "text": "abab"}], "isError": False}


async def test_a_dict_of_dicts_takes_its_handlers_from_a_separate_mapping() -> None:
    tools = {"echo": {"description": "Echo text", "inputSchema": ECHO_SCHEMA}}
    async with running(make(tools, handlers={"echo": echo})) as wire:
        assert (await wire.call("echo", {"text": "x"}))["content"][0]["text"] == "x"


async def test_a_godot_style_list_of_named_dicts_is_published_in_order() -> None:
    tools = [
        {"name": "shout", "description": "Shout text", "inputSchema": ECHO_SCHEMA},
        {"name": "echo", "description": "Echo text", "inputSchema": ECHO_SCHEMA},
    ]
    async with running(make(tools, handlers={"echo": echo, "shout": shout})) as wire:
        assert [tool["name"] for tool in await wire.tools()] == ["shout", "echo"]
        assert (await wire.call("shout", {"text": "hi"}))["content"][0]["text"] == "HI"


async def test_fiedler_style_sdk_tool_objects_are_read_through_their_fields() -> None:
    # Fiedler wrote Tool(name=..., description=..., inputSchema=...): the wire spelling.
    tool = SdkTool.model_validate(
        {
            "name": "echo",
            "description": "Echo text",
            "inputSchema": ECHO_SCHEMA,
            "annotations": {"readOnlyHint": True},
        }
    )
    tools = [tool]
    async with running(make(tools, handlers={"echo": echo})) as wire:
        await wire.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
        [definition] = await wire.tools()
        assert definition["inputSchema"] == ECHO_SCHEMA
        assert definition["annotations"] == {"readOnlyHint": True}
        assert (await wire.call("echo", {"text": "ok"}))["isError"] is False


@dataclass
class OldSdkTool:
    """``mcp.types.Tool`` as mcp 1.x spelled it: camelCase attributes."""

    name: str
    description: str
    inputSchema: dict[str, Any]  # the mcp 1.x spelling
    outputSchema: dict[str, Any] | None = None


async def test_tool_objects_with_mcp_1x_attribute_names_are_accepted() -> None:
    tools = [OldSdkTool("echo", "Echo text", ECHO_SCHEMA)]
    async with running(make(tools, handlers={"echo": echo})) as wire:
        assert (await wire.tools())[0]["inputSchema"] == ECHO_SCHEMA


async def test_an_entry_without_input_schema_gets_one_from_the_handlers_type_hints() -> None:
    async with running(make({"shout": {"handler": shout}})) as wire:
        [definition] = await wire.tools()
        assert definition["inputSchema"]["required"] == ["text"]
        assert definition["inputSchema"]["properties"]["times"]["type"] == "integer"


# -- calling handlers ----------------------------------------------------------


async def test_handlers_receive_the_arguments_as_keyword_arguments() -> None:
    received: list[dict[str, Any]] = []

    async def record(**arguments: Any) -> dict[str, Any]:
        received.append(arguments)
        return {"ok": True}

    tools = {"record": {"description": "d", "inputSchema": ECHO_SCHEMA, "handler": record}}
    async with running(make(tools)) as wire:
        result = await wire.call("record", {"text": "a", "times": 3})
    assert received == [{"text": "a", "times": 3}]
    assert json.loads(result["content"][0]["text"]) == {"ok": True}


async def test_sync_handlers_run_on_the_servers_daemon_worker_threads() -> None:
    # The same threads as App's sync tools: daemon, so a stuck legacy handler
    # cannot keep a stopped process alive.
    def where() -> str:
        return f"{threading.current_thread().name} {threading.current_thread().daemon}"

    tools = {"where": {"inputSchema": {"type": "object"}, "handler": where}}
    async with running(make(tools)) as wire:
        result = await wire.call("where", {})
    assert result["content"][0]["text"] == "iccm-network-tool True"


async def test_a_sync_handler_that_returns_a_coroutine_has_it_awaited() -> None:
    # The legacy dispatch-table idiom: lambda args: some_async_tool(args).
    tools = {"echo": {"inputSchema": ECHO_SCHEMA, "handler": lambda **a: echo(**a)}}
    async with running(make(tools)) as wire:
        assert (await wire.call("echo", {"text": "ok"}))["content"][0]["text"] == "ok"


async def test_a_callable_object_with_an_async_call_method_is_awaited() -> None:
    class Greeter:
        async def __call__(self, text: str) -> str:
            return f"hello {text}"

    tools = {"greet": {"inputSchema": ECHO_SCHEMA, "handler": Greeter()}}
    async with running(make(tools)) as wire:
        assert (await wire.call("greet", {"text": "x"}))["content"][0]["text"] == "hello x"


async def test_a_blocked_sync_handler_does_not_stall_other_calls() -> None:
    release = threading.Event()

    def wait() -> str:
        release.wait(TIMEOUT)
        return "released"

    tools = {
        "wait": {"inputSchema": {"type": "object"}, "handler": wait},
        "echo": {"inputSchema": ECHO_SCHEMA, "handler": echo},
    }
    server = make(tools)
    async with running(server) as wire:
        await wire.start_call("w", "wait", {})
        assert (await wire.call("echo", {"text": "meanwhile"}))["isError"] is False
        release.set()
        async with async_timeout(TIMEOUT):
            reply = json.loads(await wire.ws.recv())
        assert reply["id"] == "w"
        assert reply["result"]["content"][0]["text"] == "released"


async def test_a_tool_error_arrives_as_an_is_error_result() -> None:
    async def refuse(**arguments: Any) -> None:
        raise ToolError("conversation not found", data={"code": -32001})

    tools = {"refuse": {"inputSchema": {"type": "object"}, "handler": refuse}}
    async with running(make(tools)) as wire:
        reply = await wire.request("tools/call", {"name": "refuse", "arguments": {}})
    assert "error" not in reply
    assert reply["result"]["isError"] is True
    assert reply["result"]["content"][0]["text"] == "conversation not found"


async def test_an_unexpected_exception_is_reported_without_its_text() -> None:
    def crash() -> None:
        raise RuntimeError("password=hunter2")

    tools = {"crash": {"inputSchema": {"type": "object"}, "handler": crash}}
    async with running(make(tools)) as wire:
        result = await wire.call("crash", {})
    assert result["isError"] is True
    assert "hunter2" not in json.dumps(result)
    assert "correlation id" in result["content"][0]["text"]


async def test_arguments_that_break_the_hand_written_schema_are_refused() -> None:
    tools = {"echo": {"inputSchema": ECHO_SCHEMA, "handler": echo}}
    async with running(make(tools)) as wire:
        reply = await wire.request("tools/call", {"name": "echo", "arguments": {"times": 2}})
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["errors"][0]["path"] == "/text"


async def test_a_per_tool_timeout_from_the_entry_is_applied() -> None:
    async def hang() -> None:
        await asyncio.sleep(TIMEOUT)

    tools = {"hang": {"inputSchema": {"type": "object"}, "handler": hang, "timeout": 0.05}}
    async with running(make(tools)) as wire:
        result = await wire.call("hang", {})
    assert result["isError"] is True
    assert "timed out after 0.05 s" in result["content"][0]["text"]


async def test_initialize_names_the_server_and_its_version() -> None:
    async with running(make({"echo": {"handler": echo}})) as wire:
        reply = await wire.request(
            "initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}
        )
    assert reply["result"]["serverInfo"] == {"name": "compat-test", "version": "1.2.3"}


# -- lifecycle -----------------------------------------------------------------


async def test_start_returns_once_listening_and_exposes_port_and_url() -> None:
    server = make({"echo": {"handler": echo}})
    await server.start()
    try:
        assert server.port > 0
        assert server.url == f"ws://127.0.0.1:{server.port}"
        async with connect(server.url) as ws:
            await ws.send('{"jsonrpc": "2.0", "id": 1, "method": "ping"}')
            async with async_timeout(TIMEOUT):
                assert json.loads(await ws.recv())["result"] == {}
    finally:
        await server.stop()


async def test_before_start_the_port_is_the_configured_one_and_url_is_refused() -> None:
    server = MCPServer("compat-test", "1.0.0", 8123, tools={"echo": {"handler": echo}})
    assert server.port == 8123
    with pytest.raises(RuntimeError, match="not started"):
        server.url  # noqa: B018 - the property access is the test


async def test_by_default_the_server_binds_every_interface() -> None:
    server = MCPServer("compat-test", "1.0.0", 0, tools={"echo": {"handler": echo}})
    assert server.host is None
    await server.start()
    try:
        assert server.server.sockets[0].getsockname()[0] in ("::", "0.0.0.0")
        async with connect(f"ws://127.0.0.1:{server.port}"):
            pass
    finally:
        await server.stop()


async def test_starting_twice_is_refused() -> None:
    server = make({"echo": {"handler": echo}})
    await server.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await server.start()
    finally:
        await server.stop()


async def test_stop_ends_serve_forever_and_closes_connections_with_1001() -> None:
    server = make({"echo": {"handler": echo}})
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    async with connect(server.url) as ws:
        await server.stop()
        async with async_timeout(TIMEOUT):
            await serving
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1001


async def test_stop_lets_an_in_flight_call_finish_within_the_grace_period() -> None:
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.1)
        return "finished"

    server = make({"slow": {"inputSchema": {"type": "object"}, "handler": slow}})
    async with running(server) as wire:
        await wire.start_call(7, "slow", {})
        async with async_timeout(TIMEOUT):
            await started.wait()
            stopping = asyncio.create_task(server.stop(grace=TIMEOUT))
            reply = json.loads(await wire.ws.recv())
            await stopping
    assert reply["result"]["content"][0]["text"] == "finished"


async def test_cancelling_serve_forever_shuts_the_server_down() -> None:
    server = make({"echo": {"handler": echo}})
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0)  # let it start waiting
    serving.cancel()
    async with async_timeout(TIMEOUT):
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert server.server.draining


async def test_serve_forever_starts_the_server_when_needed() -> None:
    server = make({"echo": {"handler": echo}})
    serving = asyncio.create_task(server.serve_forever())
    try:
        async with async_timeout(TIMEOUT):
            while True:
                try:
                    url = server.url
                    break
                except RuntimeError:
                    await asyncio.sleep(0.01)
        async with connect(url):
            pass
    finally:
        await server.stop()
        async with async_timeout(TIMEOUT):
            await serving


async def test_a_stopped_server_can_be_started_again() -> None:
    server = make({"echo": {"handler": echo}})
    async with running(server) as wire:
        assert (await wire.call("echo", {"text": "one"}))["isError"] is False
    async with running(server) as wire:
        assert (await wire.call("echo", {"text": "two"}))["isError"] is False


async def test_stop_before_start_does_nothing() -> None:
    await make({"echo": {"handler": echo}}).stop()


async def test_settings_are_passed_through_to_the_app() -> None:
    server = make({"echo": {"handler": echo}}, shutdown_grace=3, max_message_size=1024)
    settings = server.app.settings()
    assert (settings.shutdown_grace, settings.max_message_size) == (3, 1024)


async def test_log_records_are_shipped_to_godot_while_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    entries: list[dict[str, Any]] = []

    async def logger_log(**entry: Any) -> dict[str, str]:
        entries.append(entry)
        return {"status": "ok"}

    godot = make({"logger_log": {"inputSchema": {"type": "object"}, "handler": logger_log}})
    await godot.start()
    try:
        shipped = make({"echo": {"handler": echo}}, godot_url=godot.url)
        async with running(shipped) as wire:
            await wire.request("ping")
    finally:
        await godot.stop()
    assert entries, "nothing was shipped"
    assert {entry["component"] for entry in entries} == {"compat-test"}
    assert any("connection open" in entry["message"] for entry in entries)


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from iccm_network.compat import MCPServer

    async def echo(text: str) -> str:
        return text

    server = MCPServer("sig", "1.0.0", 0, tools={"echo": {"handler": echo}}, host="127.0.0.1")

    async def main() -> None:
        await server.start()
        print(server.port, flush=True)
        await server.serve_forever()
        print("drained", flush=True)

    asyncio.run(main())
    """
)


async def test_serve_forever_drains_and_exits_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MCP_SHUTDOWN_GRACE": "1"},
    )
    try:
        assert process.stdout is not None
        async with async_timeout(20):
            port = int(await asyncio.to_thread(process.stdout.readline))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT) as r:
            assert json.load(r)["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        async with async_timeout(20):
            code = await asyncio.to_thread(process.wait)
        assert code == 0, process.stderr.read() if process.stderr else ""
        assert process.stdout.read().strip() == "drained"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- mistakes are caught at construction --------------------------------------


def refused(tools: Any, **kwargs: Any) -> str:
    with pytest.raises(ToolDefinitionError) as caught:
        MCPServer("bad", "1.0.0", 0, tools=tools, **kwargs)
    return str(caught.value)


def test_an_entry_without_a_handler_is_refused_by_name() -> None:
    assert "'echo' has no handler" in refused({"echo": {"inputSchema": ECHO_SCHEMA}})


def test_a_handler_for_an_undeclared_tool_is_refused() -> None:
    message = refused({"echo": {"handler": echo}}, handlers={"ehco": echo})
    assert "['ehco']" in message


def test_a_handler_given_twice_is_refused() -> None:
    message = refused({"echo": {"handler": echo}}, handlers={"echo": echo})
    assert "both" in message


def test_a_misspelled_entry_key_is_refused() -> None:
    message = refused({"echo": {"input_schema": ECHO_SCHEMA, "handler": echo}})
    assert "unknown keys ['input_schema']" in message


def test_an_output_schema_is_refused_rather_than_dropped() -> None:
    entry = {"handler": echo, "outputSchema": {"type": "object"}}
    assert "outputSchema" in refused({"echo": entry})
    old = OldSdkTool("echo", "d", ECHO_SCHEMA, outputSchema={"type": "object"})
    assert "outputSchema" in refused([old], handlers={"echo": echo})


def test_an_entry_whose_name_contradicts_its_key_is_refused() -> None:
    assert "names it 'other'" in refused({"echo": {"name": "other", "handler": echo}})


def test_a_list_entry_without_a_name_is_refused() -> None:
    assert "no name" in refused([{"inputSchema": ECHO_SCHEMA, "handler": echo}])


def test_tools_of_the_wrong_type_are_refused() -> None:
    assert "mapping" in refused("echo")
    assert "got int" in refused([42])


def test_annotations_that_are_not_a_mapping_are_refused() -> None:
    entry = {"handler": echo, "annotations": ["readOnlyHint"]}
    assert "annotations must be a mapping" in refused({"echo": entry})


def test_a_handler_that_is_not_callable_is_refused() -> None:
    assert "not callable" in refused({"echo": {"handler": "echo"}})


def test_an_invalid_input_schema_is_refused() -> None:
    message = refused({"echo": {"inputSchema": {"type": "array"}, "handler": echo}})
    assert '"type": "object"' in message


def test_duplicate_names_in_a_list_are_refused() -> None:
    entry = {"name": "echo", "handler": echo}
    assert "already registered" in refused([entry, dict(entry)])


def test_the_repr_names_the_server_and_its_tools() -> None:
    server = make({"echo": {"handler": echo}})
    assert repr(server) == "MCPServer('compat-test', '1.2.3', tools=['echo'])"
