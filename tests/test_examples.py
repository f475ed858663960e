"""The examples work: each one is imported and driven over a real socket.

Every server under ``examples/`` (the four migrated ICCM components, the file
catalog and the logging service) gets the handshake an ICCM client performs
and a ``tools/call`` for each of its tools with stand-in data. The deployment
files are checked by running each compose service's command as a real
subprocess, probing it with the Dockerfile's own ``HEALTHCHECK`` command and
stopping it with SIGTERM, as ``docker compose stop`` would.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect

import iccm_network
from iccm_network import App
from iccm_network._timeout import timeout as async_timeout
from iccm_network.tools.validation import ArgumentValidator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEPLOY = EXAMPLES / "deploy"

TIMEOUT = 10.0
"""Seconds one wait on a reply may take; each takes milliseconds when all is well."""

PROCESS_TIMEOUT = 30.0
"""Seconds for a subprocess to start listening or to exit (an interpreter start and imports)."""


@functools.cache
def example(relative: str) -> ModuleType:
    """Import an example file as a module, once per test session."""
    name = "example_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # type hints are resolved in the module's namespace
    spec.loader.exec_module(module)
    return module


def app_of(relative: str) -> App:
    app = example(relative).app
    assert isinstance(app, App)
    return app


class Session:
    """Raw JSON-RPC over one connection, as the relay and the ICCM clients speak it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.called: set[str] = set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        async with async_timeout(TIMEOUT):
            reply: dict[str, Any] = json.loads(await self.ws.recv())
        return reply

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        reply = await self.receive()
        assert reply["id"] == self.next_id
        return reply

    async def result(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.called.add(name)
        reply = await self.request("tools/call", {"name": name, "arguments": arguments})
        assert "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    async def ok(self, name: str, /, **arguments: Any) -> Any:
        """Call a tool that must succeed; return what it returned."""
        result = await self.result(name, arguments)
        assert result["isError"] is False, result
        if "structuredContent" in result:
            structured = result["structuredContent"]
            return structured.get("result", structured) if len(structured) == 1 else structured
        text = result["content"][0]["text"]
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    async def fails(self, name: str, /, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must report a tool error; return the result."""
        result = await self.result(name, arguments)
        assert result["isError"] is True, result
        return result


@asynccontextmanager
async def session(app: App, version: str = "2025-06-18") -> AsyncIterator[Session]:
    """Serve ``app`` on loopback, connect, and perform the MCP handshake."""
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            wire = Session(ws)
            init = await wire.request(
                "initialize",
                {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "test-examples", "version": "0"},
                },
            )
            assert init["result"]["protocolVersion"] == version
            await wire.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            yield wire


async def every_tool_called(wire: Session) -> None:
    listed = {tool["name"] for tool in (await wire.request("tools/list"))["result"]["tools"]}
    assert wire.called == listed


SERVERS = {
    "migrated/dewey.py": {
        "dewey_begin_conversation",
        "dewey_store_message",
        "dewey_get_conversation",
        "dewey_list_conversations",
        "dewey_delete_conversation",
        "dewey_search",
    },
    "migrated/fiedler.py": {
        "fiedler_list_models",
        "fiedler_set_models",
        "fiedler_set_output",
        "fiedler_get_config",
        "fiedler_send",
        "fiedler_set_key",
        "fiedler_delete_key",
        "fiedler_list_keys",
    },
    "migrated/godot.py": {
        "logger_log",
        "logger_query",
        "logger_clear",
        "logger_set_level",
        "conversation_begin",
    },
    "migrated/horace.py": {
        "horace_register_file",
        "horace_search_files",
        "horace_get_file_info",
        "horace_create_collection",
        "horace_list_collections",
        "horace_update_file",
        "horace_restore_version",
    },
    "horace_catalog.py": {
        "catalog_hash_file",
        "catalog_register_file",
        "catalog_get_file",
        "catalog_search",
        "catalog_verify",
    },
    "godot_logging.py": {"logger_log", "logger_query", "logger_set_level", "logger_clear"},
    "file_store.py": {"write_file"},
    "diagram.py": {"bar_chart", "chart_report"},
}


@pytest.mark.parametrize("relative", sorted(SERVERS))
async def test_each_example_completes_the_handshake_and_lists_its_tools(relative: str) -> None:
    async with session(app_of(relative)) as wire:
        # notifications/initialized got no reply: the next frame answers the ping.
        assert (await wire.request("ping"))["result"] == {}
        tools = (await wire.request("tools/list"))["result"]["tools"]
    assert {tool["name"] for tool in tools} == SERVERS[relative]
    for tool in tools:
        assert tool["description"], tool["name"]
        assert tool["inputSchema"]["type"] == "object"


@pytest.mark.parametrize("relative", sorted(SERVERS))
async def test_each_example_serves_the_old_clients_that_skip_initialize(relative: str) -> None:
    async with app_of(relative).serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            reply = await Session(ws).request("tools/list")
    assert len(reply["result"]["tools"]) == len(SERVERS[relative])


# -- the migrated components -----------------------------------------------------


async def test_migrated_dewey_stores_finds_and_deletes_a_conversation() -> None:
    async with session(app_of("migrated/dewey.py")) as wire:
        begun = await wire.ok("dewey_begin_conversation", session_id="s-dewey")
        conversation_id = begun["conversation_id"]
        stored = await wire.ok(
            "dewey_store_message",
            conversation_id=conversation_id,
            role="user",
            content="Where is the relay configured?",
        )
        assert stored["turn_number"] == 1
        got = await wire.ok("dewey_get_conversation", conversation_id=conversation_id)
        assert [m["content"] for m in got["messages"]] == ["Where is the relay configured?"]
        listed = await wire.ok("dewey_list_conversations", session_id="s-dewey")
        assert [c["id"] for c in listed["conversations"]] == [conversation_id]
        found = await wire.ok("dewey_search", query="RELAY", session_id="s-dewey")
        assert found["total"] == 1
        await wire.ok("dewey_delete_conversation", conversation_id=conversation_id, force=True)
        gone = await wire.fails("dewey_get_conversation", conversation_id=conversation_id)
        assert "not found" in gone["content"][0]["text"]
        assert gone["_meta"]["iccm-network/errorData"] == {"code": -32001}
        await every_tool_called(wire)


async def test_migrated_dewey_no_longer_answers_the_legacy_direct_method_style() -> None:
    async with session(app_of("migrated/dewey.py")) as wire:
        reply = await wire.request("dewey_list_conversations", {})
    assert reply["error"]["code"] == -32601


async def test_migrated_fiedler_configures_sends_and_manages_keys() -> None:
    async with session(app_of("migrated/fiedler.py")) as wire:
        models = await wire.ok("fiedler_list_models")
        assert "gpt-5" in [m["name"] for m in models]
        assert (await wire.ok("fiedler_set_models", models=["gpt"]))["models"] == ["gpt-5"]
        refused = await wire.fails("fiedler_set_models", models=["no-such-model"])
        assert refused["content"][0]["text"] == "Unknown model: no-such-model"
        assert refused["_meta"]["iccm-network/errorData"] == {"code": "INVALID_INPUT"}
        await wire.ok("fiedler_set_output", output_dir="/tmp/fiedler-test")
        config = await wire.ok("fiedler_get_config")
        assert config["output_dir"] == "/tmp/fiedler-test"
        sent = await wire.ok("fiedler_send", prompt="Review this", models=["grok"])
        assert [r["model"] for r in sent["results"]] == ["grok-4"]
        await wire.ok("fiedler_set_key", provider="xai", api_key="k-123")
        assert "xai" in (await wire.ok("fiedler_list_keys"))["providers"]
        await wire.ok("fiedler_delete_key", provider="xai")
        await wire.fails("fiedler_delete_key", provider="xai")
        await every_tool_called(wire)


async def test_migrated_fiedler_keeps_the_write_only_schema_of_its_key_tool() -> None:
    async with session(app_of("migrated/fiedler.py")) as wire:
        tools = (await wire.request("tools/list"))["result"]["tools"]
    [set_key] = [tool for tool in tools if tool["name"] == "fiedler_set_key"]
    assert set_key["inputSchema"]["properties"]["api_key"]["writeOnly"] is True


async def test_migrated_godot_queues_queries_and_clears_log_entries() -> None:
    async with session(app_of("migrated/godot.py")) as wire:
        await wire.ok(
            "logger_log",
            component="migrated-test",
            level="ERROR",
            message="disk full",
            trace_id="t-godot",
            data={"free": 0},
        )
        found = await wire.ok("logger_query", trace_id="t-godot", level="WARN")
        assert [entry["message"] for entry in found["logs"]] == ["disk full"]
        level = await wire.ok("logger_set_level", component="migrated-test", level="DEBUG")
        assert level["level"] == "DEBUG"
        assert (await wire.ok("logger_clear", component="migrated-test"))["deleted"] == 1
        begun = await wire.ok("conversation_begin", session_id="s-godot")
        assert begun["session_id"] == "s-godot"
        await every_tool_called(wire)
        reply = await wire.request(
            "tools/call",
            {"name": "logger_log", "arguments": {"component": "c", "level": "LOUD", "message": ""}},
        )
    assert reply["error"]["code"] == -32602  # the schema's enum, checked before the call


async def test_migrated_horace_registers_versions_and_restores_a_file(tmp_path: Path) -> None:
    document = tmp_path / "report.txt"
    document.write_text(f"first draft {tmp_path}")
    async with session(app_of("migrated/horace.py")) as wire:
        registered = await wire.ok(
            "horace_register_file",
            file_path=str(document),
            metadata={"owner": "horace-test", "tags": ["report"]},
        )
        file_id = registered["file_id"]
        again = await wire.ok("horace_register_file", file_path=str(document), metadata={})
        assert again == {"file_id": file_id, "message": "File already registered"}
        found = await wire.ok("horace_search_files", owner="horace-test", tags=["report"])
        assert [f["file_id"] for f in found["files"]] == [file_id]
        info = await wire.ok("horace_get_file_info", file_id=file_id, include_versions=True)
        assert len(info["versions"]) == 1
        assert info["registered_at"].endswith("+00:00")  # a datetime, sent as ISO 8601
        await wire.ok("horace_create_collection", name=f"c-{file_id}", file_ids=[file_id])
        collections = await wire.ok("horace_list_collections", limit=1000)
        assert f"c-{file_id}" in [c["name"] for c in collections["collections"]]
        document.write_text("second draft")
        updated = await wire.ok("horace_update_file", file_id=file_id, check_for_changes=True)
        assert (updated["changed"], updated["version"]) == (True, 2)
        await wire.ok("horace_restore_version", file_id=file_id, version=1)
        missing = await wire.fails("horace_restore_version", file_id=file_id, version=9)
        assert missing["_meta"]["iccm-network/errorData"] == {"error_code": "VERSION_NOT_FOUND"}
        await every_tool_called(wire)


# -- the file catalog -------------------------------------------------------------


async def test_the_catalog_registers_finds_and_verifies_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_ROOT", str(tmp_path))
    content = f"catalog {tmp_path}".encode()
    (tmp_path / "a.txt").write_bytes(content)
    async with session(app_of("horace_catalog.py")) as wire:
        digest = await wire.ok("catalog_hash_file", file_path="a.txt", algorithm="md5")
        assert digest == hashlib.md5(content).hexdigest()
        record = await wire.ok("catalog_register_file", file_path="a.txt", tags=["t", "t"])
        assert record["sha256"] == hashlib.sha256(content).hexdigest()
        assert record["tags"] == ["t"]
        again = await wire.ok("catalog_register_file", file_path=str(tmp_path / "a.txt"))
        assert again["file_id"] == record["file_id"]
        assert await wire.ok("catalog_get_file", file_id=record["file_id"]) == record
        assert record in await wire.ok("catalog_search", tag="t", limit=1000)
        assert (await wire.ok("catalog_verify", file_id=record["file_id"]))["unchanged"] is True
        (tmp_path / "a.txt").write_bytes(b"changed")
        assert (await wire.ok("catalog_verify", file_id=record["file_id"]))["unchanged"] is False
        await every_tool_called(wire)


async def test_the_catalog_refuses_paths_outside_its_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_ROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    (tmp_path / "secret").write_text("x")
    async with session(app_of("horace_catalog.py")) as wire:
        refused = await wire.fails("catalog_hash_file", file_path="../secret")
        assert "outside the catalog root" in refused["content"][0]["text"]
        await wire.fails("catalog_get_file", file_id="no-such-id")


async def test_hashing_in_the_catalog_does_not_block_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tool reads from a pipe that has no writer yet, so it blocks in its
    # thread until this test writes: the ping must be answered meanwhile.
    monkeypatch.setenv("CATALOG_ROOT", str(tmp_path))
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    data = os.urandom(256 * 1024)

    def write_all(fd: int) -> None:
        os.set_blocking(fd, True)
        with open(fd, "wb") as stream:  # closing it ends the tool's read
            stream.write(data)

    writer: int | None = None
    try:
        async with session(app_of("horace_catalog.py")) as wire:
            params = {"name": "catalog_hash_file", "arguments": {"file_path": "stream"}}
            call = {"jsonrpc": "2.0", "id": "hash", "method": "tools/call", "params": params}
            await wire.send(call)
            assert (await wire.request("ping"))["result"] == {}
            async with async_timeout(TIMEOUT):
                while writer is None:  # a non-blocking open works once the tool opened its end
                    try:
                        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    except OSError:
                        await asyncio.sleep(0.01)
            fd, writer = writer, None
            await asyncio.to_thread(write_all, fd)
            reply = await wire.receive()
    finally:
        if writer is not None:
            os.close(writer)
        # Whatever happened, never leave the tool's thread blocked on the pipe
        # (the interpreter would wait for it at exit): a read-write open
        # releases a reader waiting in open(), and closing it gives EOF.
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    assert reply["id"] == "hash"
    assert reply["result"]["content"][0]["text"] == hashlib.sha256(data).hexdigest()


# -- the logging service ------------------------------------------------------------


async def test_the_logging_service_stores_filters_and_clears_entries() -> None:
    component = "logging-test"
    async with session(app_of("godot_logging.py")) as wire:
        stored = await wire.ok(
            "logger_log",
            component=component,
            level="WARN",
            message="Slow query",
            trace_id="t-1",
            data={"ms": 950},
        )
        assert stored["stored"] is True
        await wire.ok("logger_log", component=component, level="DEBUG", message="detail")
        warnings = await wire.ok("logger_query", component=component, level="WARN")
        assert [(e["message"], e["data"]) for e in warnings] == [("Slow query", {"ms": 950})]
        assert len(await wire.ok("logger_query", trace_id="t-1")) == 1
        assert len(await wire.ok("logger_query", component=component, search="QUERY")) == 1
        await wire.ok("logger_set_level", component=component, level="INFO")
        dropped = await wire.ok("logger_log", component=component, level="TRACE", message="x")
        assert dropped["stored"] is False
        assert (await wire.ok("logger_clear", component=component))["deleted"] == 2
        await wire.fails("logger_query", limit=0)
        await every_tool_called(wire)


async def test_the_logging_service_refuses_an_unknown_level() -> None:
    async with session(app_of("godot_logging.py"), version="2025-11-25") as wire:
        result = await wire.fails("logger_log", component="c", level="LOUD", message="m")
    assert "/level" in result["content"][0]["text"]


# -- the client script -------------------------------------------------------------


async def test_the_file_store_serves_resources_a_prompt_and_completions() -> None:
    async with session(app_of("file_store.py")) as wire:
        listed = (await wire.request("resources/list"))["result"]["resources"]
        templates = (await wire.request("resources/templates/list"))["result"]
        todo = (await wire.request("resources/read", {"uri": "file://notes/todo.txt"}))["result"]
        head = await wire.request("resources/read", {"uri": "store://files/src%2Fmain.py/lines/1"})
        missing = await wire.request("resources/read", {"uri": "file://nothing"})
        review = await wire.request(
            "prompts/get", {"name": "review", "arguments": {"path": "src/main.py"}}
        )
        paths = await wire.request(
            "completion/complete",
            {
                "ref": {"type": "ref/resource", "uri": "file://{+path}"},
                "argument": {"name": "path", "value": "notes/"},
            },
        )
    assert [r["uri"] for r in listed] == ["store://config", "store://logo"]
    assert len(templates["resourceTemplates"]) == 2
    assert todo["contents"][0]["text"].startswith("buy milk")
    assert head["result"]["contents"][0]["text"] == "print('hello')\n"
    assert missing["error"]["code"] == -32002
    assert [m["role"] for m in review["result"]["messages"]] == ["user", "assistant"]
    assert paths["result"]["completion"]["values"] == ["notes/ideas.md", "notes/todo.txt"]


async def test_the_client_script_lists_tools_and_calls_one() -> None:
    if not hasattr(iccm_network, "MCPClient"):
        pytest.skip("iccm_network does not export MCPClient yet")
    client = example("client.py")
    out = io.StringIO()
    async with app_of("godot_logging.py").serving(host="127.0.0.1", port=0) as server:
        arguments = {"component": "client-test", "level": "INFO", "message": "hello"}
        code = await client.main(server.url, "logger_log", arguments, out=out)
    assert code == 0
    lines = out.getvalue().splitlines()
    tool_count = len(SERVERS["godot_logging.py"])
    assert "logger_log: Store one log entry." in lines[:tool_count]
    assert json.loads("\n".join(lines[tool_count:]))["stored"] is True


# -- deployment ---------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def dockerfile_instruction(name: str) -> str:
    """The Dockerfile's (last) instruction ``name``, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.*)$", text, flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return str(found[-1])


def healthcheck_command() -> list[str]:
    exec_form = dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1]
    command: list[str] = json.loads(exec_form)
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, duration
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]


def library_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "examples/deploy/Dockerfile"
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


async def wait_until_healthy(url: str, process: subprocess.Popen[str]) -> dict[str, Any]:
    async with async_timeout(PROCESS_TIMEOUT):
        while True:
            assert process.poll() is None, "the server exited before listening"
            try:
                status, body = await asyncio.to_thread(get, url)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            assert status == 200
            return body


def test_the_deploy_readme_names_the_close_code_the_compose_file_sets() -> None:
    timeline = (DEPLOY / "README.md").read_text().split("## The shutdown timeline", 1)[1]
    named = re.findall(r"closed with code (\d{4})", " ".join(timeline.split()))
    assert named, "the shutdown timeline names no close code"
    for name, service in library_services().items():
        code = service["environment"].get("MCP_SHUTDOWN_CLOSE_CODE", "1001")
        assert named == [str(code)], f"{name}: README says {named}, compose sets {code}"


def test_the_dockerfile_stops_with_sigterm_and_runs_python_as_pid_1() -> None:
    assert dockerfile_instruction("STOPSIGNAL") == "SIGTERM"
    command = json.loads(dockerfile_instruction("CMD"))
    assert command[0] == "python"  # exec form, no shell to swallow the signal
    assert (ROOT / command[1]).is_file()


def test_compose_gives_each_service_longer_to_stop_than_its_drain_takes() -> None:
    services = library_services()
    assert len(services) == 2
    for name, service in services.items():
        grace = float(service["environment"]["MCP_SHUTDOWN_GRACE"])
        closing = 4.0  # the server's bounded close handshakes plus listener close
        assert seconds(service["stop_grace_period"]) > grace + closing, name
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM", name


def test_compose_puts_a_relay_in_front_of_each_service() -> None:
    services = compose()["services"]
    backends = []
    for service in services.values():
        command = service.get("command", [])
        if "run_relay.py" in command:
            backends.append(command[command.index("--backend") + 1])
            assert service["init"] is True  # the relay handles no signals itself
    expected = {
        f"ws://{name}:{service['environment']['MCP_PORT']}"
        for name, service in library_services().items()
    }
    assert set(backends) == expected


def test_the_relay_build_context_holds_the_relay() -> None:
    context = compose()["x-relay"]["build"]["context"]
    default = re.fullmatch(r"\$\{RELAY_DIR:-(.+)\}", context)
    assert default, context
    relay = (DEPLOY / default[1]).resolve()
    if not relay.is_dir():
        pytest.skip(f"the relay is not checked out at {relay}")
    assert (relay / "relay.py").is_file() and (relay / "run_relay.py").is_file()


@pytest.mark.parametrize("service", sorted(library_services()))
async def test_each_compose_entrypoint_is_healthy_then_drains_on_sigterm(
    service: str, tmp_path: Path
) -> None:
    definition = library_services()[service]
    port = free_port()
    environment = {
        **os.environ,
        **{key: str(value) for key, value in definition["environment"].items()},
        "MCP_PORT": str(port),
        "MCP_HOST": "127.0.0.1",
        "MCP_SHUTDOWN_GRACE": "1",
        "LOGGING_ENABLED": "false",  # no Godot to ship to outside compose
        "CATALOG_ROOT": str(tmp_path),
    }
    command = definition["command"]
    assert command[0] == "python", shlex.join(command)
    process = subprocess.Popen(
        [sys.executable, *command[1:]],
        cwd=ROOT,  # the image's WORKDIR holds the same layout
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = await wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert health["status"] == "ok"
        assert health["tools"] > 0
        probe = await asyncio.to_thread(
            subprocess.run,
            healthcheck_command(),
            env={**os.environ, "MCP_PORT": str(port)},
            capture_output=True,
            timeout=PROCESS_TIMEOUT,
        )
        assert probe.returncode == 0, probe.stderr
        process.send_signal(signal.SIGTERM)
        async with async_timeout(PROCESS_TIMEOUT):
            code = await asyncio.to_thread(process.wait)
        stderr = process.stderr.read() if process.stderr else ""
        assert code == 0, stderr
        assert "received SIGTERM" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _boolean_item_schemas(schema: Any, path: str = "") -> list[str]:
    """Where a schema puts ``true``/``false`` under ``items`` or ``prefixItems``."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "items" and isinstance(value, bool):
                found.append(f"{path}/items")
            if key == "prefixItems" and any(isinstance(item, bool) for item in value):
                found.append(f"{path}/prefixItems")
            found.extend(_boolean_item_schemas(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found.extend(_boolean_item_schemas(value, f"{path}/{index}"))
    return found


async def test_everything_publishes_no_boolean_item_schema_and_still_bounds_tuples() -> None:
    app = app_of("everything.py")
    for tool in app.tools.values():
        assert _boolean_item_schemas(tool.input_schema) == [], tool.name
        assert _boolean_item_schemas(tool.output_schema) == [], tool.name
    async with session(app) as wire:
        tools = (await wire.request("tools/list"))["result"]["tools"]
        assert _boolean_item_schemas(tools) == []
    # Without "items": false the tuple is still exactly a string and an integer.
    pair = next(
        tool.input_schema["properties"]["pair"]
        for tool in app.tools.values()
        if "pair" in tool.input_schema["properties"]
    )
    for accelerate in (True, False):
        validator = ArgumentValidator(pair, accelerate=accelerate)
        assert validator.is_valid(["a", 1])
        assert not validator.is_valid(["a", 1, 2])
        assert not validator.is_valid(["a"])
