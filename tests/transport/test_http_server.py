"""Streamable HTTP on the WebSocket port (SPEC 11), spoken with raw h11 requests.

Every test serves a real app on 127.0.0.1 (port 0) and sends real HTTP/1.1
requests; the SDK and MCPClient tests are in their own files.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from http_helpers import JSON_HEADERS, HttpLink, request, rpc
from sample_tools import add, echo
from websockets.asyncio.client import connect

from iccm_network import App, Context
from iccm_network.transport import http as http_server_module

TIMEOUT = 10.0
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}

app = App("http-test", version="0.1")
app.add_tool(add)
app.add_tool(echo)
gate: dict[str, asyncio.Event] = {}


@app.tool
async def progress(steps: int, ctx: Context) -> str:
    """Report progress, then finish.

    Args:
        steps: How many reports.
        ctx: The call's context.
    """
    for step in range(steps):
        await ctx.report_progress(step + 1, steps)
    return "done"


@app.tool
async def wait(name: str) -> str:
    """Wait until the test opens the gate ``name``; say "cancelled" if cancelled.

    Args:
        name: The gate.
    """
    gate.setdefault(name, asyncio.Event())
    gate.setdefault(name + ":started", asyncio.Event()).set()
    try:
        await gate[name].wait()
    except asyncio.CancelledError:
        gate.setdefault(name + ":cancelled", asyncio.Event()).set()
        raise
    return "opened"


@asynccontextmanager
async def bounded() -> AsyncIterator[None]:
    """Bound a whole test (``asyncio.timeout`` is Python 3.11+)."""
    with anyio.fail_after(TIMEOUT):
        yield


def call(name: str, arguments: dict[str, Any], request_id: int = 1, **params: Any) -> Any:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, **params},
    }


async def started(name: str) -> None:
    await gate.setdefault(name + ":started", asyncio.Event()).wait()


# -- serving -------------------------------------------------------------------


async def test_a_post_is_answered_with_json_and_no_session() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await rpc(server.port, call("add", {"a": 2, "b": 3}))
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert "mcp-session-id" not in answer.headers
    assert answer.json()["result"]["content"] == [{"type": "text", "text": "5"}]


async def test_any_path_but_healthz_serves_mcp() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await rpc(server.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, path="/x/y")
        healthz = await rpc(
            server.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, path="/healthz"
        )
    assert (answer.status, answer.json()["result"]) == (200, {})
    assert (healthz.status, healthz.headers["allow"]) == (405, "GET")


async def test_the_version_header_chooses_the_revision() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        old = await rpc(server.port, call("add", {"a": 1, "b": 1}))
        new = await rpc(
            server.port, call("add", {"a": 1, "b": 1}), {"MCP-Protocol-Version": "2025-06-18"}
        )
    assert "structuredContent" not in old.json()["result"]  # 2024-11-05 when absent
    assert new.json()["result"]["structuredContent"] == {"result": 2}


async def test_an_unsupported_version_header_gets_400() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await rpc(
            server.port, call("add", {"a": 1, "b": 1}), {"MCP-Protocol-Version": "1999"}
        )
    assert answer.status == 400
    assert answer.json()["error"]["code"] == -32022
    assert answer.json()["id"] == 1


async def test_notifications_and_responses_get_202() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        note = await rpc(server.port, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        response = await rpc(server.port, {"jsonrpc": "2.0", "id": 7, "result": {}})
    assert (note.status, note.body) == (202, b"")
    assert (response.status, response.body) == (202, b"")


async def test_a_batch_is_served_only_under_2025_03_26() -> None:
    batch = [call("add", {"a": 1, "b": 2}, 1), {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        refused = await rpc(server.port, batch, {"MCP-Protocol-Version": "2025-06-18"})
        served = await rpc(server.port, batch, {"MCP-Protocol-Version": "2025-03-26"})
    assert refused.status == 400
    assert refused.json()["error"]["code"] == -32600
    assert served.status == 200
    assert sorted(reply["id"] for reply in served.json()) == [1, 2]


async def test_a_body_that_is_not_json_gets_400_and_a_parse_error() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await request(server.port, body=b"{nope", headers=JSON_HEADERS)
    assert answer.status == 400
    assert answer.json()["error"]["code"] == -32700


# -- 2026-07-28: headers mirror the body, errors map to statuses --------------------


async def test_modern_requests_need_a_matching_mcp_method_header() -> None:
    message = call("add", {"a": 1, "b": 2}, _meta=META)
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        missing = await rpc(server.port, message)
        wrong = await rpc(server.port, message, {"Mcp-Method": "tools/list"})
        wrong_name = await rpc(server.port, message, {"Mcp-Method": "tools/call", "Mcp-Name": "x"})
        wrong_version = await rpc(
            server.port,
            message,
            {"Mcp-Method": "tools/call", "MCP-Protocol-Version": "2025-11-25"},
        )
        good = await rpc(
            server.port,
            message,
            {"Mcp-Method": "tools/call", "Mcp-Name": "add", "MCP-Protocol-Version": MODERN},
        )
    assert [a.status for a in (missing, wrong, wrong_name, wrong_version)] == [400] * 4
    assert good.status == 200
    assert good.json()["result"]["resultType"] == "complete"


async def test_modern_errors_follow_the_revisions_status_mapping() -> None:
    headers = {"Mcp-Method": "tools/call"}
    unknown = {"jsonrpc": "2.0", "id": 1, "method": "nope/nope", "params": {"_meta": META}}
    bad_meta = call(
        "add",
        {"a": 1, "b": 2},
        _meta={**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"},
    )
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        not_found = await rpc(server.port, unknown, {"Mcp-Method": "nope/nope"})
        no_tool = await rpc(server.port, call("zzz", {}, _meta=META), headers)
        unsupported = await rpc(server.port, bad_meta, headers)
        legacy_error = await rpc(server.port, call("zzz", {}))
    assert (not_found.status, not_found.json()["error"]["code"]) == (404, -32601)
    assert (no_tool.status, no_tool.json()["error"]["code"]) == (400, -32602)
    assert (unsupported.status, unsupported.json()["error"]["code"]) == (400, -32022)
    assert (legacy_error.status, legacy_error.json()["error"]["code"]) == (200, -32602)


# -- SSE -----------------------------------------------------------------------


async def test_progress_before_the_result_makes_an_event_stream() -> None:
    message = call("progress", {"steps": 3}, _meta={"progressToken": "p"})
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await rpc(server.port, message)
        json_only = await rpc(server.port, message, {"Accept": "application/json"})
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    events = answer.events()
    assert [e["method"] for e in events[:3]] == ["notifications/progress"] * 3
    assert events[3]["result"]["content"][0]["text"] == "done"
    # JSON alone: the progress has nowhere to go, the result comes as JSON.
    assert json_only.headers["content-type"] == "application/json"
    assert json_only.json()["result"]["content"][0]["text"] == "done"


async def test_an_accept_of_event_stream_alone_gets_the_reply_as_an_event() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await rpc(
            server.port, call("add", {"a": 1, "b": 1}), {"Accept": "text/event-stream"}
        )
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.events()[0]["result"]["content"][0]["text"] == "2"


# -- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        ("GET", {}, b"", 405),
        ("DELETE", {}, b"", 405),
        ("PUT", JSON_HEADERS, b"{}", 405),
        ("POST", {"Content-Type": "text/plain"}, b"{}", 415),
        ("POST", {}, b"{}", 415),
        ("POST", {"Content-Type": "application/json", "Accept": "text/html"}, b"{}", 406),
    ],
    ids=["get", "delete", "put", "text-plain", "no-content-type", "accept-html"],
)
async def test_what_is_not_a_streamable_http_post_gets_its_4xx(
    method: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        answer = await request(server.port, method, "/mcp", body, headers)
        async with connect(server.url) as ws:  # the WebSocket side is unaffected
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            assert json.loads(await ws.recv())["result"] == {}
    assert answer.status == status
    if status == 405:
        assert "POST" in answer.headers["allow"]


async def test_a_body_over_max_message_size_gets_413() -> None:
    big = json.dumps(call("echo", {"text": "x" * 5000})).encode()
    async with bounded(), app.serving(host="127.0.0.1", port=0, max_message_size=4096) as server:
        declared = await request(server.port, "POST", "/mcp", big, JSON_HEADERS)
        link = await HttpLink.open(server.port)
        try:
            chunked = await link.send(
                "POST", "/mcp", big, {**JSON_HEADERS, "Transfer-Encoding": "chunked"}
            )
        finally:
            await link.close()
        fits = await rpc(server.port, call("echo", {"text": "x" * 100}))
    assert declared.status == 413
    assert chunked.status == 413
    assert fits.status == 200


async def test_a_request_head_over_the_limit_gets_431() -> None:
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # A head that never ends: the server stops buffering it at MAX_HEAD.
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 40_000)
        answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_origin_host_and_token_are_checked_as_for_websocket() -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with (
        bounded(),
        app.serving(
            host="127.0.0.1", port=0, auth_token="s3cret", allowed_hosts=("127.0.0.1",)
        ) as server,
    ):
        no_token = await rpc(server.port, ping)
        token = {"Authorization": "Bearer s3cret"}
        evil = await rpc(server.port, ping, {**token, "Origin": "https://evil.example"})
        local = await rpc(server.port, ping, {**token, "Origin": "http://localhost:6274"})
        bad_host = await rpc(server.port, ping, {**token, "Host": "evil.example"})
        good = await rpc(server.port, ping, token)
    assert (no_token.status, no_token.headers["www-authenticate"]) == (401, "Bearer")
    assert evil.status == 403
    assert local.status == 200  # bound to loopback only: loopback origins are allowed
    assert bad_host.status == 403
    assert good.status == 200


async def test_repeated_headers_are_refused_or_match_nothing() -> None:
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    modern = json.dumps(call("add", {"a": 1, "b": 2}, _meta=META)).encode()
    token = ("Authorization", "Bearer s3cret")
    method = ("Mcp-Method", "tools/call")
    async with (
        bounded(),
        app.serving(host="127.0.0.1", port=0, auth_token="s3cret") as server,
    ):
        post = functools.partial(request, server.port, "POST", "/mcp")
        two_tokens = await post(ping, JSON_HEADERS, [token, ("Authorization", "Bearer x")])
        origins = [("Origin", "http://localhost"), ("Origin", "https://evil.example")]
        two_origins = await post(ping, JSON_HEADERS, [token, *origins])
        # Header names are read in any case; a repeated Mcp-Method matches nothing.
        lower_case = {"content-type": "application/json", "mcp-method": "tools/call"}
        good = await post(modern, lower_case, [token])
        twice = await post(modern, JSON_HEADERS, [token, method, method])
    assert (two_tokens.status, two_tokens.body) == (400, b"Repeated Authorization header\n")
    assert (two_origins.status, two_origins.body) == (400, b"Repeated Origin header\n")
    assert good.status == 200
    assert good.json()["result"]["structuredContent"] == {"result": 3}
    assert twice.status == 400
    assert "Mcp-Method header" in twice.json()["error"]["message"]


async def test_loopback_origins_are_refused_when_bound_beyond_loopback() -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with bounded(), app.serving(host="0.0.0.0", port=0) as server:
        answer = await rpc(server.port, ping, {"Origin": "http://localhost:6274"})
    assert answer.status == 403


# -- connections and limits ---------------------------------------------------


async def test_keep_alive_serves_requests_in_turn_and_healthz_counts_http_calls() -> None:
    gate.pop("k", None)
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        link = await HttpLink.open(server.port)
        try:
            for n in range(3):
                answer = await link.send(
                    "POST", "/mcp", json.dumps(call("add", {"a": n, "b": 1})).encode(), JSON_HEADERS
                )
                assert answer.json()["result"]["content"][0]["text"] == str(n + 1)
            waiting = asyncio.create_task(rpc(server.port, call("wait", {"name": "k"})))
            await started("k")
            health = await link.send("GET", "/healthz")
            gate["k"].set()
            assert (await waiting).json()["result"]["content"][0]["text"] == "opened"
        finally:
            await link.close()
    assert health.status == 200
    assert health.json()["connections"] == 1


async def test_a_client_that_disconnects_cancels_its_call() -> None:
    gate.pop("d", None)
    gate.pop("d:cancelled", None)
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        link = await HttpLink.open(server.port)
        body = json.dumps(call("wait", {"name": "d"})).encode()
        sending = asyncio.create_task(link.send("POST", "/mcp", body, JSON_HEADERS))
        await started("d")
        sending.cancel()
        await link.close()
        await gate.setdefault("d:cancelled", asyncio.Event()).wait()


async def test_shutdown_drains_http_calls() -> None:
    gate.pop("s", None)
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        waiting = asyncio.create_task(rpc(server.port, call("wait", {"name": "s"})))
        await started("s")
        stopping = asyncio.create_task(server.shutdown(grace=5))
        while not server.draining:
            await asyncio.sleep(0.01)
        refused = await rpc(server.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        gate["s"].set()
        answer = await waiting
        await stopping
    assert refused.status == 503
    assert answer.json()["result"]["content"][0]["text"] == "opened"


async def test_a_slow_request_head_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server_module, "REQUEST_TIMEOUT", 0.2)
    async with bounded(), app.serving(host="127.0.0.1", port=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        assert await reader.read() == b""  # closed by the server
        writer.close()


async def test_idle_keep_alive_connections_count_as_unfinished_handshakes() -> None:
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    async with bounded(), app.serving(host="127.0.0.1", port=0, max_handshakes=2) as server:
        links: list[HttpLink] = []
        try:
            for _ in range(4):
                link = await HttpLink.open(server.port)
                links.append(link)
                assert (await link.send("POST", "/mcp", ping, JSON_HEADERS)).status == 200
            # Four idle connections, two allowed: the oldest two were dropped.
            for link in links[:2]:
                assert await link.reader.read() == b""
            assert (await links[3].send("POST", "/mcp", ping, JSON_HEADERS)).status == 200
        finally:
            for link in links:
                await link.close()


async def test_max_connections_holds_for_http_requests_being_served() -> None:
    gate.pop("m", None)
    async with bounded(), app.serving(host="127.0.0.1", port=0, max_connections=1) as server:
        waiting = asyncio.create_task(rpc(server.port, call("wait", {"name": "m"})))
        await started("m")
        refused = await rpc(server.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        gate["m"].set()
        await waiting
        served = await rpc(server.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert refused.status == 503
    assert served.status == 200
