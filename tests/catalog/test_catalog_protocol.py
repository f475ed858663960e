"""Resources, prompts and completion in the pure protocol core, and their registration."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from catalog_app import build_app

from iccm_network import App, Message, ToolDefinitionError
from iccm_network.catalog.table import META_SUBSCRIPTION_ID
from iccm_network.catalog.uri_templates import UriTemplate, UriTemplateError
from iccm_network.protocol.outcomes import Outcome, Raised, Returned, TimedOut
from iccm_network.protocol.server import ServerInfo, ServerProtocol, ToolCall
from iccm_network.tools.routes import RouteTable

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def make_protocol(app: App | None = None, page_size: int | None = None) -> ServerProtocol:
    app = app if app is not None else build_app()
    info = ServerInfo(name=app.name, version=app.version, page_size=page_size)
    return ServerProtocol(RouteTable(app.tools), info, catalog=app.catalog)


def run(call: ToolCall) -> Outcome:
    try:
        result = call.tool.fn(**call.arguments)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return Returned(result)
    except Exception as exc:
        return Raised(exc)


def exchange(protocol: ServerProtocol, method: str, params: Any, id: Any = 1) -> list[Any]:
    message = {"jsonrpc": "2.0", "id": id, "method": method, "params": params}
    protocol.receive_text(json.dumps(message))
    for call in protocol.calls_to_run():
        protocol.complete(call, run(call))
    return [json.loads(frame) for frame in protocol.data_to_send()]


def reply(protocol: ServerProtocol, method: str, params: Any, *, modern: bool = False) -> Any:
    if modern:
        params = {**params, "_meta": ENVELOPE}
    (message,) = exchange(protocol, method, params)
    return message


# -- listings ------------------------------------------------------------------


def test_lists_page_with_cursors_like_tools_list() -> None:
    protocol = make_protocol(page_size=2)
    first = reply(protocol, "resources/templates/list", {})["result"]
    second = reply(protocol, "resources/templates/list", {"cursor": first["nextCursor"]})["result"]
    assert [t["uriTemplate"] for t in first["resourceTemplates"]] == [
        "note://{name}",
        "blob://{size}",
    ]
    assert [t["uriTemplate"] for t in second["resourceTemplates"]] == ["tree://{+path}"]
    assert "nextCursor" not in second
    bad = reply(protocol, "prompts/list", {"cursor": "nonsense"})
    assert bad["error"]["code"] == -32602


def test_modern_lists_carry_cache_hints_and_result_type() -> None:
    protocol = make_protocol()
    for method in ("resources/list", "resources/templates/list", "prompts/list"):
        result = reply(protocol, method, {}, modern=True)["result"]
        assert result["resultType"] == "complete"
        assert result["cacheScope"] == "public" and result["ttlMs"] == 60_000
        handshake = reply(protocol, method, {})["result"]
        assert "resultType" not in handshake and "ttlMs" not in handshake


def test_titles_appear_only_from_2025_06_18() -> None:
    old = make_protocol()
    reply(old, "initialize", {"protocolVersion": "2025-03-26"})
    new = make_protocol()
    reply(new, "initialize", {"protocolVersion": "2025-06-18"})
    assert "title" not in reply(old, "prompts/list", {})["result"]["prompts"][0]
    assert reply(new, "prompts/list", {})["result"]["prompts"][0]["title"] == "Paint"


# -- reading -------------------------------------------------------------------


def test_modern_read_is_not_cached_and_has_result_type() -> None:
    result = reply(make_protocol(), "resources/read", {"uri": "note://todo"}, modern=True)
    assert result["result"] == {
        "contents": [{"uri": "note://todo", "mimeType": "text/plain", "text": "buy milk"}],
        "ttlMs": 0,
        "cacheScope": "private",
        "resultType": "complete",
    }


@pytest.mark.parametrize(("modern", "code"), [(False, -32002), (True, -32602)])
def test_unknown_resource_code_follows_the_revision(modern: bool, code: int) -> None:
    error = reply(make_protocol(), "resources/read", {"uri": "x://y"}, modern=modern)["error"]
    assert error["code"] == code and error["data"] == {"uri": "x://y"}


def test_a_function_failure_is_an_internal_error_without_its_text() -> None:
    app = App("t")

    @app.resource("boom://now")
    def boom() -> str:
        raise RuntimeError("secret")

    error = reply(make_protocol(app), "resources/read", {"uri": "boom://now"})["error"]
    assert error["code"] == -32603 and "secret" not in json.dumps(error)
    assert "correlationId" in error["data"]


def test_a_timed_out_read_is_an_internal_error() -> None:
    protocol = make_protocol()
    protocol.receive_text(
        json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": "note://x"}}
        )
    )
    (call,) = protocol.calls_to_run()
    protocol.complete(call, TimedOut(2.0))
    (message,) = [json.loads(frame) for frame in protocol.data_to_send()]
    assert message["id"] == 7 and "timed out after 2 s" in message["error"]["message"]


def test_a_cancelled_read_gets_no_reply() -> None:
    protocol = make_protocol()
    protocol.receive_text(
        json.dumps(
            {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "note://x"}}
        )
    )
    (call,) = protocol.calls_to_run()
    cancel = {"requestId": 3}
    protocol.receive_text(
        json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
    )
    assert protocol.calls_to_cancel() == [call]
    protocol.complete(call, Returned("late"))
    assert protocol.data_to_send() == []


def test_json_values_are_compact_json_text() -> None:
    contents = reply(make_protocol(), "resources/read", {"uri": "config://app"})["result"]
    assert contents["contents"][0]["text"] == '{"notes":3}'


# -- prompts -------------------------------------------------------------------


def test_prompt_arguments_are_read_by_type_and_validated() -> None:
    protocol = make_protocol()
    good = reply(protocol, "prompts/get", {"name": "paint", "arguments": {"colour": "blue"}})
    text = good["result"]["messages"][0]["content"]["text"]
    assert text == "Paint it blue 1 times, calmly."
    for arguments, named in [
        ({"colour": "blue", "times": "many"}, "times"),
        ({"colour": "blue", "times": 3}, "times"),  # the wire sends strings only
        ({"colour": "blue", "extra": "x"}, "extra"),
        ({}, "colour"),
    ]:
        params = {"name": "paint", "arguments": arguments}
        error = reply(protocol, "prompts/get", params)["error"]
        assert error["code"] == -32602 and named in error["message"], arguments


def test_a_prompt_returning_something_else_is_an_internal_error() -> None:
    app = App("t")

    @app.prompt
    def odd() -> Any:
        """Returns a number."""
        return 42

    error = reply(make_protocol(app), "prompts/get", {"name": "odd"})["error"]
    assert error["code"] == -32603


def test_message_roles_are_checked() -> None:
    with pytest.raises(ValueError, match="role"):
        Message("hi", role="system")  # type: ignore[arg-type]


# -- completion ----------------------------------------------------------------


def test_completion_of_an_unknown_argument_or_reference_is_invalid_params() -> None:
    protocol = make_protocol()
    for ref, argument in [
        ({"type": "ref/prompt", "name": "paint"}, "nothing"),
        ({"type": "ref/prompt", "name": "nothing"}, "colour"),
        ({"type": "ref/other"}, "colour"),
    ]:
        params = {"ref": ref, "argument": {"name": argument, "value": ""}}
        assert reply(protocol, "completion/complete", params)["error"]["code"] == -32602


def test_a_hook_receives_the_other_arguments_as_context() -> None:
    app = App("t")
    seen: list[dict[str, str]] = []

    @app.prompt
    def pair(first: str, second: str) -> str:
        """Two words."""
        return first + second

    @app.complete("pair", "second")
    def second_words(value: str, context: dict[str, str]) -> list[str]:
        seen.append(context)
        return [context.get("first", "") + value]

    params = {
        "ref": {"type": "ref/prompt", "name": "pair"},
        "argument": {"name": "second", "value": "b"},
        "context": {"arguments": {"first": "a"}},
    }
    result = reply(make_protocol(app), "completion/complete", params)["result"]
    assert result == {"completion": {"values": ["ab"], "total": 1, "hasMore": False}}
    assert seen == [{"first": "a"}]


# -- subscriptions ---------------------------------------------------------------


def test_handshake_subscriptions_send_updates_until_unsubscribed() -> None:
    protocol = make_protocol()
    assert reply(protocol, "resources/subscribe", {"uri": "note://todo"})["result"] == {}
    protocol.resource_updated("note://ideas")
    assert protocol.data_to_send() == []
    protocol.resource_updated("note://todo")
    (frame,) = protocol.data_to_send()
    assert json.loads(frame)["params"] == {"uri": "note://todo"}
    reply(protocol, "resources/unsubscribe", {"uri": "note://todo"})
    protocol.resource_updated("note://todo")
    assert protocol.data_to_send() == []
    assert reply(protocol, "resources/subscribe", {"uri": "x://y"})["error"]["code"] == -32002


def test_listen_acknowledges_streams_updates_and_ends_on_cancel() -> None:
    protocol = make_protocol()
    params = {
        "_meta": ENVELOPE,
        "notifications": {
            "resourceSubscriptions": ["note://todo", "nothing://here"],
            "toolsListChanged": True,
        },
    }
    (ack,) = exchange(protocol, "subscriptions/listen", params, id="listen-1")
    assert ack == {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {
            "_meta": {"io.modelcontextprotocol/subscriptionId": "listen-1"},
            "notifications": {"toolsListChanged": True, "resourceSubscriptions": ["note://todo"]},
        },
    }
    assert protocol.listening
    protocol.resource_updated("note://todo")
    (update,) = [json.loads(frame) for frame in protocol.data_to_send()]
    assert update["params"] == {
        "_meta": {"io.modelcontextprotocol/subscriptionId": "listen-1"},
        "uri": "note://todo",
    }
    cancel = {"requestId": "listen-1"}
    protocol.receive_text(
        json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
    )
    protocol.resource_updated("note://todo")
    assert protocol.data_to_send() == []
    assert not protocol.listening
    assert protocol.list_changed_frames("tools") == []


def test_listen_acknowledges_only_the_lists_the_app_has() -> None:
    tools_only = App("t")
    tools_only.add_tool(lambda: "hi", name="hi")
    protocol = make_protocol(tools_only)
    wanted = dict.fromkeys(["toolsListChanged", "resourcesListChanged", "promptsListChanged"], True)
    params = {"_meta": ENVELOPE, "notifications": {**wanted, "resourceSubscriptions": ["x://y"]}}
    (ack,) = exchange(protocol, "subscriptions/listen", params, id=3)
    assert ack["params"]["notifications"] == {"toolsListChanged": True}
    bad = {"_meta": ENVELOPE, "notifications": {"toolsListChanged": "yes"}}
    (error,) = exchange(protocol, "subscriptions/listen", bad, id=4)
    assert error["error"]["code"] == -32602
    assert "toolsListChanged" in error["error"]["message"]


def test_each_listen_stream_gets_the_list_changes_it_asked_for_and_a_result_at_its_end() -> None:
    protocol = make_protocol()
    lists = {"toolsListChanged": True, "promptsListChanged": True}
    exchange(protocol, "subscriptions/listen", {"_meta": ENVELOPE, "notifications": lists}, id=1)
    prompts = {"promptsListChanged": True}
    exchange(protocol, "subscriptions/listen", {"_meta": ENVELOPE, "notifications": prompts}, id=2)
    exchange(protocol, "subscriptions/listen", {"_meta": ENVELOPE, "notifications": {}}, id=3)

    def ids(kind: str) -> list[Any]:
        frames = [json.loads(frame) for frame in protocol.list_changed_frames(kind)]
        assert {frame["method"] for frame in frames} <= {f"notifications/{kind}/list_changed"}
        return [frame["params"]["_meta"][META_SUBSCRIPTION_ID] for frame in frames]

    assert (ids("tools"), ids("prompts"), ids("resources")) == ([1], [1, 2], [])
    protocol.end_listens()
    closing = [json.loads(frame) for frame in protocol.data_to_send()]
    assert closing == [
        {
            "jsonrpc": "2.0",
            "id": n,
            "result": {
                "_meta": {"io.modelcontextprotocol/subscriptionId": n},
                "resultType": "complete",
            },
        }
        for n in (1, 2, 3)
    ]
    assert not protocol.listening
    assert ids("tools") == []


def test_each_era_has_only_its_own_subscription_methods() -> None:
    protocol = make_protocol()
    listen: dict[str, Any] = {"notifications": {}}
    assert reply(protocol, "subscriptions/listen", listen)["error"]["code"] == -32601
    modern = reply(protocol, "resources/subscribe", {"uri": "note://todo"}, modern=True)
    assert modern["error"]["code"] == -32601


def test_capabilities_only_for_what_the_app_has() -> None:
    empty = App("e")
    result = reply(make_protocol(empty), "initialize", {"protocolVersion": "2025-11-25"})
    assert result["result"]["capabilities"] == {"logging": {}}
    tools_only = App("t")
    tools_only.add_tool(lambda: "hi", name="hi")
    result = reply(make_protocol(tools_only), "initialize", {"protocolVersion": "2025-11-25"})
    assert result["result"]["capabilities"] == {"tools": {"listChanged": True}, "logging": {}}
    prompts_only = App("p")
    prompts_only.add_prompt(lambda: "hi", name="hi")
    result = reply(make_protocol(prompts_only), "initialize", {"protocolVersion": "2025-11-25"})
    assert set(result["result"]["capabilities"]) == {"prompts", "completions", "logging"}
    assert reply(make_protocol(tools_only), "resources/list", {})["result"] == {"resources": []}


# -- registration ----------------------------------------------------------------


def test_registration_errors_name_the_function() -> None:
    app = App("t")

    def by_id(item: int) -> str:
        return str(item)

    def listed(items: list[int]) -> str:
        return ""

    cases: list[tuple[Any, str]] = [
        (lambda: app.add_resource(by_id, "items://{id}"), "by_id"),
        (lambda: app.add_resource(by_id, "items://fixed"), "by_id"),
        (lambda: app.add_resource(by_id, "items://{#item}"), "unsupported expression"),
        (lambda: app.add_resource(by_id, "no-scheme/{item}"), "scheme"),
        (lambda: app.add_resource(listed, "items://{items}"), "listed"),
        (lambda: app.add_completion(by_id, "nothing", "x"), "not a registered"),
    ]
    for register, expected in cases:
        with pytest.raises(ToolDefinitionError, match=expected):
            register()
    app.add_resource(by_id, "items://{item}")
    with pytest.raises(ToolDefinitionError, match="already registered"):
        app.add_resource(by_id, "items://{item}")
    with pytest.raises(ToolDefinitionError, match="no argument"):
        app.add_completion(lambda value: [], "items://{item}", "other")


def test_decorators_return_the_function_unchanged() -> None:
    app = App("t")

    def hello(name: str) -> str:
        return f"hi {name}"

    assert app.resource("hello://{name}")(hello) is hello
    assert app.prompt(hello) is hello
    assert app.complete("hello", "name")(hello) is hello


@pytest.mark.parametrize(
    ("template", "uri", "expected"),
    [
        ("file://{name}", "file://a%20b", {"name": "a b"}),
        ("file://{name}", "file://a/b", None),
        ("file://{+path}", "file://a/b", {"path": "a/b"}),
        ("file://{path*}", "file:///etc/hosts", {"path": "/etc/hosts"}),
        ("x://{a}/{b}", "x://1/2", {"a": "1", "b": "2"}),
    ],
)
def test_uri_templates_match_back(template: str, uri: str, expected: Any) -> None:
    assert UriTemplate.parse(template).match(uri) == expected


@pytest.mark.parametrize("template", ["x://{a,b}", "x://{a:3}", "x://{+a*}", "x://{a}{a}", "x://}"])
def test_unsupported_templates_are_refused(template: str) -> None:
    with pytest.raises(UriTemplateError):
        UriTemplate.parse(template)


def test_subscriptions_beyond_max_subscriptions_are_refused_naming_it() -> None:
    app = build_app()
    info = ServerInfo(name=app.name, version=app.version)
    protocol = ServerProtocol(RouteTable(app.tools), info, catalog=app.catalog, max_subscriptions=3)
    for name in ("a", "b", "c", "a"):  # the same URI again takes no more room
        assert reply(protocol, "resources/subscribe", {"uri": f"note://{name}"})["result"] == {}
    busy = reply(protocol, "resources/subscribe", {"uri": "note://d"})
    assert busy["error"]["code"] == -32000
    assert busy["error"]["data"] == {"maxSubscriptions": 3}
    assert "max_subscriptions" in busy["error"]["message"]
    reply(protocol, "resources/unsubscribe", {"uri": "note://c"})
    # A listen stream takes one, and one per URI it names.
    named = {"_meta": ENVELOPE, "notifications": {"resourceSubscriptions": ["note://x"]}}
    (busy,) = exchange(protocol, "subscriptions/listen", named, id=7)
    assert (busy["id"], busy["error"]["code"]) == (7, -32000)
    (ack,) = exchange(protocol, "subscriptions/listen", {"_meta": ENVELOPE, "notifications": {}})
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    protocol.resource_updated("note://x")  # the refused stream named it: nothing is sent
    assert protocol.data_to_send() == []


def test_a_listen_naming_more_uris_than_the_limit_is_refused_before_any_is_matched() -> None:
    app = build_app()
    info = ServerInfo(name=app.name, version=app.version)
    protocol = ServerProtocol(RouteTable(app.tools), info, catalog=app.catalog)
    matched: list[str] = []
    known_uri = app.catalog.known_uri

    def counting(uri: str) -> bool:
        matched.append(uri)
        return known_uri(uri)

    app.catalog.known_uri = counting  # type: ignore[method-assign]
    uris = [f"note://{n}" for n in range(100_000)]
    params = {"_meta": ENVELOPE, "notifications": {"resourceSubscriptions": uris}}
    (busy,) = exchange(protocol, "subscriptions/listen", params)
    assert busy["error"]["code"] == -32000
    assert matched == []
    assert not protocol.listening
