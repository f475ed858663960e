"""Reachability and scale: other hosts, IPv6, ``localhost``, 1,000 connections.

The old ICCM servers bound 127.0.0.1 and were unreachable from the other
containers. Here a client in its own network namespace, joined to the host by
a veth pair (as a container is), calls a tool over the veth addresses while
the server runs with its default host. The addresses are link-local IPv4
(169.254.X.0/30) and a random ULA IPv6 /64 (fdXX:...), configured only on the
two ends of the pair: no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from iccm_network import App
from iccm_network._timeout import timeout as async_timeout

CLIENT = Path(__file__).parents[1] / "servers" / "ns_client.py"
TIMEOUT = 20.0

app = App("networked", version="1.0.0")


@app.tool
def add(a: int, b: int) -> int:
    """Add two integers in a worker thread.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


@app.tool
async def echo(text: str) -> str:
    """Return the text.

    Args:
        text: The text.
    """
    return text


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


async def add_over(ws: ClientConnection, request_id: int, a: int, b: int) -> int:
    await ws.send(request(request_id, "tools/call", {"name": "add", "arguments": {"a": a, "b": b}}))
    reply = json.loads(await ws.recv())
    assert reply["id"] == request_id and reply["result"]["isError"] is False
    return int(reply["result"]["content"][0]["text"])


@pytest.fixture(autouse=True)
def default_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests mean the default bind: no MCP_HOST from the environment."""
    monkeypatch.delenv("MCP_HOST", raising=False)


# -- default bind, IPv6 and localhost --------------------------------------------


async def test_the_default_host_is_one_dual_stack_socket_on_every_interface() -> None:
    async with async_timeout(TIMEOUT), app.serving(port=0) as server:
        (sock,) = server.sockets
        assert sock.getsockname()[0] in ("::", "0.0.0.0")
        for url in (f"ws://127.0.0.1:{server.port}", server.url):
            async with connect(url) as ws:
                assert await add_over(ws, 1, 2, 3) == 5


@pytest.mark.parametrize("host", ["[::1]", "localhost", "127.0.0.1"])
async def test_the_default_bind_answers_on(host: str) -> None:
    async with async_timeout(TIMEOUT), app.serving(port=0) as server:
        if host == "[::1]" and server.sockets[0].getsockname()[0] != "::":
            pytest.skip("this host has no IPv6")
        async with connect(f"ws://{host}:{server.port}/any/path") as ws:
            assert await add_over(ws, 1, 40, 2) == 42


async def test_an_explicit_ipv6_host_gives_a_bracketed_url() -> None:
    async with async_timeout(TIMEOUT), app.serving(host="::1", port=0) as server:
        assert server.url == f"ws://[::1]:{server.port}"
        async with connect(server.url) as ws:
            assert await add_over(ws, 1, 1, 1) == 2


# -- another host, through a network namespace ----------------------------------------


@dataclass(frozen=True)
class Namespace:
    """A network namespace joined to this one by a veth pair."""

    name: str
    host_ipv4: str
    host_ipv6: str

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *command],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (the ip command) is not installed")
    tag = secrets.token_hex(4)
    name, host_side, far_side = f"iccm-test-{tag}", f"ih{tag}", f"in{tag}"
    octet = 1 + secrets.randbelow(254)
    prefix = f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}:{secrets.token_hex(2)}::"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_side, "type", "veth", "peer", "name", far_side, "netns", name)
        try:
            _ip("addr", "add", f"169.254.{octet}.1/30", "dev", host_side)
            _ip("-6", "addr", "add", f"{prefix}1/64", "dev", host_side, "nodad")
            _ip("link", "set", host_side, "up")
            _ip("-n", name, "addr", "add", f"169.254.{octet}.2/30", "dev", far_side)
            _ip("-n", name, "-6", "addr", "add", f"{prefix}2/64", "dev", far_side, "nodad")
            _ip("-n", name, "link", "set", far_side, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            yield Namespace(name, f"169.254.{octet}.1", f"{prefix}1")
        finally:
            subprocess.run(["ip", "link", "del", host_side], capture_output=True, timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


async def test_a_client_in_another_network_namespace_calls_a_tool(namespace: Namespace) -> None:
    async with async_timeout(TIMEOUT), app.serving(port=0) as server:
        for url in (
            f"ws://{namespace.host_ipv4}:{server.port}/from/another/container",
            f"ws://[{namespace.host_ipv6}]:{server.port}",
        ):
            result = await asyncio.to_thread(namespace.run, sys.executable, str(CLIENT), url)
            assert result.returncode == 0, f"{url}: {result.stderr}"
            assert result.stdout.strip() == "5"


async def test_a_server_bound_to_loopback_is_unreachable_from_another_namespace(
    namespace: Namespace,
) -> None:
    """The old ICCM failure, shown for contrast: why the default binds everything."""
    async with async_timeout(TIMEOUT), app.serving(host="127.0.0.1", port=0) as server:
        url = f"ws://{namespace.host_ipv4}:{server.port}"
        result = await asyncio.to_thread(namespace.run, sys.executable, str(CLIENT), url)
    assert result.returncode != 0


# -- scale -----------------------------------------------------------------------------


async def test_1000_concurrent_connections_each_making_calls_have_zero_failures() -> None:
    connections, calls_each = 1_000, 3
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * connections + 256  # both ends live in this process
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    async def client(n: int, url: str, go: asyncio.Event) -> int:
        async with connect(url, open_timeout=15, compression=None) as ws:
            await go.wait()  # every connection is open before any call
            total = 0
            for k in range(calls_each):
                total += await add_over(ws, k, n, k)
            await ws.send(
                request("e", "tools/call", {"name": "echo", "arguments": {"text": str(n)}})
            )
            assert json.loads(await ws.recv())["result"]["content"][0]["text"] == str(n)
            return total

    try:
        async with async_timeout(TIMEOUT), app.serving(port=0) as server:
            go = asyncio.Event()
            started = time.perf_counter()
            tasks = [asyncio.create_task(client(n, server.url, go)) for n in range(connections)]
            while server.connections < connections and not any(t.done() for t in tasks):
                await asyncio.sleep(0.05)
            opened = time.perf_counter() - started
            peak = server.connections
            go.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            took = time.perf_counter() - started
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} failed, first: {failures[0]!r}"
    assert peak == connections
    assert results == [calls_each * n + sum(range(calls_each)) for n in range(connections)]
    print(
        f"\n{connections} connections open in {opened:.2f} s; "
        f"{connections * (calls_each + 1)} calls, 0 failures, {took:.2f} s in all"
    )
