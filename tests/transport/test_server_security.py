"""Handshake security, health checks, plain HTTP, bad frames and vanishing clients.

Nothing a client sends may crash the server, leak a secret or an exception's
text, or put a traceback in the server's log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import websockets.version
from sample_tools import echo
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from iccm_network import App
from iccm_network._timeout import timeout as async_timeout
from iccm_network.config import Settings

TIMEOUT = 10.0
SECRET = "s3cr3t-token-value"

app = App("guarded", version="2.1.0")
app.add_tool(echo)


@app.tool
async def leaky(path: str) -> str:
    """Fail with an exception whose text holds a path and a secret.

    Args:
        path: A file path to mention.
    """
    raise RuntimeError(f"cannot open {path}: token={SECRET}")


@app.tool
async def sleepy(seconds: float) -> float:
    """Sleep.

    Args:
        seconds: How long.
    """
    await asyncio.sleep(seconds)
    return seconds


class StrictUTF8Handler(logging.Handler):
    """Formats every record as a real stderr handler would, strictly in UTF-8."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        line.encode("utf-8")  # a lone surrogate would fail here, as on stderr
        self.lines.append(line)
        self.records.append(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        raise AssertionError(f"logging failed for {record.msg!r}")


@pytest.fixture
def server_log() -> Iterator[StrictUTF8Handler]:
    """Every record of ``iccm_network`` at DEBUG, including ``websockets``' own."""
    handler = StrictUTF8Handler()
    root = logging.getLogger("iccm_network")
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def assert_no_traceback(log: StrictUTF8Handler) -> None:
    """Nothing at INFO or above (what a server logs by default) has a traceback or is an error.

    ``websockets`` attaches tracebacks to some DEBUG lines on purpose.
    """
    pairs = zip(log.lines, log.records, strict=True)
    bad = [line for line, r in pairs if r.levelno >= 20 and (r.exc_info or r.levelno >= 40)]
    assert not bad, "\n".join(bad)


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


async def ping(ws: ClientConnection, request_id: Any = 1) -> None:
    await ws.send(request(request_id, "ping"))
    assert json.loads(await ws.recv()) == {"jsonrpc": "2.0", "id": request_id, "result": {}}


async def http_get(port: int, raw: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """Send raw bytes as a request; return the status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    if not data:
        return 0, {}, b""  # closed without an answer
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


# -- /healthz and plain HTTP -------------------------------------------------

WEBSOCKETS_17 = int(websockets.version.version.split(".")[0]) >= 17


async def test_healthz_answers_200_with_json_on_the_websocket_port() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url):
            raw = b"GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n"
            status, headers, body = await http_get(server.port, raw)
    assert status == 200
    assert headers["content-type"] == ["application/json"]
    assert json.loads(body) == {
        "status": "ok",
        "name": "guarded",
        "version": "2.1.0",
        "tools": 3,
        "connections": 1,
    }


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 400),
        # websockets before 17 (what Python 3.10 gets) closes these without an answer.
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414 if WEBSOCKETS_17 else 0),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431 if WEBSOCKETS_17 else 0),
    ],
    ids=["root", "favicon", "bad-upgrade", "long-line", "many-headers"],
)
async def test_other_plain_http_gets_websockets_defaults_and_no_traceback(
    raw: bytes, status: int, server_log: StrictUTF8Handler
) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        answer, _, body = await http_get(server.port, raw)
        async with connect(server.url) as ws:
            await ping(ws)
    assert answer == status
    assert b"Traceback" not in body
    assert_no_traceback(server_log)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS ClientHello
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"\x00" * 64 + b"\r\n\r\n",
        b"",
    ],
    ids=["post", "tls", "non-ascii-path", "zeros", "empty"],
)
async def test_requests_that_are_not_http_get_end_without_a_traceback(
    raw: bytes, server_log: StrictUTF8Handler
) -> None:
    # websockets before 17 (what Python 3.10 gets) can leave such a connection
    # opening until the shutdown drops it: a short grace keeps the test quick.
    serving = app.serving(host="127.0.0.1", port=0, shutdown_grace=2)
    async with async_timeout(TIMEOUT), serving as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        writer.write_eof()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        async with connect(server.url) as ws:
            await ping(ws)
    assert_no_traceback(server_log)


# -- Origin, Host and bearer token ---------------------------------------------


async def test_a_browser_origin_is_refused_with_403_unless_allowed() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, origin="https://evil.example")  # type: ignore[arg-type]
        async with connect(server.url) as ws:  # no Origin: not a browser
            await ping(ws)
    assert refused.value.response.status_code == 403


async def test_allowed_origins_come_from_mcp_allowed_origins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_ALLOWED_ORIGINS", "https://ok.example, http://localhost:3000")
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        for origin in ("https://ok.example", "http://localhost:3000"):
            async with connect(server.url, origin=origin) as ws:  # type: ignore[arg-type]
                await ping(ws)
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, origin="https://ok.example.evil")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403


async def test_an_allowed_origin_of_star_accepts_every_origin() -> None:
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, allowed_origins=["*"]) as server,
    ):
        async with connect(server.url, origin="https://any.example") as ws:  # type: ignore[arg-type]
            await ping(ws)


async def test_the_host_allowlist_refuses_dns_rebinding_with_403(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_ALLOWED_HOSTS", "127.0.0.1,horace-mcp")
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:  # Host: 127.0.0.1:PORT
            await ping(ws)
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://localhost:{server.port}")  # Host: localhost:PORT
    assert refused.value.response.status_code == 403


async def test_allowed_hosts_match_without_regard_to_case_or_port() -> None:
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, allowed_hosts=["LocalHost"]) as server,
    ):
        async with connect(f"ws://localhost:{server.port}") as ws:
            await ping(ws)


@pytest.mark.parametrize("name", ["Host", "Origin", "Authorization"])
async def test_a_repeated_security_header_is_refused_with_400(name: str) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        headers = [(name, "127.0.0.1"), (name, "127.0.0.1")]
        if name == "Host":
            headers = [(name, "evil.example")]  # the client sends one Host of its own
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, additional_headers=headers)
    assert refused.value.response.status_code == 400


async def test_a_missing_or_wrong_bearer_token_gets_401_and_is_never_logged(
    monkeypatch: pytest.MonkeyPatch, server_log: StrictUTF8Handler
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", SECRET)
    wrong = "wrong-" + SECRET
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": SECRET}):
            with pytest.raises(InvalidStatus) as refused:
                await connect(server.url, additional_headers=headers)
            assert refused.value.response.status_code == 401
            assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {SECRET}"}
        async with connect(server.url, additional_headers=good) as ws:
            await ping(ws)
        status, _, _ = await http_get(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert status == 200, "health checks need no token"
    assert len(server_log.lines) > 10, "DEBUG logging was on"
    assert not [line for line in server_log.lines if SECRET in line]
    assert SECRET not in repr(Settings(auth_token=SECRET))


# -- errors, frames and vanishing clients ----------------------------------------


async def test_an_unexpected_exception_answers_a_correlation_id_and_no_details(
    server_log: StrictUTF8Handler,
) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(
                request(1, "tools/call", {"name": "leaky", "arguments": {"path": "/etc/app.key"}})
            )
            reply = await ws.recv()
    result = json.loads(reply)["result"]
    assert result["isError"] is True
    assert SECRET not in reply and "/etc/app.key" not in reply and "RuntimeError" not in reply
    incident = result["_meta"]["iccm-network/errorData"]["correlationId"]
    assert incident in result["content"][0]["text"]
    assert any(incident in line for line in server_log.lines), "the log ties the id to the error"


async def test_a_binary_frame_closes_the_connection_with_1003() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        ws = await connect(server.url)
        await ws.send(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}')
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1003
        async with connect(server.url) as other:
            await ping(other)


async def test_invalid_utf8_in_a_text_frame_closes_the_connection_with_1007() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        ws = await connect(server.url)
        await ws.send(b'{"jsonrpc": "2.0", "id": "\xff\xfe", "method": "ping"}', text=True)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1007
        async with connect(server.url) as other:
            await ping(other)


async def test_the_mcp_subprotocol_is_selected_when_offered_and_any_path_is_accepted() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url + "/some/relay/path?x=1", subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "mcp"
            await ping(ws)
        async with connect(server.url + "/mcp") as ws:
            assert ws.subprotocol is None
            await ping(ws)


@pytest.mark.parametrize("moment", ["idle", "mid-call", "mid-reply"])
async def test_a_client_that_vanishes_gives_one_info_line_and_no_traceback(
    moment: str, server_log: StrictUTF8Handler
) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        ws = await connect(server.url, max_size=None)
        if moment == "mid-call":
            await ws.send(request(1, "tools/call", {"name": "sleepy", "arguments": {"seconds": 5}}))
            await asyncio.sleep(0.05)
        elif moment == "mid-reply":
            big = {"name": "echo", "arguments": {"text": "y" * 4_000_000}}
            for n in range(3):
                await ws.send(request(n, "tools/call", big))
            await ws.recv()  # replies are flowing; the others are still being written
        else:
            await ping(ws, "before")
        ws.transport.abort()  # no close frame, no FIN: the peer is just gone
        for _ in range(200):
            if server.connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.connections == 0
        async with connect(server.url) as other:
            await ping(other)
    closes = [
        line
        for line, record in zip(server_log.lines, server_log.records, strict=True)
        if record.name == "iccm_network.server" and "connection closed" in line
    ]
    assert closes[0].startswith("INFO ") and "code=1006" in closes[0]
    assert len(closes) == 2  # the vanished client and the one that checked on the server
    assert_no_traceback(server_log)


async def test_a_client_that_vanishes_during_the_handshake_leaves_no_trace(
    server_log: StrictUTF8Handler,
) -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        for partial in (b"", b"GET / HTTP/1.1\r\nHost: x\r\n", b"GET /"):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(partial)
            await writer.drain()
            writer.transport.abort()
        await asyncio.sleep(0.1)
        async with connect(server.url) as ws:
            await ping(ws)
    assert_no_traceback(server_log)
