"""The call log: every call leaves a line or a summary entry, cheaply.

Failures, timeouts, cancellations and calls refused before they run are one
INFO line each on ``iccm_network.transport.calls``; successes are one DEBUG line each
and, at INFO, one summary line per ``log_summary_interval``. The startup
warning for a server reachable beyond loopback without a token is here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App, ToolError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.config import Settings
from iccm_network.transport.memory import MemoryServer

TIMEOUT = 15.0
"""Seconds any one test may take; each needs well under one."""

app = App("call-log", version="1.0.0")
events: dict[str, asyncio.Event] = {}
"""``release`` and ``entered`` for ``hold``, made afresh on each test's loop."""


def fresh_events() -> tuple[asyncio.Event, asyncio.Event]:
    events["release"], events["entered"] = asyncio.Event(), asyncio.Event()
    return events["release"], events["entered"]


@app.tool
async def echo(text: str) -> str:
    """Send the text back.

    Args:
        text: Any text.
    """
    return text


@app.tool
async def fail() -> str:
    """Always fail."""
    raise ToolError("no")


@app.tool
async def quits() -> str:
    """Raise CancelledError though nobody cancelled the call."""
    raise asyncio.CancelledError


@app.tool
async def hold() -> str:
    """Wait until the test releases it."""
    events["entered"].set()
    await events["release"].wait()
    return "released"


@app.tool
async def nap(seconds: float) -> str:
    """Sleep.

    Args:
        seconds: How long.
    """
    await asyncio.sleep(seconds)
    return "woke"


class Wire:
    """JSON-RPC by hand over one connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, name: str, arguments: Any) -> int:
        self.next_id += 1
        params = {"name": name, "arguments": arguments}
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": params}
        await self.ws.send(json.dumps(message))
        return self.next_id

    async def reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(await self.ws.recv())
        return reply

    async def call(self, name: str, arguments: Any) -> dict[str, Any]:
        await self.send(name, arguments)
        return await self.reply()


def call_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "iccm_network.calls"]


async def until(condition: Any) -> None:
    """Wait for ``condition()`` to hold (records arrive on the same loop)."""
    while not condition():
        await asyncio.sleep(0.01)


async def test_failures_and_refusals_get_a_line_each_and_successes_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    release, _ = fresh_events()
    async with (
        async_timeout(TIMEOUT),
        app.serving(
            host="127.0.0.1", port=0, max_in_flight=1, log_summary_interval=0.2, tool_timeout=5
        ) as server,
        connect(server.url) as ws,
    ):
        wire = Wire(ws)
        for text in ("a", "b", "c"):
            assert "result" in await wire.call("echo", {"text": text})
        assert (await wire.call("fail", {}))["result"]["isError"] is True
        assert "error" in await wire.call("nope", {})
        assert "error" in await wire.call("echo", {"text": 3})
        held = await wire.send("hold", {})
        busy = await wire.call("echo", {"text": "d"})
        assert busy["error"]["code"] == -32000
        release.set()
        assert (await wire.reply())["id"] == held
        assert (await wire.call("nap", {"seconds": 0.01}))["result"]["isError"] is False
        await until(lambda: any(hasattr(r, "calls") for r in call_records(caplog)))

    records = call_records(caplog)
    lines = [(r.__dict__.get("tool"), r.__dict__.get("outcome")) for r in records]
    assert ("fail", "error:ToolError") in lines
    assert ("nope", "refused:unknown-tool") in lines
    assert ("echo", "refused:invalid-arguments") in lines
    assert ("echo", "refused:busy") in lines
    assert not [r for r in records if r.__dict__.get("outcome") == "ok"], "a success at INFO"
    invalid = next(r for r in records if r.__dict__.get("outcome") == "refused:invalid-arguments")
    assert invalid.__dict__["errors"][0]["path"] == "/text"
    assert "paths=/text" in invalid.getMessage()
    summaries = [r.__dict__["calls"] for r in records if hasattr(r, "calls")]
    ok = {tool: sum(s[tool]["ok"] for s in summaries if tool in s) for tool in ("echo", "hold")}
    assert ok == {"echo": 3, "hold": 1}
    assert sum(s["nap"]["ok"] for s in summaries if "nap" in s) == 1


async def test_at_debug_every_success_has_its_own_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="iccm_network.calls")
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0) as server,
        connect(server.url) as ws,
    ):
        wire = Wire(ws)
        for text in ("a", "b"):
            await wire.call("echo", {"text": text})
    lines = [r for r in call_records(caplog) if r.__dict__.get("outcome") == "ok"]
    assert [(r.levelno, r.__dict__["request_id"]) for r in lines] == [
        (logging.DEBUG, 1),
        (logging.DEBUG, 2),
    ]
    assert all(isinstance(r.__dict__["ms"], float) for r in lines)


async def test_without_a_summary_interval_every_success_is_an_info_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    monkeypatch.setenv("MCP_LOG_SUMMARY_INTERVAL", "off")
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0) as server,
        connect(server.url) as ws,
    ):
        await Wire(ws).call("echo", {"text": "a"})
    lines = [r for r in call_records(caplog) if r.__dict__.get("outcome") == "ok"]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert not [r for r in call_records(caplog) if hasattr(r, "calls")]


async def test_the_summary_waits_for_its_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    async with (
        async_timeout(TIMEOUT),
        app.serving(host="127.0.0.1", port=0, log_summary_interval=3600) as server,
        connect(server.url) as ws,
    ):
        await Wire(ws).call("echo", {"text": "a"})
        await asyncio.sleep(0.1)
        assert not [r for r in call_records(caplog) if hasattr(r, "calls")]
    # Stopping writes what was counted.
    [summary] = [r for r in call_records(caplog) if hasattr(r, "calls")]
    assert summary.__dict__["calls"]["echo"]["ok"] == 1


def test_the_summary_interval_setting() -> None:
    assert Settings().log_summary_interval == 60
    environ = {"MCP_LOG_SUMMARY_INTERVAL": "off"}
    assert Settings.from_environment(environ).log_summary_interval is None
    environ = {"MCP_LOG_SUMMARY_INTERVAL": "2.5"}
    assert Settings.from_environment(environ).log_summary_interval == 2.5
    with pytest.raises(ValueError, match="MCP_LOG_SUMMARY_INTERVAL"):
        Settings.from_environment({"MCP_LOG_SUMMARY_INTERVAL": "0"})


def exposure_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "beyond loopback" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [
        (None, None, True),  # every interface: the quickstart
        ("0.0.0.0", None, True),
        (None, "s3cret", False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
    ],
)
async def test_a_server_beyond_loopback_without_a_token_warns_at_startup(
    caplog: pytest.LogCaptureFixture, host: str | None, token: str | None, warned: bool
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    async with async_timeout(TIMEOUT), app.serving(host=host, port=0, auth_token=token):
        pass
    messages = exposure_warnings(caplog)
    assert bool(messages) is warned, messages
    if warned:
        assert "MCP_AUTH_TOKEN" in messages[0]


async def test_timeouts_and_cancellations_get_a_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    _, entered = fresh_events()
    async with async_timeout(TIMEOUT):
        async with (
            app.serving(host="127.0.0.1", port=0, tool_timeout=0.05) as server,
            connect(server.url) as ws,
        ):
            assert (await Wire(ws).call("nap", {"seconds": 5}))["result"]["isError"] is True
        async with (
            app.serving(host="127.0.0.1", port=0, max_in_flight=1) as server,
            connect(server.url) as ws,
        ):
            wire = Wire(ws)
            # Cancelled while it runs, then before its task has started.
            for lines, wait in ((2, True), (3, False)):
                entered.clear()
                held = await wire.send("hold", {})
                if wait:
                    await entered.wait()
                cancel = {"requestId": held}
                notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
                await ws.send(json.dumps(notice))
                await until(lambda n=lines: len(call_records(caplog)) >= n)
            # Both calls were completed: the one slot in flight is free again.
            assert "result" in await wire.call("echo", {"text": "free"})
    outcomes = [
        (r.__dict__["tool"], r.outcome) for r in call_records(caplog) if hasattr(r, "outcome")
    ]
    assert outcomes == [("nap", "timeout"), ("hold", "cancelled"), ("hold", "cancelled")]


async def test_a_call_whose_peer_left_before_it_started_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The connection ends in the same turn that read the request, so the
    # call's task has not started: it still gets its line, and no reply.
    caplog.set_level(logging.INFO, logger="iccm_network")
    _, entered = fresh_events()
    sent: list[str] = []
    server = MemoryServer(app, sent.append)
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hold"}}
    tasks = server.receive_text(json.dumps(request))
    server.close()
    async with async_timeout(TIMEOUT):
        await asyncio.gather(*tasks)
    assert not entered.is_set()
    assert sent == []
    outcomes = [(r.__dict__["tool"], r.__dict__["outcome"]) for r in call_records(caplog)]
    assert outcomes == [("hold", "cancelled")]


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10 has no Task.cancelling(): a tool's own CancelledError cannot be told "
    "from the call being cancelled, so it is taken as a cancellation there",
)
async def test_a_tool_that_raises_cancelled_error_itself_gets_an_error_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Awaited in place, as most calls are: the runner tells the tool's own
    # CancelledError from a cancellation of the call and answers it.
    caplog.set_level(logging.INFO, logger="iccm_network")
    sent: list[str] = []
    server = MemoryServer(app, sent.append)
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "quits"}}
    async with async_timeout(TIMEOUT):
        await asyncio.gather(*server.receive_text(json.dumps(request)))
    (reply,) = [json.loads(frame) for frame in sent]
    assert reply["id"] == 1
    assert reply["result"]["isError"] is True
    outcomes = [(r.__dict__["tool"], r.__dict__["outcome"]) for r in call_records(caplog)]
    assert outcomes == [("quits", "error:RuntimeError")]
