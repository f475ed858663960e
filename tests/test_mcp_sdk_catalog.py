"""The official MCP Python SDK reads resources, gets prompts, completes and subscribes.

Every mode the SDK offers (see ``test_mcp_sdk_interop``): the SDK validates
each result against the negotiated revision's schema, so a passing call also
means the result had that revision's shape.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from catalog_app import build_app
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import PromptsListChanged, ResourceUpdated, ToolsListChanged
from mcp_sdk_adapter import WebSocketTransport, open_client, open_session

TIMEOUT = 5.0
MODES = ["session", "legacy", "auto", "2026-07-28"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each of the SDK's ways to connect."""
    value: str = request.param
    return value


@asynccontextmanager
async def connected(mode: str) -> AsyncIterator[tuple[Any, WebSocketTransport]]:
    """A fresh app served on loopback, and an SDK client connected in ``mode``."""
    app = build_app()
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            transport = WebSocketTransport(server.url)
            if mode == "session":
                async with open_session(transport) as session:
                    await session.initialize()
                    yield session, transport
            else:
                async with open_client(transport, mode=mode) as client:
                    yield client, transport


async def test_lists_resources_and_templates(mode: str) -> None:
    async with connected(mode) as (client, _):
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
    assert [(r.uri, r.name, r.mime_type) for r in resources] == [
        ("config://app", "settings", "application/json")
    ]
    assert [t.uri_template for t in templates] == [
        "note://{name}",
        "blob://{size}",
        "tree://{+path}",
    ]
    assert templates[0].description == "One note."


async def test_reads_text_json_and_binary_contents(mode: str) -> None:
    async with connected(mode) as (client, _):
        settings = (await client.read_resource("config://app")).contents
        note = (await client.read_resource("note://todo")).contents
        blob = (await client.read_resource("blob://5")).contents
        tree = (await client.read_resource("tree://a/b/c")).contents
    assert isinstance(settings[0], types.TextResourceContents)
    assert settings[0].text == '{"notes":3}' and settings[0].mime_type == "application/json"
    assert isinstance(note[0], types.TextResourceContents) and note[0].text == "buy milk"
    assert isinstance(blob[0], types.BlobResourceContents)
    assert base64.b64decode(blob[0].blob) == bytes(range(5))
    assert isinstance(tree[0], types.TextResourceContents) and tree[0].text == "a/b/c"


async def test_an_unknown_resource_gets_the_revisions_error_code(mode: str) -> None:
    async with connected(mode) as (client, _):
        with pytest.raises(MCPError) as missing:
            await client.read_resource("note://nothing")
        with pytest.raises(MCPError) as unmatched:
            await client.read_resource("nowhere://at/all")
    code = -32602 if mode in ("auto", "2026-07-28") else -32002
    assert missing.value.error.code == code
    assert unmatched.value.error.code == code


async def test_a_template_variable_of_the_wrong_type_is_invalid_params(mode: str) -> None:
    async with connected(mode) as (client, _):
        with pytest.raises(MCPError) as error:
            await client.read_resource("blob://many")
    assert error.value.error.code == -32602
    assert "size" in error.value.error.message


async def test_lists_and_gets_prompts_with_typed_arguments(mode: str) -> None:
    async with connected(mode) as (client, _):
        prompts = (await client.list_prompts()).prompts
        painted = await client.get_prompt("paint", {"colour": "rose", "times": "2"})
        chat = await client.get_prompt("chat", {"topic": "owls"})
    assert [p.name for p in prompts] == ["paint", "chat"]
    arguments = {a.name: (a.required, a.description) for a in prompts[0].arguments or []}
    assert arguments == {
        "colour": (True, "The main colour."),
        "times": (False, "How many coats."),
        "mood": (False, "The painter's mood."),
    }
    message = painted.messages[0]
    assert message.role == "user"
    assert isinstance(message.content, types.TextContent)
    assert message.content.text == "Paint it rose 2 times, calmly."
    assert [m.role for m in chat.messages] == ["user", "assistant"]


async def test_a_bad_prompt_argument_is_invalid_params_naming_it(mode: str) -> None:
    async with connected(mode) as (client, _):
        with pytest.raises(MCPError) as wrong:
            await client.get_prompt("paint", {"colour": "green"})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("paint", {"times": "2"})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("nothing", {})
    assert wrong.value.error.code == -32602 and "colour" in wrong.value.error.message
    assert missing.value.error.code == -32602 and "colour" in missing.value.error.message
    assert unknown.value.error.code == -32602 and "nothing" in unknown.value.error.message


async def test_completes_enums_literals_and_hooks(mode: str) -> None:
    prompt = types.PromptReference(type="ref/prompt", name="paint")
    template = types.ResourceTemplateReference(type="ref/resource", uri="note://{name}")
    async with connected(mode) as (client, _):
        colours = await client.complete(prompt, {"name": "colour", "value": "r"})
        moods = await client.complete(prompt, {"name": "mood", "value": ""})
        names = await client.complete(template, {"name": "name", "value": "t"})
        many = await client.complete(
            types.PromptReference(type="ref/prompt", name="chat"), {"name": "topic", "value": "x"}
        )
    assert colours.completion.values == ["red", "rose"]
    assert moods.completion.values == ["calm", "cross"]
    assert names.completion.values == ["tables", "todo"]
    assert len(many.completion.values) == 100
    assert (many.completion.total, many.completion.has_more) == (150, True)


@pytest.mark.parametrize("mode", ["session", "legacy", "auto"])
async def test_capabilities_name_resources_prompts_and_completions(mode: str) -> None:
    async with connected(mode) as (_, transport):
        pass
    # initialize (session, legacy) or server/discover (auto) carried them.
    replies = [m["result"] for m in transport.received() if "capabilities" in m.get("result", {})]
    assert len(replies) == 1
    assert replies[0]["capabilities"] == {
        "tools": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": True},
        "prompts": {"listChanged": True},
        "completions": {},
        "logging": {},
    }


@asynccontextmanager
async def handshake_client(mode: str, url: str, on_message: Any) -> AsyncIterator[Any]:
    """A handshake-era SDK client in ``mode`` whose notifications go to ``on_message``."""
    if mode == "session":
        async with open_session(url, message_handler=on_message) as session:
            await session.initialize()
            yield session
    else:
        async with open_client(url, mode="legacy", message_handler=on_message) as client:
            yield client


@pytest.mark.parametrize("mode", ["session", "legacy"])
async def test_handshake_subscribers_hear_of_updates(mode: str) -> None:
    updated: list[str] = []
    got = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            got.set()

    app = build_app()
    with anyio.fail_after(TIMEOUT), warnings.catch_warnings():
        # The SDK flags resources/subscribe as gone in 2026-07-28; it is the handshake era's.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        async with app.serving(host="127.0.0.1", port=0) as server:
            async with handshake_client(mode, server.url, on_message) as client:
                await client.subscribe_resource("note://todo")
                await client.call_tool("edit", {"name": "ideas", "text": "none"})
                await client.call_tool("edit", {"name": "todo", "text": "sleep"})
                await got.wait()
                await client.unsubscribe_resource("note://todo")
                await client.call_tool("edit", {"name": "todo", "text": "again"})
                await client.list_tools()  # a round trip after the last edit
    assert updated == ["note://todo"]


async def test_modern_listen_streams_carry_updates() -> None:
    app = build_app()
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            async with open_client(server.url, mode="2026-07-28") as client:
                async with client.listen(resource_subscriptions=["note://todo"]) as subscription:
                    await client.call_tool("edit", {"name": "todo", "text": "sleep"})
                    event = await subscription.__anext__()
    assert isinstance(event, ResourceUpdated) and event.uri == "note://todo"
    assert subscription.honored.resource_subscriptions == ["note://todo"]


async def test_modern_listen_streams_over_http_carry_updates_and_list_changes() -> None:
    app = build_app()
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            url = f"http://127.0.0.1:{server.port}/mcp"
            async with Client(url, mode="2026-07-28") as client:
                listening = client.listen(
                    tools_list_changed=True,
                    prompts_list_changed=True,
                    resource_subscriptions=["note://todo"],
                )
                async with listening as subscription:
                    await client.call_tool("edit", {"name": "todo", "text": "sleep"})
                    updated = await subscription.__anext__()
                    app.add_tool(lambda: "new", name="fresh")
                    tools_changed = await subscription.__anext__()
                    app.remove_prompt("chat")
                    prompts_changed = await subscription.__anext__()
    assert subscription.honored.tools_list_changed is True
    assert subscription.honored.prompts_list_changed is True
    assert isinstance(updated, ResourceUpdated) and updated.uri == "note://todo"
    assert isinstance(tools_changed, ToolsListChanged)
    assert isinstance(prompts_changed, PromptsListChanged)
