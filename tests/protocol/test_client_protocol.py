"""The client's JSON-RPC core, without a socket or an event loop."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iccm_network.errors import InvalidParams, MCPError, MethodNotFound, ToolError
from iccm_network.protocol.client import (
    ClientProtocol,
    ClientProtocolError,
    Notification,
    Progress,
    Reply,
    Stray,
    decode_result,
)
from iccm_network.protocol.client_events import tool_list_page, tool_result
from iccm_network.protocol.versions import META_PROTOCOL_VERSION


def sent(protocol: ClientProtocol) -> list[Any]:
    return [json.loads(text) for text in protocol.data_to_send()]


def reply(request_id: Any, result: Any = None, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": {} if result is None else result, **extra}


def test_requests_get_increasing_ids_and_are_queued_in_order() -> None:
    protocol = ClientProtocol()
    first = protocol.ping()
    second = protocol.list_tools()
    assert (first.id, second.id) == (1, 2)
    assert sent(protocol) == [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    assert protocol.data_to_send() == []


def test_initialize_offers_the_revision_and_client_info_and_initialized_follows() -> None:
    protocol = ClientProtocol(
        protocol_version="2025-06-18", client_info={"name": "c", "version": "9"}
    )
    protocol.initialize()
    protocol.initialized()
    assert sent(protocol) == [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "c", "version": "9"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]


def test_a_call_asking_for_progress_carries_its_id_as_progress_token() -> None:
    protocol = ClientProtocol()
    request = protocol.call_tool("add", {"a": 1}, progress=True)
    (message,) = sent(protocol)
    assert message["params"] == {
        "name": "add",
        "arguments": {"a": 1},
        "_meta": {"progressToken": request.id},
    }
    assert request.what == "tools/call 'add'"


def test_the_stateless_revision_needs_no_initialize_and_sends_the_envelope() -> None:
    protocol = ClientProtocol(protocol_version="2026-07-28")
    assert not protocol.needs_initialize
    protocol.list_tools()
    (message,) = sent(protocol)
    assert message["params"]["_meta"][META_PROTOCOL_VERSION] == "2026-07-28"
    assert ClientProtocol().needs_initialize


def test_a_reply_is_matched_to_its_request_once() -> None:
    protocol = ClientProtocol()
    request = protocol.ping()
    (event,) = protocol.receive_text(json.dumps(reply(request.id)))
    assert isinstance(event, Reply) and event.request is request and event.ok
    assert protocol.pending == []
    (again,) = protocol.receive_text(json.dumps(reply(request.id)))
    assert isinstance(again, Stray)


def test_a_batch_of_requests_goes_as_one_message_and_its_replies_match_in_any_order() -> None:
    protocol = ClientProtocol()
    requests = [
        protocol.prepare("tools/call", {"name": "log", "arguments": {"n": n}}) for n in range(3)
    ]
    protocol.send_batch(requests)
    (text,) = protocol.data_to_send()
    assert [item["id"] for item in json.loads(text)] == [1, 2, 3]
    replies = [reply(3), reply(1), reply(2)]
    events = protocol.receive_text(json.dumps(replies))
    assert [event.request.id for event in events if isinstance(event, Reply)] == [3, 1, 2]


@pytest.mark.parametrize("version", ["2025-06-18", "2026-07-28"])
def test_prepare_call_encodes_the_same_request_as_prepare(version: str) -> None:
    fast, general = (
        ClientProtocol(protocol_version=version),
        ClientProtocol(protocol_version=version),
    )
    arguments = {"message": 'say "hi"\n', "data": {"n": [1, 2.5, None]}}
    quick = fast.prepare_call("logger_log", arguments, deadline=3.0)
    slow = general.prepare("tools/call", {"name": "logger_log", "arguments": arguments})
    assert json.loads(quick.text) == json.loads(slow.text)
    assert (quick.id, quick.deadline, quick.what) == (1, 3.0, "tools/call 'logger_log'")
    assert fast.pending == [quick]


def test_a_batch_of_one_goes_as_a_plain_message() -> None:
    protocol = ClientProtocol()
    protocol.send_batch([protocol.prepare("ping")])
    assert sent(protocol) == [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]


def test_progress_is_routed_to_the_request_that_asked_for_it() -> None:
    protocol = ClientProtocol()
    request = protocol.call_tool("count", {}, progress=True)
    other = protocol.call_tool("count", {})
    params: dict[str, Any] = {
        "progressToken": request.id,
        "progress": 2,
        "total": 5,
        "message": "m",
    }
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
    assert protocol.receive_text(json.dumps(note)) == [Progress(request, 2, 5, "m")]
    params["progressToken"] = other.id
    (event,) = protocol.receive_text(json.dumps(note))
    assert isinstance(event, Notification) and event.method == "notifications/progress"


def test_the_servers_ping_is_answered_and_other_requests_refused() -> None:
    protocol = ClientProtocol()
    protocol.receive_text('{"jsonrpc":"2.0","id":"s1","method":"ping"}')
    protocol.receive_text('{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}')
    answers = sent(protocol)
    assert answers[0] == {"jsonrpc": "2.0", "id": "s1", "result": {}}
    assert answers[1]["id"] == 7 and answers[1]["error"]["code"] == -32601


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("hello", "not JSON"),
        ('{"id": 1, "result": {}}', "not JSON-RPC 2.0"),
        ("[]", "empty batch"),
        (b"\x00", "binary"),
    ],
)
def test_what_is_not_json_rpc_raises_saying_what_it_was(text: str | bytes, what: str) -> None:
    with pytest.raises(ClientProtocolError, match=what):
        ClientProtocol().receive_text(text)


def test_a_request_echoed_back_is_recognized() -> None:
    protocol = ClientProtocol()
    protocol.ping()
    (echo,) = protocol.data_to_send()
    with pytest.raises(ClientProtocolError, match="echo"):
        protocol.receive_text(echo)


def test_expired_requests_are_reported_and_cancelled_on_the_wire() -> None:
    protocol = ClientProtocol()
    soon = protocol.call_tool("wait", {}, deadline=10.0)
    later = protocol.call_tool("wait", {}, deadline=20.0)
    protocol.ping()  # no deadline
    protocol.data_to_send()
    assert protocol.next_deadline() == 10.0
    assert protocol.expired(9.9) == []
    assert protocol.expired(10.0) == [soon]
    (notice,) = sent(protocol)
    assert notice["method"] == "notifications/cancelled"
    assert notice["params"]["requestId"] == soon.id
    assert protocol.next_deadline() == 20.0
    assert [r.id for r in protocol.pending] == [later.id, later.id + 1]


def test_a_request_cancelled_without_notice_is_forgotten_silently() -> None:
    protocol = ClientProtocol()
    request = protocol.ping()
    protocol.data_to_send()
    protocol.cancel(request, "gone", notify=False)
    assert protocol.data_to_send() == [] and protocol.pending == []
    (event,) = protocol.receive_text(json.dumps(reply(request.id)))
    assert isinstance(event, Stray)


def test_abandon_forgets_every_pending_request() -> None:
    protocol = ClientProtocol()
    requests = [protocol.ping(), protocol.ping()]
    assert protocol.abandon() == requests
    assert protocol.pending == []


def test_errors_become_the_typed_exceptions_with_code_and_data() -> None:
    protocol = ClientProtocol()
    request = protocol.call_tool("add", {})
    error = {"code": -32602, "message": "bad", "data": {"errors": []}}
    (event,) = protocol.receive_text(
        json.dumps({"jsonrpc": "2.0", "id": request.id, "error": error})
    )
    assert isinstance(event, Reply) and not event.ok
    with pytest.raises(InvalidParams) as caught:
        event.result()
    assert (caught.value.code, caught.value.data) == (-32602, {"errors": []})
    other = protocol.ping()
    unknown = {"jsonrpc": "2.0", "id": other.id, "error": {"code": -32601, "message": "no"}}
    (event,) = protocol.receive_text(json.dumps(unknown))
    assert isinstance(event, Reply)
    with pytest.raises(MethodNotFound):
        event.result()
    odd = protocol.ping()
    (event,) = protocol.receive_text(json.dumps({"jsonrpc": "2.0", "id": odd.id, "error": "x"}))
    assert isinstance(event, Reply)
    with pytest.raises(MCPError, match="malformed"):
        event.result()


def test_a_failed_tool_raises_tool_error_with_its_data() -> None:
    protocol = ClientProtocol()
    request = protocol.call_tool("fail", {})
    result = {
        "content": [{"type": "text", "text": "disk full"}],
        "isError": True,
        "_meta": {"iccm-network/errorData": {"free": 0}},
    }
    (event,) = protocol.receive_text(json.dumps(reply(request.id, result)))
    assert isinstance(event, Reply)
    with pytest.raises(ToolError) as caught:
        tool_result(event)
    assert (caught.value.message, caught.value.data) == ("disk full", {"free": 0})


def test_a_tool_result_that_is_not_an_object_is_a_protocol_error() -> None:
    protocol = ClientProtocol()
    request = protocol.call_tool("add", {})
    (event,) = protocol.receive_text(json.dumps(reply(request.id, [1])))
    assert isinstance(event, Reply)
    with pytest.raises(MCPError, match="tools/call 'add'"):
        tool_result(event)


def test_a_tools_list_page_gives_its_tools_and_cursor() -> None:
    protocol = ClientProtocol()
    request = protocol.list_tools()
    page = {"tools": [{"name": "a"}], "nextCursor": "c2"}
    (event,) = protocol.receive_text(json.dumps(reply(request.id, page)))
    assert isinstance(event, Reply)
    assert tool_list_page(event) == ([{"name": "a"}], "c2")


def test_results_are_shaped_structured_first_then_json_text_then_text() -> None:
    text = [{"type": "text", "text": '{"a": 1}'}]
    assert decode_result({"content": text, "structuredContent": {"b": 2}}) == {"b": 2}
    assert decode_result({"content": text}) == {"a": 1}
    assert decode_result({"content": [{"type": "text", "text": "hi"}]}) == "hi"
    assert decode_result({"content": []}) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(value=json_values)
def test_any_json_value_sent_as_text_comes_back_as_that_value(value: Any) -> None:
    result = {"content": [{"type": "text", "text": json.dumps(value)}]}
    assert decode_result(result) == value


@given(
    count=st.integers(min_value=1, max_value=20),
    data=st.data(),
)
def test_every_reply_reaches_its_request_however_batched_and_ordered(
    count: int, data: st.DataObject
) -> None:
    protocol = ClientProtocol()
    requests = [protocol.call_tool("t", {"n": n}) for n in range(count)]
    order = data.draw(st.permutations(requests))
    cuts = sorted(
        data.draw(st.sets(st.integers(1, count - 1), max_size=count)) if count > 1 else []
    )
    matched: dict[int, Any] = {}
    for start, end in zip([0, *cuts], [*cuts, count], strict=True):
        chunk = [reply(r.id, {"n": r.id}) for r in order[start:end]]
        message = chunk[0] if len(chunk) == 1 else chunk
        for event in protocol.receive_text(json.dumps(message)):
            assert isinstance(event, Reply)
            assert event.request.id not in matched
            matched[event.request.id] = event.result()
    assert matched == {r.id: {"n": r.id} for r in requests}
    assert protocol.pending == []


def test_a_message_with_our_id_but_no_result_or_error_leaves_the_request_waiting() -> None:
    protocol = ClientProtocol()
    request = protocol.ping()
    (event,) = protocol.receive_text('{"jsonrpc": "2.0", "id": 1}')
    assert isinstance(event, Stray)
    assert protocol.pending == [request]
    (event,) = protocol.receive_text('{"jsonrpc": "2.0", "id": true, "result": {}}')
    assert isinstance(event, Stray)
    assert protocol.pending == [request]
