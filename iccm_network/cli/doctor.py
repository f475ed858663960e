"""``iccm-network doctor``: walk a connection step by step and say what broke.

The steps are the client's own (``iccm_network.transport.connect`` and
``iccm_network.transport.handshake``, driving a ``ClientProtocol``), run one at a time
and timed: DNS lookup, TCP connect, WebSocket handshake, ``initialize``,
``tools/list`` (every page) and a ``ping`` round trip. The first failure
stops the walk; its ``reason`` is a stable name (see ``docs/troubleshooting.md``)
and its message says, in plain words, what is wrong and what to check.

``tools/list`` also fails when one of its messages is larger than the relay's
limit (1 MiB, ``websockets``' default): the server answers, but every client
going through the relay would see the connection die with 1009.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from iccm_network.errors import MCPConnectionError
from iccm_network.protocol.client import ClientProtocol, Reply
from iccm_network.transport.client import ClientTransport, WebSocketTransport
from iccm_network.transport.connect import (
    Endpoint,
    connect_tcp,
    format_address,
    handshake_headers,
    open_websocket,
    resolve,
)
from iccm_network.transport.handshake import exchange, initialize
from iccm_network.transport.http_client import HttpTransport

__all__ = ["HTTP_STEPS", "RELAY_MAX_SIZE", "STEPS", "DoctorReport", "StepResult", "doctor"]

RELAY_MAX_SIZE: Final = 1024 * 1024
"""The largest message the ICCM relay accepts: ``websockets``' default ``max_size``."""

STEPS: Final = (
    ("dns", "DNS lookup"),
    ("tcp", "TCP connect"),
    ("websocket", "WebSocket handshake"),
    ("initialize", "initialize"),
    ("tools/list", "tools/list"),
    ("ping", "ping"),
)
"""Every step, in order: ``(name, title)``."""

HTTP_STEPS: Final = (
    ("dns", "DNS lookup"),
    ("tcp", "TCP connect"),
    ("http", "HTTP POST"),
    ("initialize", "initialize"),
    ("tools/list", "tools/list"),
    ("ping", "ping"),
)
"""The steps for an ``http://`` URL (Streamable HTTP): a POST instead of the upgrade."""

T = TypeVar("T")


@dataclass(slots=True)
class StepResult:
    """How one step went.

    Args:
        name: The step's name, such as ``"tcp"``.
        title: Its human-readable title.
        status: ``"ok"``, ``"fail"`` or ``"skipped"``.
        seconds: How long it took (``None`` when skipped).
        detail: What it found, or a one-line summary of the failure.
        reason: A stable name for the failure, or ``None``.
        problem: What went wrong, in plain words.
        check: What to check.
    """

    name: str
    title: str
    status: str = "skipped"
    seconds: float | None = None
    detail: str = ""
    reason: str | None = None
    problem: str | None = None
    check: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The step as a JSON-able dict (times in milliseconds)."""
        return {
            "step": self.name,
            "title": self.title,
            "status": self.status,
            "ms": None if self.seconds is None else round(self.seconds * 1000, 3),
            "detail": self.detail,
            "reason": self.reason,
            "problem": self.problem,
            "check": self.check,
        }


@dataclass(slots=True)
class DoctorReport:
    """The outcome of ``doctor``: every step, passed, failed or skipped.

    Args:
        url: The URL examined.
        steps: One result per step, in order.
    """

    url: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step passed."""
        return all(step.status == "ok" for step in self.steps)

    @property
    def failure(self) -> StepResult | None:
        """The step that failed, if any."""
        return next((step for step in self.steps if step.status == "fail"), None)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict, for ``doctor --json``."""
        failure = self.failure
        return {
            "url": self.url,
            "ok": self.ok,
            "reason": None if failure is None else failure.reason,
            "steps": [step.to_json() for step in self.steps],
        }

    def render(self) -> str:
        """The report as text for a terminal."""
        lines = [f"iccm-network doctor {self.url}"]
        width = max(len(step.title) for step in self.steps)
        for step in self.steps:
            mark = {"ok": "ok  ", "fail": "FAIL", "skipped": "--  "}[step.status]
            took = "" if step.seconds is None else f"{step.seconds * 1000:9.1f} ms"
            detail = step.detail if step.status != "skipped" else "skipped"
            lines.append(f"  {mark}  {step.title:<{width}}  {took:>12}  {detail}".rstrip())
        failure = self.failure
        if failure is None:
            lines.append(f"All {len(self.steps)} steps passed.")
        else:
            lines.append("")
            lines.append(f"Problem: {failure.problem}")
            if failure.check:
                lines.append(f"Check:   {failure.check}")
        return "\n".join(lines)


class _Failed(Exception):
    """Stops the walk; the failing step is already recorded."""


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.2f} MiB"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def doctor(
    target: str,
    *,
    port: int | None = None,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
    auth_token: str | None = None,
    origin: str | None = None,
    max_size: int | None = RELAY_MAX_SIZE,
) -> DoctorReport:
    """Walk every step of connecting to an MCP server and report each.

    Args:
        target: ``ws://host:port/path``, ``http://host:port/mcp``,
            ``host:port`` or a host.
        port: The port, when ``target`` does not give one.
        timeout: Seconds each step may take.
        headers: Extra handshake headers (``Origin``, ...).
        auth_token: Sent as ``Authorization: Bearer <token>``.
        origin: Sent as the ``Origin`` header, as a browser sends it (to
            reproduce a browser client's 403 from ``MCP_ALLOWED_ORIGINS``).
        max_size: Fail ``tools/list`` when one of its messages is larger
            (the relay's 1 MiB by default); ``None`` skips the check.

    Raises:
        ValueError: ``target`` is not a usable address.
    """
    endpoint = Endpoint.parse(target, port)
    names = HTTP_STEPS if endpoint.http else STEPS
    report = DoctorReport(endpoint.url, [StepResult(name, title) for name, title in names])
    steps = {step.name: step for step in report.steps}
    all_headers = handshake_headers(headers, auth_token)
    if origin is not None:
        all_headers["Origin"] = origin

    async def run(name: str, work: Callable[[], Awaitable[T]]) -> T:
        step = steps[name]
        started = time.perf_counter()
        try:
            return await work()
        except MCPConnectionError as exc:
            reason = exc.reason
            if endpoint.http and exc.step == "handshake":
                step = steps["http"]  # the POST itself was refused, not its content
            if reason == "timeout":
                reason = f"{name.replace('/', '-')}-timeout"
            _fail(step, reason, exc.problem, exc.check)
            raise _Failed from exc
        finally:
            # tools/list may take several pages: its time is their sum.
            step.seconds = (step.seconds or 0.0) + time.perf_counter() - started

    connection: Any = None
    protocol = ClientProtocol(client_info={"name": "iccm-network-doctor", "version": "1"})
    try:
        addresses = await run("dns", lambda: resolve(endpoint, timeout))
        ips = ", ".join(str(sockaddr[0]) for _, sockaddr in addresses)
        steps["dns"].status = "ok"
        steps["dns"].detail = (
            f"{endpoint.host} is an IP address"
            if _is_ip(endpoint.host)
            else f"{endpoint.host} -> {ips}"
        )

        sock = await run("tcp", lambda: connect_tcp(endpoint, addresses, timeout))
        steps["tcp"].status = "ok"
        steps["tcp"].detail = f"connected to {format_address(sock.getpeername())}"

        if endpoint.http:
            await _over_http(endpoint, sock, steps, run, protocol, timeout, all_headers, max_size)
            return report

        connection = await run(
            "websocket",
            lambda: open_websocket(
                endpoint, sock, timeout, headers=all_headers, max_size=None, ping_interval=None
            ),
        )
        steps["websocket"].status = "ok"
        steps[
            "websocket"
        ].detail = f"101 Switching Protocols, subprotocol {connection.subprotocol or 'none'}"

        transport = WebSocketTransport.wrap(endpoint, connection)
        result = await run("initialize", lambda: initialize(transport, protocol, timeout))
        _initialized(steps["initialize"], result)

        await _tools_list(steps["tools/list"], run, transport, protocol, timeout, max_size)
        await _ping(steps["ping"], run, transport, protocol, timeout)
    except _Failed:
        pass
    finally:
        if connection is not None:
            await connection.close()
    return report


async def _over_http(
    endpoint: Endpoint,
    sock: Any,
    steps: dict[str, StepResult],
    run: Runner,
    protocol: ClientProtocol,
    timeout: float,
    headers: Mapping[str, str],
    max_size: int | None,
) -> None:
    transport = HttpTransport(endpoint, headers=headers)
    try:
        await run("http", lambda: transport.adopt(sock, timeout))
        result = await run("initialize", lambda: initialize(transport, protocol, timeout))
        steps["http"].status = "ok"
        steps["http"].detail = "POST answered, no session"
        transport.protocol_version = str(result["protocolVersion"])
        _initialized(steps["initialize"], result)
        await _tools_list(steps["tools/list"], run, transport, protocol, timeout, max_size)
        await _ping(steps["ping"], run, transport, protocol, timeout)
    finally:
        await transport.close()


def _initialized(step: StepResult, result: Mapping[str, Any]) -> None:
    server_info = result.get("serverInfo")
    info: Mapping[str, Any] = server_info if isinstance(server_info, dict) else {}
    step.status = "ok"
    step.detail = (
        f"{info.get('name', '?')} {info.get('version', '?')}, protocol {result['protocolVersion']}"
    )


def _fail(step: StepResult, reason: str, problem: str, check: str | None) -> None:
    step.status = "fail"
    step.reason = reason
    step.problem = problem
    step.check = check
    step.detail = reason


def _rpc_error(step: StepResult, method: str, reply: Reply) -> None:
    raw = reply.message.get("error")
    error: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    _fail(
        step,
        "not-mcp",
        f"The server answered {method} with error {error.get('code')} "
        f"{error.get('message', '')!r}: it does not speak MCP fully.",
        f"that the server implements MCP's {method} (every MCP server must).",
    )


Runner = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def _tools_list(
    step: StepResult,
    run: Runner,
    transport: ClientTransport,
    protocol: ClientProtocol,
    timeout: float,
    max_size: int | None,
) -> None:
    count = pages = largest = 0
    cursor: Any = None
    while True:
        request = protocol.list_tools(cursor)
        reply, frame = await run(
            "tools/list", functools.partial(exchange, transport, protocol, request, timeout)
        )
        if not reply.ok:
            _rpc_error(step, "tools/list", reply)
            raise _Failed
        result = reply.message.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            _fail(
                step,
                "not-mcp",
                "The server answered tools/list without a tools array.",
                "that the server implements MCP's tools/list.",
            )
            raise _Failed
        pages += 1
        count += len(result["tools"])
        largest = max(largest, len(frame.encode("utf-8") if isinstance(frame, str) else frame))
        cursor = result.get("nextCursor")
        if cursor is None or pages >= 1000:
            break
    if max_size is not None and largest > max_size:
        _fail(
            step,
            "message-too-big",
            f"tools/list answered with a {_size(largest)} message, over the {_size(max_size)} "
            "that websockets clients accept by default: the ICCM relay (and any such client) "
            "closes the connection with 1009 (message too big) when it receives it.",
            "shorten tool descriptions and schemas, page tools/list, or raise the relay's "
            "max_size; iccm-network's MCPClient accepts up to 64 MiB.",
        )
        raise _Failed
    step.status = "ok"
    page_note = "" if pages == 1 else f" in {pages} pages"
    plural = "" if count == 1 else "s"
    step.detail = f"{count} tool{plural}{page_note}, largest message {_size(largest)}"


async def _ping(
    step: StepResult,
    run: Runner,
    transport: ClientTransport,
    protocol: ClientProtocol,
    timeout: float,
) -> None:
    request = protocol.ping()
    reply, _ = await run("ping", lambda: exchange(transport, protocol, request, timeout))
    if not reply.ok:
        _rpc_error(step, "ping", reply)
        raise _Failed
    step.status = "ok"
    assert step.seconds is not None
    step.detail = f"round trip {step.seconds * 1000:.1f} ms"
