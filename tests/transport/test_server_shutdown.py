"""Graceful shutdown of a real server process on SIGTERM and SIGINT.

``tests/servers/slow_app.py`` runs ``app.run()`` in a subprocess, as a
container would. While calls are in flight the test signals it and checks,
from the outside, everything SPEC section 6 promises: ``/healthz`` turns 503,
new handshakes get 503, the calls in flight are answered, connections close
with 1001, and the process exits 0 within the grace period. Also as PID 1 of
its own PID namespace, as in a container without an init.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from iccm_network import App
from iccm_network._timeout import timeout as async_timeout

SERVER = Path(__file__).parents[1] / "servers" / "slow_app.py"
START_TIMEOUT = 15.0
"""Seconds for the subprocess to listen: an interpreter start and a few imports."""
TIMEOUT = 20.0


@dataclass
class Process:
    """A server subprocess, its port and everything it wrote to stderr."""

    process: asyncio.subprocess.Process
    port: int
    pid: int
    stderr: list[str] = field(default_factory=list)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


@asynccontextmanager
async def server_process(grace: float, *, as_pid_1: bool = False) -> AsyncIterator[Process]:
    env = dict(os.environ, MCP_PORT="0", MCP_SHUTDOWN_GRACE=str(grace), MCP_LOG_LEVEL="INFO")
    env.pop("MCP_HOST", None)
    command = [sys.executable, str(SERVER)]
    if as_pid_1:
        command = ["unshare", "--pid", "--fork", "--kill-child", *command]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with async_timeout(START_TIMEOUT):
            while True:
                line = (await process.stderr.readline()).decode(errors="replace")
                lines.append(line)
                if not line:
                    pytest.fail("the server exited before listening:\n" + "".join(lines))
                if match := re.search(r"listening on \S*:(\d+)", line):
                    break
        pid = process.pid
        if as_pid_1:  # signal the server itself, not unshare
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            assert len(children) == 1
            pid = int(children[0])
        running = Process(process, int(match.group(1)), pid, lines)
        collector = asyncio.create_task(_collect(process.stderr, lines))
        try:
            yield running
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            await collector
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def call(request_id: Any, name: str, arguments: dict[str, Any]) -> str:
    params = {"name": name, "arguments": arguments, "_meta": {"progressToken": request_id}}
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    )


async def healthz(port: int) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def read_until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    messages = []
    try:
        while True:
            messages.append(json.loads(await ws.recv()))
    except ConnectionClosed:
        return messages


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_drains_five_slow_calls_refuses_newcomers_and_exits_0(
    signum: signal.Signals,
) -> None:
    grace = 5.0
    async with async_timeout(TIMEOUT), server_process(grace) as server:
        url = f"ws://127.0.0.1:{server.port}"
        clients = [await connect(url) for _ in range(5)]
        for n, ws in enumerate(clients):
            await ws.send(call(n, "slow", {"seconds": 1.5}))
        for ws in clients:  # each call has started: it reported progress
            assert json.loads(await ws.recv())["method"] == "notifications/progress"
        assert (await healthz(server.port))[0] == 200

        signalled = time.monotonic()
        os.kill(server.pid, signum)
        for _ in range(200):
            status, health = await healthz(server.port)
            if status == 503:
                break
            await asyncio.sleep(0.01)
        assert (status, health["status"]) == (503, "draining")
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 503

        received = await asyncio.gather(*(read_until_closed(ws) for ws in clients))
        code = await server.process.wait()
        took = time.monotonic() - signalled
    for n, (ws, messages) in enumerate(zip(clients, received, strict=True)):
        assert [m["id"] for m in messages] == [n]
        assert messages[0]["result"]["isError"] is False
        assert ws.close_code == 1001
    assert code == 0, "".join(server.stderr)
    assert took < grace
    assert not [line for line in server.stderr if "Traceback" in line or " ERROR " in line]
    print(
        f"\n{signum.name}: 5 calls of 1.5 s answered, exit 0 after {took:.2f} s (grace {grace} s)"
    )


async def test_calls_still_running_after_the_grace_period_are_cancelled_and_answered() -> None:
    grace = 1.0
    async with async_timeout(TIMEOUT), server_process(grace) as server:
        async with connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send(call("stuck", "stuck", {"seconds": 60}))
            await ws.send(call("slow", "slow", {"seconds": 60}))
            assert json.loads(await ws.recv())["method"] == "notifications/progress"
            signalled = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            messages = await read_until_closed(ws)
            code = await server.process.wait()
            took = time.monotonic() - signalled
        assert ws.close_code == 1001
    assert sorted(m["id"] for m in messages) == ["slow", "stuck"]
    for message in messages:
        assert message["result"]["isError"] is True
        assert "shut down before the call finished" in message["result"]["content"][0]["text"]
    assert code == 0, "".join(server.stderr)
    assert took < grace + 1.0, "a thread stuck in a tool must not hold the process"
    print(f"\nstuck sync + async calls: cancelled, exit 0 after {took:.2f} s (grace {grace} s)")


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is not installed")
async def test_sigterm_stops_the_server_when_it_runs_as_pid_1() -> None:
    """PID 1 gets no default signal actions; only installed handlers stop it."""
    async with async_timeout(TIMEOUT), server_process(2.0, as_pid_1=True) as server:
        async with connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send(call(1, "slow", {"seconds": 0.5}))
            assert json.loads(await ws.recv())["method"] == "notifications/progress"
            signalled = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            messages = await read_until_closed(ws)
        code = await server.process.wait()
        took = time.monotonic() - signalled
    assert [m["id"] for m in messages] == [1] and messages[0]["result"]["isError"] is False
    assert code == 0, "".join(server.stderr)
    assert took < 2.0
    assert any("received SIGTERM" in line for line in server.stderr)


# -- in-process: the Server API itself ---------------------------------------------

app = App("inproc")


@app.tool
async def nap(seconds: float) -> float:
    """Sleep.

    Args:
        seconds: How long.
    """
    await asyncio.sleep(seconds)
    return seconds


async def test_calls_that_arrive_while_draining_are_served_within_the_grace() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(call(1, "nap", {"seconds": 0.5}))
            await asyncio.sleep(0.05)
            stopping = asyncio.create_task(server.shutdown(grace=5))
            await asyncio.sleep(0.05)
            assert server.draining
            await ws.send(call(2, "nap", {"seconds": 0.2}))
            messages = await read_until_closed(ws)
            await stopping
        assert ws.close_code == 1001
    assert [m["id"] for m in messages] == [2, 1]
    assert all(m["result"]["isError"] is False for m in messages)


async def test_shutdown_is_idempotent_and_shared_by_concurrent_callers() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        async with connect(server.url) as ws:
            await ws.send(call(1, "nap", {"seconds": 0.3}))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await asyncio.gather(server.shutdown(grace=5), server.shutdown(grace=0))
            took = time.monotonic() - started
            assert json.loads(await ws.recv())["id"] == 1
        await server.shutdown()  # again: returns at once
    assert 0.2 < took < 2.0


async def test_shutting_down_a_server_that_never_started_returns_at_once() -> None:
    server = app.server(host="127.0.0.1", port=0)
    async with async_timeout(1):
        await server.shutdown()
        await server.serve_forever()
