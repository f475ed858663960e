"""``iccm-network doctor`` tells every failure mode apart, each reproduced on a real socket."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers_client import (
    TIMEOUT,
    add,
    free_port,
    initialize_result,
    never_answers,
    raw_server,
    run_main,
    tcp_server,
)
from websockets.asyncio.server import ServerConnection

from iccm_network import App
from iccm_network._timeout import timeout as async_timeout
from iccm_network.cli.doctor import STEPS, DoctorReport, doctor

STEP_TIMEOUT = 0.5
"""Seconds each doctor step gets where a test makes a step time out."""

app = App("doctor-test", version="2.0.0")
app.add_tool(add)


def statuses(report: DoctorReport) -> dict[str, str]:
    return {step.name: step.status for step in report.steps}


def failed_at(report: DoctorReport, name: str, reason: str) -> str:
    """Assert the walk stopped at ``name`` for ``reason``; return problem + check."""
    failure = report.failure
    assert failure is not None, report.render()
    assert (failure.name, failure.reason) == (name, reason), report.render()
    names = [step for step, _ in STEPS]
    after = names[names.index(name) + 1 :]
    assert all(statuses(report)[step] == "skipped" for step in after)
    assert not report.ok
    return f"{failure.problem}\n{failure.check}"


@contextmanager
def http_server() -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


# -- all is well ---------------------------------------------------------------


async def test_a_healthy_server_passes_every_step_with_timings() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        report = await doctor(server.url)
    assert report.ok, report.render()
    assert [step.name for step in report.steps] == [name for name, _ in STEPS]
    assert all(step.seconds is not None and step.seconds >= 0 for step in report.steps)
    details = {step.name: step.detail for step in report.steps}
    assert details["initialize"] == "doctor-test 2.0.0, protocol 2025-11-25"
    assert details["tools/list"].startswith("1 tool, largest message")
    assert "subprotocol mcp" in details["websocket"]


async def test_the_command_prints_each_step_and_exits_0_when_all_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        assert await run_main(["doctor", server.url]) == 0
    out = capsys.readouterr().out
    for _, title in STEPS:
        assert title in out
    assert out.count(" ms") >= len(STEPS)
    assert "All 6 steps passed." in out


async def test_json_output_is_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    async with async_timeout(TIMEOUT):
        assert await run_main(["doctor", f"127.0.0.1:{free_port()}", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["reason"] == "connection-refused"
    assert [step["status"] for step in report["steps"]] == ["ok", "fail"] + ["skipped"] * 4
    assert isinstance(report["steps"][0]["ms"], float)


# -- DNS -----------------------------------------------------------------------


async def test_a_name_that_does_not_resolve() -> None:
    async with async_timeout(TIMEOUT):
        report = await doctor("ws://no-such-service.invalid:8070/")
    text = failed_at(report, "dns", "name-not-resolved")
    assert "DNS lookup failed for no-such-service.invalid" in text
    assert "same (Docker) network" in text


# -- TCP -----------------------------------------------------------------------


async def test_a_port_nothing_listens_on_is_refused() -> None:
    port = free_port()
    async with async_timeout(TIMEOUT):
        report = await doctor(f"ws://127.0.0.1:{port}/")
    text = failed_at(report, "tcp", "connection-refused")
    assert f"TCP connect to 127.0.0.1:{port} refused" in text


async def test_a_server_bound_to_another_address_refuses_and_the_hint_says_why() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.2", port=0) as server:
        report = await doctor(f"ws://127.0.0.1:{server.port}/")
        assert (await doctor(server.url)).ok
    text = failed_at(report, "tcp", "connection-refused")
    assert "bound to 127.0.0.1 inside a container refuses everyone else" in text


async def test_a_connect_that_gets_no_answer_times_out() -> None:
    # A listener whose backlog is full drops further SYNs, as a firewall does.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.1)
        async with async_timeout(TIMEOUT):
            report = await doctor(f"ws://127.0.0.1:{port}/", timeout=STEP_TIMEOUT)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    text = failed_at(report, "tcp", "tcp-timeout")
    assert "timed out" in text
    assert "firewall" in text


# -- WebSocket handshake -------------------------------------------------------


async def test_a_plain_http_server_is_not_a_websocket_server() -> None:
    with http_server() as url:
        async with async_timeout(TIMEOUT):
            report = await doctor(url)
    text = failed_at(report, "websocket", "not-websocket")
    assert "answered HTTP/1.0 200 OK" in text
    assert "plain HTTP, not WebSocket" in text


async def test_an_http_11_server_that_answers_404_is_not_a_websocket_server() -> None:
    async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nNot Found\n")
        await writer.drain()
        writer.close()

    async with async_timeout(TIMEOUT), tcp_server(not_found) as url:
        report = await doctor(url)
    text = failed_at(report, "websocket", "not-websocket")
    assert "answered 404 Not Found instead of 101" in text


async def test_a_server_that_does_not_speak_http_at_all() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.example ESMTP\r\n")
        await writer.drain()
        writer.close()

    async with async_timeout(TIMEOUT), tcp_server(banner) as url:
        report = await doctor(url)
    text = failed_at(report, "websocket", "not-http")
    assert "not a WebSocket server" in text


async def test_a_server_that_accepts_tcp_but_never_answers_the_handshake() -> None:
    async with async_timeout(TIMEOUT), tcp_server(never_answers) as url:
        report = await doctor(url, timeout=STEP_TIMEOUT)
    text = failed_at(report, "websocket", "websocket-timeout")
    assert "nothing answered the HTTP upgrade request" in text


async def test_a_missing_token_is_rejected_with_401_and_the_right_token_passes() -> None:
    async with async_timeout(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0, auth_token="s3cret") as server:
            report = await doctor(server.url)
            assert (await doctor(server.url, auth_token="s3cret")).ok
    text = failed_at(report, "websocket", "unauthorized")
    assert "answered 401 Unauthorized" in text
    assert "MCP_AUTH_TOKEN" in text


async def test_a_refused_origin_is_rejected_with_403() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        report = await doctor(server.url, headers={"Origin": "http://evil.example"})
    text = failed_at(report, "websocket", "forbidden")
    assert "answered 403 Forbidden (Origin not allowed)" in text
    assert "MCP_ALLOWED_ORIGINS" in text


async def test_doctor_origin_sends_the_origin_header_a_browser_would(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with async_timeout(TIMEOUT):
        async with app.serving(
            host="127.0.0.1", port=0, allowed_origins=["http://ok.example"]
        ) as server:
            assert (await doctor(server.url, origin="http://ok.example")).ok
            report = await doctor(server.url, origin="http://evil.example")
            assert await run_main(["doctor", server.url, "--origin", "http://evil.example"]) == 3
    text = failed_at(report, "websocket", "forbidden")
    assert "(Origin not allowed)" in text
    assert "answered 403 Forbidden (Origin not allowed)" in capsys.readouterr().out


async def test_wss_against_a_plain_server_says_tls_was_tried_against_no_tls() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        report = await doctor(server.url.replace("ws://", "wss://"))
    text = failed_at(report, "websocket", "not-tls")
    assert "wss:// was used, but the server there does not speak TLS" in text
    assert "use ws://" in text


async def test_a_refused_host_header_is_rejected_with_403() -> None:
    async with async_timeout(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0, allowed_hosts=["mcp.internal"]) as server:
            report = await doctor(server.url)
    text = failed_at(report, "websocket", "forbidden")
    assert "(Host not allowed)" in text


# -- initialize ----------------------------------------------------------------


async def test_a_legacy_two_argument_handler_closes_with_1011() -> None:
    async def legacy(websocket: ServerConnection, path: str) -> None:
        async for message in websocket:  # never reached: websockets passes one argument
            await websocket.send(message)

    async with async_timeout(TIMEOUT), raw_server(legacy) as url:
        report = await doctor(url)
    text = failed_at(report, "initialize", "closed-1011")
    assert "closed with 1011" in text
    assert "async def handler(websocket, path)" in text


async def test_a_websocket_server_that_does_not_speak_mcp(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def chat(websocket: ServerConnection) -> None:
        async for _ in websocket:
            await websocket.send("Welcome to the chat!")

    async with async_timeout(TIMEOUT), raw_server(chat) as url:
        report = await doctor(url)
        assert await run_main(["doctor", url]) == 1
    text = failed_at(report, "initialize", "not-mcp")
    assert "does not speak MCP" in text
    assert "'Welcome to the chat!'" in text
    assert "does not speak MCP" in capsys.readouterr().out


async def test_an_echo_server_is_recognised() -> None:
    async def echo(websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    async with async_timeout(TIMEOUT), raw_server(echo) as url:
        report = await doctor(url)
    assert "echo server" in failed_at(report, "initialize", "not-mcp")


async def test_a_websocket_server_that_never_answers_initialize_times_out() -> None:
    async def mute(websocket: ServerConnection) -> None:
        async for _ in websocket:
            pass

    async with async_timeout(TIMEOUT), raw_server(mute) as url:
        report = await doctor(url, timeout=STEP_TIMEOUT)
    assert "did not answer initialize" in failed_at(report, "initialize", "initialize-timeout")


# -- tools/list and ping -------------------------------------------------------


def half_mcp(failing: str) -> Callable[[ServerConnection], Awaitable[None]]:
    """A JSON-RPC server that answers initialize (and more) but not ``failing``."""

    async def handler(websocket: ServerConnection) -> None:
        async for frame in websocket:
            message = json.loads(frame)
            if "id" not in message:
                continue
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
            if message["method"] == failing:
                reply["error"] = {"code": -32601, "message": "Method not found"}
            elif message["method"] == "initialize":
                reply["result"] = initialize_result("half", "2024-11-05")
            elif message["method"] == "tools/list":
                reply["result"] = {"tools": []}
            else:
                reply["result"] = {}
            await websocket.send(json.dumps(reply))

    return handler


async def test_a_server_without_tools_list_fails_that_step() -> None:
    async with async_timeout(TIMEOUT), raw_server(half_mcp("tools/list")) as url:
        report = await doctor(url)
    assert "-32601" in failed_at(report, "tools/list", "not-mcp")


async def test_a_server_without_ping_fails_that_step() -> None:
    async with async_timeout(TIMEOUT), raw_server(half_mcp("ping")) as url:
        report = await doctor(url)
    assert "answered ping with error -32601" in failed_at(report, "ping", "not-mcp")


async def test_a_tools_list_over_the_relays_1_mib_limit_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = App("big")
    big.add_tool(add, description="x" * (1024 * 1024 + 1))
    async with async_timeout(TIMEOUT), big.serving(host="127.0.0.1", port=0) as server:
        report = await doctor(server.url)
        assert (await doctor(server.url, max_size=None)).ok
        assert await run_main(["doctor", server.url, "--max-size", "0"]) == 0
        assert await run_main(["doctor", server.url]) == 1
    text = failed_at(report, "tools/list", "message-too-big")
    assert "1009 (message too big)" in text
    assert "over the 1.00 MiB" in text
    assert "message-too-big" in capsys.readouterr().out
