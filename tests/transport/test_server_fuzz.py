"""Thousands of garbage frames cannot hurt the server.

Hypothesis sends random bytes, random text, random JSON, request-shaped JSON
with wrong types in every field, batches of those, deep nesting, huge
integers and lone surrogates. Every text frame that gets an answer gets
well-formed JSON-RPC; bad frames close their own connection with a
documented code; afterwards a valid call on a fresh connection succeeds and
nothing at INFO or above in the server's log is an error or has a traceback.

The server runs on its own event loop in a thread so that the Hypothesis test
(and its synchronous ``websockets`` client) can run example after example
against the same server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_tools import add, echo
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from iccm_network import App
from iccm_network.transport.websocket import CLOSE_INVALID_DATA, CLOSE_UNSUPPORTED_DATA, Server

app = App("fuzzed", version="0.0.1")
for tool in (echo, add):
    app.add_tool(tool)


@app.tool
def tally(
    items: list[str], weights: dict[str, float] | None = None, strict: bool = False
) -> dict[str, Any]:
    """Count items, optionally weighted.

    Args:
        items: The items.
        weights: A weight per item.
        strict: Ignored; a flag to get wrong.
    """
    weights = weights or {}
    return {"count": len(items), "weight": sum(weights.get(item, 1.0) for item in items)}


EXAMPLES = 500
"""Hypothesis examples of 4-24 frames each: about 3,000 frames."""

METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "nonexistent/method",
]
TOOLS = ["echo", "add", "tally", "missing-tool", ""]

# -- strategies ---------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**4000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "a\udfffb", "\x00", "2.0", "1"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
wrong_arguments = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values,
        "a": json_values,
        "b": json_values,
        "items": json_values,
        "weights": json_values,
        "strict": json_values,
        "extra": json_values,
    },
)
params = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(TOOLS) | json_values,
        "arguments": wrong_arguments | json_values,
        "protocolVersion": st.sampled_from(["2024-11-05", "2025-11-25", "1999-01-01"])
        | json_values,
        "requestId": json_values,
        "cursor": json_values,
        "_meta": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "progressToken": json_values,
                "io.modelcontextprotocol/protocolVersion": st.sampled_from(["2026-07-28"])
                | json_values,
                "io.modelcontextprotocol/clientCapabilities": json_values,
            },
        ),
    },
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "id": json_values,
        "method": st.sampled_from(METHODS) | json_values,
        "params": params | json_values,
        "result": json_values,
        "error": json_values,
    },
)


@dataclass(frozen=True)
class Frame:
    """One frame to send: text, binary, or bytes in a text frame (maybe not UTF-8)."""

    kind: str
    data: str | bytes


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)  # lone surrogates travel as \\ud800 escapes


frames = st.one_of(
    st.text(max_size=200).map(lambda t: Frame("text", t)),
    json_values.map(lambda v: Frame("text", _dumps(v))),
    requests.map(lambda r: Frame("text", _dumps(r))),
    requests.map(lambda r: Frame("text", _dumps(r))),  # twice as likely: the interesting ones
    st.lists(requests, max_size=5).map(lambda b: Frame("text", _dumps(b))),
    # Each of these closes its connection, so they come less often.
    st.builds(Frame, st.sampled_from(["binary", "raw-text"]), st.binary(max_size=200)),
)

SPECIAL = [
    "[" * 100_000,
    "{" * 100_000,
    '{"a":' * 50_000,
    "[" * 100_000 + "]" * 100_000,
    "1" * 5_000,
    '{"jsonrpc":"2.0","id":' + "9" * 5_000 + ',"method":"ping"}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":'
    + "9" * 4_299
    + ',"b":1}}}',
    '{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}',
    '{"jsonrpc":"2.0","id":1,"method":"\\udfff"}',
    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"\\ud800x"}}',
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\\ud83d"}}}',
    '{"jsonrpc":"2.0","id":4,"method":"ping","params":{"_meta":{"progressToken":Infinity}}}',
    '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"tally","arguments":'
    '{"items":["a"],"weights":{"a":NaN}}}}',
    "[]",
    "[[]]",
    "",
    " ",
    "null",
    '"\\ud800"',
    '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"nobody"}}',
    "[" + ",".join(['{"jsonrpc":"2.0","id":1,"method":"ping"}'] * 2_000) + "]",
]


# -- the server in a thread ------------------------------------------------------


@dataclass
class ThreadedServer:
    """A server on its own loop in a thread, and everything it logged."""

    url: str = ""
    records: list[logging.LogRecord] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, into: ThreadedServer) -> None:
        super().__init__(logging.INFO)
        self.into = into
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        line.encode("utf-8")  # what a UTF-8 stderr handler would do
        self.into.records.append(record)
        self.into.lines.append(line)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        self.into.lines.append(f"LOGGING FAILED for {record.msg!r}")
        self.into.records.append(record)


@pytest.fixture
def served() -> Iterator[ThreadedServer]:
    state = ThreadedServer()
    handler = _Collect(state)
    root = logging.getLogger("iccm_network")
    previous = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with app.serving(host="127.0.0.1", port=0) as server:
            state.url = server.url
            ready.set()
            await stop.wait()
            await Server.shutdown(server, grace=1.0)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "the server did not start"
        yield state
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        root.removeHandler(handler)
        root.setLevel(previous)


# -- the exchange ------------------------------------------------------------------


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _check_reply(text: str) -> None:
    message = _strict(text)
    for item in message if isinstance(message, list) else [message]:
        assert isinstance(item, dict) and item["jsonrpc"] == "2.0", text[:200]
        if "method" in item:
            assert item["method"] == "notifications/progress"
            continue
        assert ("result" in item) != ("error" in item), text[:200]
        if "error" in item:
            assert isinstance(item["error"]["code"], int) and item["error"]["message"]
            assert "Traceback" not in text


@dataclass
class Exchange:
    """A connection that reopens after a bad frame closed it."""

    url: str
    sent: int = 0
    closes: list[int | None] = field(default_factory=list)
    ws: ClientConnection | None = None
    opened: ExitStack = field(default_factory=ExitStack)

    def send(self, frame: Frame) -> None:
        if self.ws is None:
            self.ws = self.opened.enter_context(connect(self.url, max_size=None, open_timeout=10))
        try:
            if frame.kind == "text":
                self.ws.send(frame.data)
            else:
                self.ws.send(frame.data, text=frame.kind == "raw-text")
            self.sent += 1
            if frame.kind != "text":
                self.settle()
        except ConnectionClosed:
            self.settle()

    def settle(self) -> None:
        """Read every reply up to the answer to a sentinel ping (or the close)."""
        if self.ws is None:
            return  # closed by the last frame; the next send reconnects
        sentinel = f"sentinel-{self.sent}"
        try:
            self.ws.send(json.dumps({"jsonrpc": "2.0", "id": sentinel, "method": "ping"}))
            while True:
                text = self.ws.recv(timeout=10)
                assert isinstance(text, str)
                _check_reply(text)
                if f'"id":"{sentinel}"' in text:
                    return
        except ConnectionClosed:
            self.closes.append(self.ws.close_code)
            self.ws.close()
            self.ws = None

    def close(self) -> None:
        if self.ws is not None:
            self.settle()
        self.opened.close()


def test_thousands_of_garbage_frames_leave_the_server_serving_without_a_traceback(
    served: ThreadedServer,
) -> None:
    exchange = Exchange(served.url)
    for text in SPECIAL:
        exchange.send(Frame("text", text))
        exchange.settle()

    # Small batches keep each example under Hypothesis' entropy budget; the
    # count of examples, not their size, makes the thousands.
    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(frames, min_size=4, max_size=24))
    def fuzz(batch: list[Frame]) -> None:
        for frame in batch:
            exchange.send(frame)
        exchange.settle()

    fuzz()
    exchange.close()

    with connect(served.url) as ws:
        ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "after",
                    "method": "tools/call",
                    "params": {"name": "add", "arguments": {"a": 2, "b": 3}},
                }
            )
        )
        reply = json.loads(ws.recv(timeout=10))
    bad = [
        line
        for line, record in zip(served.lines, served.records, strict=True)
        if record.exc_info or record.levelno >= logging.ERROR or line.startswith("LOGGING FAILED")
    ]
    assert not bad, "\n".join(bad[:5])
    assert reply["result"]["content"][0]["text"] == "5"
    assert exchange.sent >= 2_000, exchange.sent
    assert set(exchange.closes) <= {CLOSE_UNSUPPORTED_DATA, CLOSE_INVALID_DATA}, exchange.closes
    print(
        f"\nfuzz: {exchange.sent} garbage frames ({len(SPECIAL)} hand-made), "
        f"{len(exchange.closes)} connections closed by bad frames, no traceback"
    )


# -- gaps the fuzzing found, now closed ------------------------------------------------


@pytest.mark.parametrize("raw_id", ["NaN", "-Infinity", "1e999"])
def test_a_non_finite_id_is_answered_with_strict_json(raw_id: str, served: ThreadedServer) -> None:
    with connect(served.url) as ws:
        ws.send('{"jsonrpc":"2.0","id":' + raw_id + ',"method":"ping"}')
        text = ws.recv(timeout=10)
        assert isinstance(text, str)
        reply = _strict(text)
    assert reply["error"]["code"] == -32700 and reply["id"] is None


def test_a_result_too_big_to_encode_logs_no_traceback(served: ThreadedServer) -> None:
    with connect(served.url) as ws:
        arguments = '{"a":' + "9" * 4_300 + ',"b":1}'
        ws.send(
            '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":'
            + arguments
            + "}}"
        )
        reply = json.loads(ws.recv(timeout=10))
    assert reply["result"]["isError"] is True
    assert not [record for record in served.records if record.exc_info]


@pytest.mark.parametrize("request_id", ['{"x":[1]}', "[1]"])
def test_a_cancellation_with_an_object_request_id_logs_no_traceback(
    request_id: str, served: ThreadedServer
) -> None:
    with connect(served.url) as ws:
        ws.send(
            '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":'
            + request_id
            + "}}"
        )
        ws.send('{"jsonrpc":"2.0","id":1,"method":"ping"}')
        assert json.loads(ws.recv(timeout=10))["id"] == 1
    assert not [record for record in served.records if record.exc_info]
