"""The sans-I/O protocol: JSON-RPC 2.0 and both eras of MCP, without sockets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import iccm_network.protocol.outcomes
import iccm_network.protocol.server as protocol_module
from iccm_network import App, ToolError
from iccm_network.protocol.server import (
    Cancelled,
    Outcome,
    Raised,
    Returned,
    ServerInfo,
    ServerProtocol,
    TimedOut,
    ToolCall,
    encode,
)
from iccm_network.tools.routes import RouteTable

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "test-client", "version": "1"},
}


@dataclass
class Point:
    x: int
    y: int


def make_app() -> App:
    app = App("calc", version="2.0.0", instructions="Arithmetic.")

    @app.tool
    def subtract(minuend: int, subtrahend: int) -> int:
        """Subtract two numbers."""
        return minuend - subtrahend

    @app.tool
    def total(numbers: list[float]) -> float:
        """Sum numbers."""
        return sum(numbers)

    @app.tool
    def echo(text: str) -> str:
        """Echo text."""
        return text

    @app.tool
    def origin_distance(point: Point) -> dict[str, Any]:
        """Receives a dataclass instance."""
        assert isinstance(point, Point)
        return {"manhattan": abs(point.x) + abs(point.y)}

    @app.tool
    def fail(message: str) -> str:
        """Raises a tool error."""
        raise ToolError(message, data={"hint": "try again"})

    @app.tool
    def crash() -> str:
        """Raises an unexpected error."""
        raise RuntimeError("secret database password in /etc/secret")

    @app.tool(title="Slow", annotations={"readOnlyHint": True})
    async def slow() -> str:
        """A tool the transport would run for a while."""
        return "done"

    return app


def make_protocol(
    *,
    max_in_flight: int = 256,
    page_size: int | None = None,
    max_batch: int = 1000,
    batch_slice: int | None = None,
) -> ServerProtocol:
    app = make_app()
    info = ServerInfo(
        name=app.name, version=app.version, instructions=app.instructions, page_size=page_size
    )
    return ServerProtocol(
        RouteTable(app.tools),
        info,
        max_in_flight=max_in_flight,
        max_batch=max_batch,
        batch_slice=batch_slice,
    )


def run(call: ToolCall) -> Outcome:
    """Run a call the way the transport would, returning its outcome."""
    try:
        result = call.tool.fn(**call.arguments)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return Returned(result)
    except Exception as exc:
        return Raised(exc)


def exchange(protocol: ServerProtocol, message: Any) -> list[Any]:
    """Send one frame, run every call it starts, return the decoded replies."""
    protocol.receive_text(message if isinstance(message, str) else json.dumps(message))
    for call in protocol.calls_to_run():
        protocol.complete(call, run(call))
    return [json.loads(frame) for frame in protocol.data_to_send()]


def request(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call_request(name: str, arguments: Any, id: Any = 1, meta: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return request("tools/call", params, id)


def initialized(version: str) -> ServerProtocol:
    protocol = make_protocol()
    (reply,) = exchange(protocol, request("initialize", {"protocolVersion": version}))
    assert reply["result"]["protocolVersion"] == version
    return protocol


# -- JSON-RPC 2.0, section 7 examples adapted to tools/call --------------------


def test_call_with_named_params_returns_the_result() -> None:
    (reply,) = exchange(
        make_protocol(), call_request("subtract", {"minuend": 42, "subtrahend": 23})
    )
    assert reply == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"content": [{"type": "text", "text": "19"}], "isError": False},
    }


def test_named_params_in_any_order_give_the_same_result() -> None:
    (reply,) = exchange(
        make_protocol(), call_request("subtract", {"subtrahend": 23, "minuend": 42}, id=4)
    )
    assert reply["id"] == 4
    assert reply["result"]["content"][0]["text"] == "19"


def test_positional_params_are_invalid_params_for_mcp_methods() -> None:
    (reply,) = exchange(make_protocol(), request("tools/call", [42, 23], id=2))
    assert reply["id"] == 2
    assert reply["error"]["code"] == -32602


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "update", "params": [1, 2, 3, 4, 5]},
        {"jsonrpc": "2.0", "method": "foobar"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "nope"}},
        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "crash", "arguments": {}}},
    ],
)
def test_notification_gets_no_reply_even_on_error(message: dict[str, Any]) -> None:
    assert exchange(make_protocol(), message) == []


def test_non_existent_method_is_method_not_found_with_the_id_echoed() -> None:
    (reply,) = exchange(make_protocol(), request("foobar", id="1"))
    assert reply == {
        "jsonrpc": "2.0",
        "id": "1",
        "error": {"code": -32601, "message": "Method not found: foobar"},
    }


@pytest.mark.parametrize(
    "text",
    [
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]',
        "[" * 100_000,
        '{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": ' + "9" * 5000 + "}}",
        "",
    ],
)
def test_invalid_json_is_a_parse_error_with_null_id(text: str) -> None:
    (reply,) = exchange(make_protocol(), text)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700


def test_invalid_request_object_is_answered_with_null_id() -> None:
    (reply,) = exchange(make_protocol(), {"jsonrpc": "2.0", "method": 1, "params": "bar"})
    assert reply == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": 'Invalid Request: "method" must be a string'},
    }


def test_empty_batch_is_one_invalid_request_error() -> None:
    (reply,) = exchange(make_protocol(), "[]")
    assert isinstance(reply, dict)
    assert reply["error"]["code"] == -32600
    assert reply["id"] is None


@pytest.mark.parametrize("batch", ["[1]", "[1,2,3]"])
def test_batch_of_non_objects_is_an_array_of_invalid_request_errors(batch: str) -> None:
    (reply,) = exchange(make_protocol(), batch)
    assert [item["error"]["code"] for item in reply] == [-32600] * len(json.loads(batch))
    assert all(item["id"] is None for item in reply)


def test_mixed_batch_answers_every_request_and_no_notification() -> None:
    batch = [
        call_request("total", {"numbers": [1, 2, 4]}, id="1"),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        call_request("subtract", {"minuend": 42, "subtrahend": 23}, id="2"),
        {"foo": "boo"},
        request("foo.get", {"name": "myself"}, id="5"),
        request("ping", id="9"),
    ]
    (replies,) = exchange(make_protocol(), batch)
    by_id = {reply["id"]: reply for reply in replies}
    assert len(replies) == 5
    assert by_id["1"]["result"]["content"][0]["text"] == "7.0"
    assert by_id["2"]["result"]["content"][0]["text"] == "19"
    assert by_id[None]["error"]["code"] == -32600
    assert by_id["5"]["error"]["code"] == -32601
    assert by_id["9"]["result"] == {}


def test_batch_of_notifications_gets_no_reply() -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1, 2, 4]},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    assert exchange(make_protocol(), batch) == []


def test_batch_reply_waits_for_every_call_in_it() -> None:
    protocol = make_protocol()
    protocol.receive_text(json.dumps([request("ping", id=1), call_request("slow", {}, id=2)]))
    (call,) = protocol.calls_to_run()
    assert protocol.data_to_send() == []
    protocol.complete(call, Returned("done"))
    (frame,) = protocol.data_to_send()
    assert [reply["id"] for reply in json.loads(frame)] == [1, 2]


@pytest.mark.parametrize("request_id", ["abc", 7, -1, 2.5, None, "", 10**30])
def test_ids_of_any_json_rpc_type_are_echoed_unchanged(request_id: Any) -> None:
    (reply,) = exchange(make_protocol(), request("ping", id=request_id))
    assert reply["id"] == request_id
    assert type(reply["id"]) is type(request_id)


@pytest.mark.parametrize("request_id", [True, [1], {"a": 1}])
def test_an_id_of_the_wrong_type_is_an_invalid_request(request_id: Any) -> None:
    (reply,) = exchange(make_protocol(), request("ping", id=request_id))
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "1.0", "id": 3, "method": "ping"},
        {"id": 3, "method": "ping"},
        {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": "text"},
        {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": None},
        {"jsonrpc": "2.0", "id": 3, "method": None},
    ],
)
def test_malformed_request_with_readable_id_echoes_the_id(message: dict[str, Any]) -> None:
    (reply,) = exchange(make_protocol(), message)
    assert reply["id"] == 3
    assert reply["error"]["code"] == -32600


def test_params_may_be_omitted() -> None:
    (reply,) = exchange(make_protocol(), {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert [tool["name"] for tool in reply["result"]["tools"]][:2] == ["subtract", "total"]


def test_responses_from_the_client_are_ignored() -> None:
    assert exchange(make_protocol(), {"jsonrpc": "2.0", "id": 1, "result": {}}) == []


# -- MCP, handshake era --------------------------------------------------------


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_initialize_echoes_a_supported_version(version: str) -> None:
    protocol = make_protocol()
    (reply,) = exchange(
        protocol,
        request(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "c"}},
        ),
    )
    assert reply["result"] == {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}, "logging": {}},
        "serverInfo": {"name": "calc", "version": "2.0.0"},
        "instructions": "Arithmetic.",
    }
    assert protocol.protocol_version == version
    assert protocol.client_info == {"name": "c"}


@pytest.mark.parametrize("offered", ["1999-01-01", "2026-07-28", None, 5])
def test_initialize_answers_the_newest_handshake_version_otherwise(offered: Any) -> None:
    (reply,) = exchange(make_protocol(), request("initialize", {"protocolVersion": offered}))
    assert reply["result"]["protocolVersion"] == "2025-11-25"


def test_requests_before_initialize_are_served_under_2024_11_05_rules() -> None:
    protocol = make_protocol()
    (listing,) = exchange(protocol, request("tools/list"))
    slow = next(t for t in listing["result"]["tools"] if t["name"] == "slow")
    assert "title" not in slow and "annotations" not in slow and "outputSchema" not in slow
    (reply,) = exchange(protocol, call_request("origin_distance", {"point": {"x": 1, "y": -2}}))
    assert reply["result"] == {
        "content": [{"type": "text", "text": '{"manhattan":3}'}],
        "isError": False,
    }


def test_2025_06_18_adds_titles_output_schemas_and_structured_content() -> None:
    protocol = initialized("2025-06-18")
    (listing,) = exchange(protocol, request("tools/list"))
    tools = {tool["name"]: tool for tool in listing["result"]["tools"]}
    assert tools["slow"]["title"] == "Slow"
    assert tools["slow"]["annotations"] == {"readOnlyHint": True}
    assert "outputSchema" not in tools["echo"]
    assert tools["subtract"]["outputSchema"] == {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    (reply,) = exchange(protocol, call_request("subtract", {"minuend": 1, "subtrahend": 3}))
    assert reply["result"]["structuredContent"] == {"result": -2}
    (reply,) = exchange(protocol, call_request("echo", {"text": "hi"}))
    assert reply["result"] == {"content": [{"type": "text", "text": "hi"}], "isError": False}


def test_2025_03_26_has_annotations_but_no_titles() -> None:
    (listing,) = exchange(initialized("2025-03-26"), request("tools/list"))
    slow = next(t for t in listing["result"]["tools"] if t["name"] == "slow")
    assert slow["annotations"] == {"readOnlyHint": True}
    assert "title" not in slow


def test_unknown_tool_is_invalid_params() -> None:
    (reply,) = exchange(initialized("2025-11-25"), call_request("nope", {}))
    assert reply["error"]["code"] == -32602
    assert "nope" in reply["error"]["message"]


def test_schema_violations_before_2025_11_25_are_invalid_params_with_paths() -> None:
    (reply,) = exchange(
        initialized("2025-06-18"), call_request("origin_distance", {"point": {"x": "1"}, "z": 0})
    )
    assert reply["error"]["code"] == -32602
    paths = sorted(problem["path"] for problem in reply["error"]["data"]["errors"])
    assert paths == ["", "/point/x", "/point/y"]


def test_schema_violations_from_2025_11_25_are_tool_errors_listing_the_paths() -> None:
    (reply,) = exchange(
        initialized("2025-11-25"), call_request("origin_distance", {"point": {"x": "1", "y": 2}})
    )
    result = reply["result"]
    assert result["isError"] is True
    assert "/point/x" in result["content"][0]["text"]


def test_a_float_parameter_accepts_a_json_integer() -> None:
    (reply,) = exchange(make_protocol(), call_request("total", {"numbers": [1, 2]}))
    assert reply["result"]["content"][0]["text"] == "3.0"


def test_tool_error_is_an_is_error_result_with_its_message() -> None:
    (reply,) = exchange(make_protocol(), call_request("fail", {"message": "disk full"}))
    assert reply["result"]["isError"] is True
    assert reply["result"]["content"] == [{"type": "text", "text": "disk full"}]
    assert reply["result"]["_meta"] == {"iccm-network/errorData": {"hint": "try again"}}


def test_unexpected_exception_reveals_only_a_correlation_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (reply,) = exchange(make_protocol(), call_request("crash", {}))
    text = json.dumps(reply)
    assert "secret" not in text and "RuntimeError" not in text and "Traceback" not in text
    incident = reply["result"]["_meta"]["iccm-network/errorData"]["correlationId"]
    assert incident in reply["result"]["content"][0]["text"]
    assert any(incident in record.getMessage() for record in caplog.records)


def test_timed_out_call_says_after_how_long() -> None:
    protocol = make_protocol()
    protocol.receive_text(json.dumps(call_request("slow", {})))
    (call,) = protocol.calls_to_run()
    protocol.complete(call, TimedOut(2.5))
    (frame,) = protocol.data_to_send()
    result = json.loads(frame)["result"]
    assert result["isError"] is True
    assert "timed out after 2.5 s" in result["content"][0]["text"]


def test_cancelled_notification_cancels_the_running_call_and_nothing_is_sent() -> None:
    protocol = make_protocol()
    protocol.receive_text(json.dumps(call_request("slow", {}, id="a")))
    (call,) = protocol.calls_to_run()
    protocol.receive_text(
        json.dumps(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "a"}}
        )
    )
    assert protocol.calls_to_cancel() == [call]
    protocol.complete(call, Cancelled())
    assert protocol.data_to_send() == []
    assert protocol.in_flight == 0


def test_cancelling_an_unknown_request_is_ignored() -> None:
    protocol = make_protocol()
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}
    assert exchange(protocol, cancel) == []
    assert protocol.calls_to_cancel() == []


def test_calls_beyond_the_in_flight_bound_are_refused_at_once() -> None:
    protocol = make_protocol(max_in_flight=2)
    for request_id in (1, 2, 3):
        protocol.receive_text(json.dumps(call_request("slow", {}, id=request_id)))
    assert len(protocol.calls_to_run()) == 2
    (frame,) = protocol.data_to_send()
    assert json.loads(frame)["error"]["code"] == -32000
    assert json.loads(frame)["id"] == 3


def test_tools_list_pages_with_a_cursor() -> None:
    protocol = make_protocol(page_size=3)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        (reply,) = exchange(protocol, request("tools/list", {"cursor": cursor} if cursor else {}))
        names += [tool["name"] for tool in reply["result"]["tools"]]
        pages += 1
        cursor = reply["result"].get("nextCursor")
        if cursor is None:
            break
    assert pages == 3
    assert names == list(make_app().tools)


def test_an_unknown_cursor_is_invalid_params() -> None:
    (reply,) = exchange(make_protocol(), request("tools/list", {"cursor": "bogus"}))
    assert reply["error"]["code"] == -32602


def test_progress_frame_is_a_progress_notification() -> None:
    frame = make_protocol().progress_frame({"progressToken": "t", "progress": 1})
    assert json.loads(frame) == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "t", "progress": 1},
    }


def test_lone_surrogates_are_echoed_as_valid_utf8_text() -> None:
    (reply,) = exchange(make_protocol(), '{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}')
    assert reply["id"] == "\ud800"
    encode(reply).encode("utf-8")


# -- MCP, stateless era (2026-07-28) ----------------------------------------------


def test_server_discover_describes_the_server() -> None:
    (reply,) = exchange(make_protocol(), request("server/discover", {"_meta": MODERN_META}))
    assert reply["result"] == {
        "supportedVersions": ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
        "capabilities": {"tools": {"listChanged": True}, "logging": {}},
        "ttlMs": 60_000,
        "cacheScope": "public",
        "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "calc", "version": "2.0.0"}},
        "instructions": "Arithmetic.",
        "resultType": "complete",
    }


def test_modern_tools_list_carries_cache_hints() -> None:
    (reply,) = exchange(make_protocol(), request("tools/list", {"_meta": MODERN_META}))
    result = reply["result"]
    assert result["ttlMs"] == 60_000 and result["cacheScope"] == "public"
    assert result["resultType"] == "complete"
    slow = next(t for t in result["tools"] if t["name"] == "slow")
    assert slow["title"] == "Slow"


def test_modern_tool_results_carry_result_type_and_structured_content() -> None:
    (reply,) = exchange(
        make_protocol(),
        call_request("subtract", {"minuend": 5, "subtrahend": 3}, meta=MODERN_META),
    )
    assert reply["result"] == {
        "content": [{"type": "text", "text": "2"}],
        "isError": False,
        "structuredContent": {"result": 2},
        "resultType": "complete",
    }


def test_modern_requests_do_not_depend_on_an_earlier_initialize() -> None:
    protocol = initialized("2024-11-05")
    (reply,) = exchange(
        protocol, call_request("origin_distance", {"point": {"x": 1}}, meta=MODERN_META)
    )
    assert reply["result"]["isError"] is True  # 2026-07-28 rules, not the session's
    assert reply["result"]["resultType"] == "complete"


def test_modern_tool_context_gets_the_client_info_from_meta() -> None:
    protocol = make_protocol()
    protocol.receive_text(json.dumps(call_request("slow", {}, meta=MODERN_META)))
    (call,) = protocol.calls_to_run()
    assert call.client_info == {"name": "test-client", "version": "1"}
    assert call.features.version == "2026-07-28"


def test_an_unsupported_modern_version_is_error_32022_listing_the_supported() -> None:
    meta = dict(MODERN_META, **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    (reply,) = exchange(make_protocol(), request("server/discover", {"_meta": meta}, id=7))
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32022
    assert reply["error"]["data"] == {
        "supported": ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
        "requested": "2099-01-01",
    }


@pytest.mark.parametrize(
    "missing",
    ["io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities"],
)
def test_a_missing_required_meta_key_is_invalid_params(missing: str) -> None:
    meta = {key: value for key, value in MODERN_META.items() if key != missing}
    (reply,) = exchange(make_protocol(), request("tools/list", {"_meta": meta}))
    assert reply["error"]["code"] == -32602
    assert missing in reply["error"]["message"]


def test_server_discover_without_the_envelope_is_invalid_params() -> None:
    (reply,) = exchange(make_protocol(), request("server/discover"))
    assert reply["error"]["code"] == -32602


def test_initialize_is_not_a_modern_method() -> None:
    (reply,) = exchange(make_protocol(), request("initialize", {"_meta": MODERN_META}))
    assert reply["error"]["code"] == -32601


@pytest.mark.parametrize(
    "outcome",
    [
        Raised(ToolError("bad", data=object())),
        Returned([float("nan")]),
        Returned({"self": []}),
        Returned(10**5000),
    ],
    ids=["unencodable-error-data", "nan", "self-reference", "huge-int"],
)
def test_every_outcome_gets_a_reply_even_one_that_cannot_be_encoded(outcome: Outcome) -> None:
    if isinstance(outcome, Returned) and isinstance(outcome.value, dict):
        outcome.value["self"].append(outcome.value)
    protocol = make_protocol()
    protocol.receive_text(json.dumps(call_request("slow", {})))
    (call,) = protocol.calls_to_run()
    protocol.complete(call, outcome)
    (frame,) = protocol.data_to_send()
    result = json.loads(frame)["result"]
    assert result["isError"] is True
    assert "correlation id" in result["content"][0]["text"]


# -- batches in slices, outcomes ------------------------------------------------


def test_a_batch_over_max_batch_is_refused_whole_naming_the_limit() -> None:
    protocol = make_protocol(max_batch=3)
    (reply,) = exchange(protocol, [request("ping", id=n) for n in range(4)])
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert "at most 3 messages (max_batch)" in reply["error"]["message"]
    assert protocol.calls_to_run() == []


def test_a_batch_is_handled_batch_slice_entries_at_a_time() -> None:
    protocol = make_protocol(batch_slice=2)
    protocol.receive_text(json.dumps([request("ping", id=n) for n in range(5)]))
    slices = 1
    while protocol.more_to_process:
        assert protocol.data_to_send() == []
        protocol.process_more()
        slices += 1
    (frame,) = protocol.data_to_send()
    assert [reply["id"] for reply in json.loads(frame)] == list(range(5))
    assert slices == 3


def test_a_call_that_ends_before_its_batch_is_read_waits_for_the_rest() -> None:
    protocol = make_protocol(batch_slice=1)
    protocol.receive_text(json.dumps([call_request("slow", {}, id="c"), request("ping", id="p")]))
    (call,) = protocol.calls_to_run()
    protocol.complete(call, Returned("done"))
    assert protocol.data_to_send() == []
    protocol.process_more()
    (frame,) = protocol.data_to_send()
    assert sorted(reply["id"] for reply in json.loads(frame)) == ["c", "p"]


@pytest.mark.parametrize("value", [ValueError("kept"), asyncio.CancelledError("kept")])
def test_an_exception_object_returned_is_a_result_not_a_failure(value: BaseException) -> None:
    protocol = make_protocol()
    protocol.receive_text(json.dumps(call_request("slow", {})))
    (call,) = protocol.calls_to_run()
    protocol.complete(call, Returned(value))
    (frame,) = protocol.data_to_send()
    result = json.loads(frame)["result"]
    assert result["isError"] is False
    assert "kept" in result["content"][0]["text"]


@pytest.mark.parametrize("module", [protocol_module, iccm_network.protocol.outcomes])
def test_the_protocol_core_does_not_import_asyncio(module: Any) -> None:
    source = Path(module.__file__).read_text()
    assert "import asyncio" not in source
    assert "from asyncio" not in source
