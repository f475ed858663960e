"""The ``iccm-network`` command, run in-process through ``main([...])``.

``main`` starts its own event loop, so tests that serve an app on theirs run it
in a thread. Two tests start real subprocesses: ``python -m iccm_network
--help`` and ``serve``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers_client import fail, free_port, run_main

from iccm_network import App, Image
from iccm_network._timeout import timeout as async_timeout
from iccm_network.cli.main import main
from iccm_network.client import MCPClient
from iccm_network.transport.websocket import Server

SUBPROCESS_TIMEOUT = 30.0
"""Seconds for a subprocess (an interpreter start and the imports) on a loaded machine."""

app = App("cli-test", version="1.2.3")


@app.tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: The first addend.
        b: The second addend.
    """
    return a + b


@app.tool
def describe(name: str) -> dict[str, Any]:
    """Describe someone in an object.

    Args:
        name: Who.
    """
    return {"name": name, "letters": len(name)}


app.add_tool(fail)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with app.serving(host="127.0.0.1", port=0) as running:
        yield running


# -- call ----------------------------------------------------------------------


async def test_call_prints_the_result_as_json_and_exits_0(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["call", server.url, "add", '{"a": 40, "b": 2}']) == 0
    assert json.loads(capsys.readouterr().out) == 42
    assert await run_main(["call", server.url, "describe", '{"name": "Ada"}']) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "Ada", "letters": 3}


async def test_call_prints_rich_content_as_its_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    pictures = App("pictures")

    @pictures.tool
    def picture() -> list[str | Image]:
        """A caption and a tiny PNG."""
        return ["a dot", Image(b"\x89PNG\r\n\x1a\n")]

    async with pictures.serving(host="127.0.0.1", port=0) as server:
        assert await run_main(["call", server.url, "picture"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        "a dot",
        {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
    ]


async def test_call_reads_its_arguments_from_stdin_given_a_dash(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"a": 5}'))
    assert await run_main(["call", server.url, "add", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == 5


async def test_a_tool_error_exits_1_with_the_message_on_stderr(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["call", server.url, "fail", '{"reason": "disk full"}']) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "tool error: disk full" in captured.err
    assert '"reason": "disk full"' in captured.err


async def test_a_protocol_error_exits_1_with_its_code(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["call", server.url, "no_such_tool"]) == 1
    assert "error -32602: Unknown tool: no_such_tool" in capsys.readouterr().err


async def test_a_connection_failure_exits_3_with_the_diagnosis_fields_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    assert await run_main(["call", f"ws://127.0.0.1:{port}", "add", '{"a": 1}']) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    problem, check, where = captured.err.splitlines()
    assert problem == f"TCP connect to 127.0.0.1:{port} refused."
    assert check.startswith("Check: a server is running and listening on port")
    assert where == "(step: tcp, reason: connection-refused)"


async def test_wss_against_a_plain_server_names_tls_not_an_empty_failure(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    wss = server.url.replace("ws://", "wss://")
    assert await run_main(["call", wss, "add", '{"a": 1}']) == 3
    err = capsys.readouterr().err
    assert "wss:// was used, but the server there does not speak TLS" in err
    assert "failed: ." not in err


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_arguments_that_are_not_a_json_object_are_a_usage_error(
    arguments: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", "ws://127.0.0.1:1", "add", arguments]) == 2
    err = capsys.readouterr().err
    assert "JSON arguments" in err
    assert err.startswith("usage: iccm-network call ")


# -- tools ---------------------------------------------------------------------


async def test_tools_prints_a_readable_table(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["tools", server.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOOL", "PARAMETERS", "DESCRIPTION"]
    assert lines[1].split(maxsplit=3) == ["add", "a,", "b?", "Add two integers."]
    assert lines[2].split(maxsplit=2) == ["describe", "name", "Describe someone in an object."]
    assert lines[-1] == "3 tools"


async def test_tools_json_prints_the_definitions_as_on_the_wire(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["tools", server.url, "--json"]) == 0
    async with MCPClient(server.url) as client:
        assert json.loads(capsys.readouterr().out) == await client.list_tools()


async def test_the_token_comes_from_the_flag_or_mcp_auth_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app.serving(host="127.0.0.1", port=0, auth_token="s3cret") as guarded:
        assert await run_main(["tools", guarded.url]) == 3
        assert "answered 401 Unauthorized" in capsys.readouterr().err
        assert await run_main(["tools", guarded.url, "--token", "s3cret"]) == 0
        monkeypatch.setenv("MCP_AUTH_TOKEN", "s3cret")
        assert await run_main(["tools", guarded.url]) == 0


async def test_headers_are_sent_with_the_handshake(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["tools", server.url, "--header", "Origin: http://evil.example"]) == 3
    assert "answered 403 Forbidden" in capsys.readouterr().err


def test_a_malformed_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "ws://127.0.0.1:1", "--header", "no colon"]) == 2
    assert "NAME: VALUE" in capsys.readouterr().err


def test_an_unusable_url_is_a_usage_error_of_its_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tools", "ftp://example.org"]) == 2
    err = capsys.readouterr().err
    assert "not an MCP URL" in err
    assert err.startswith("usage: iccm-network tools ")


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 usage error, 3 connection failure" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: iccm-network" in capsys.readouterr().err


# -- serve ---------------------------------------------------------------------


def test_serve_reports_a_module_it_cannot_import(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "no_such_module_for_iccm:app"]) == 1
    assert "cannot load 'no_such_module_for_iccm:app'" in capsys.readouterr().err


def test_serve_refuses_an_object_that_is_not_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "json:dumps"]) == 1
    assert "is not an App" in capsys.readouterr().err


async def test_serve_runs_the_app_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "served_app.py").write_text(
        textwrap.dedent(
            '''
            from iccm_network import App

            application = App("served", version="9.9")

            @application.tool
            def double(x: int) -> int:
                """Double x.

                Args:
                    x: The number.
                """
                return 2 * x
            '''
        )
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iccm_network",
        "serve",
        "served_app:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=tmp_path,
        env={**os.environ, "MCP_PORT": "1", "MCP_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with async_timeout(SUBPROCESS_TIMEOUT):
            client = MCPClient("127.0.0.1", port=port, retries=100, backoff=0.05, max_backoff=0.2)
            try:
                assert await client.call("double", {"x": 21}) == 42
                assert client.server_info is not None
                assert client.server_info["serverInfo"]["name"] == "served"
            finally:
                await client.close()
            process.send_signal(signal.SIGTERM)
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_python_m_iccm_network_help_runs_in_a_subprocess() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "iccm_network", "--help"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: iccm-network")
    for command in ("serve", "tools", "call", "doctor"):
        assert command in completed.stdout
