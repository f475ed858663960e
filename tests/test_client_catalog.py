"""``MCPClient`` reads resources, gets prompts, completes and subscribes, over a real socket."""

from __future__ import annotations

import asyncio
import base64
import gc

import pytest
from catalog_app import build_app

from iccm_network import MCPClient, MCPError
from iccm_network._timeout import timeout as async_timeout
from iccm_network.protocol.server import ServerInfo

TIMEOUT = 10.0


async def test_the_client_lists_reads_gets_and_completes() -> None:
    app = build_app()
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            (settings,) = await client.read_resource("config://app")
            (blob,) = await client.read_resource("blob://3")
            prompts = await client.list_prompts()
            painted = await client.get_prompt("paint", {"colour": "red", "times": "3"})
            colours = await client.complete("colour", "r", prompt="paint")
            names = await client.complete("name", "", template="note://{name}")
            with pytest.raises(MCPError) as missing:
                await client.read_resource("note://none")
            with pytest.raises(ValueError):
                await client.complete("colour")
    assert [r["uri"] for r in resources] == ["config://app"]
    assert len(templates) == 3
    assert settings["text"] == '{"notes":3}'
    assert base64.b64decode(blob["blob"]) == bytes(range(3))
    assert [p["name"] for p in prompts] == ["paint", "chat"]
    assert painted["messages"][0]["content"]["text"] == "Paint it red 3 times, calmly."
    assert colours == {"values": ["red", "rose"], "total": 2, "hasMore": False}
    assert names["values"] == ["ideas", "tables", "todo"]
    assert missing.value.code == -32002


async def test_listings_follow_every_page() -> None:
    app = build_app()
    async with app.serving(host="127.0.0.1", port=0) as server:
        server.info = ServerInfo(name=app.name, version=app.version, page_size=1)
        async with MCPClient(server.url) as client:
            templates = await client.list_resource_templates()
            first_page = await client.request("resources/templates/list")
    assert len(first_page["resourceTemplates"]) == 1 and "nextCursor" in first_page
    assert [t["uriTemplate"] for t in templates] == [
        "note://{name}",
        "blob://{size}",
        "tree://{+path}",
    ]


async def test_a_subscription_calls_back_on_each_update_until_unsubscribed() -> None:
    app = build_app()
    seen: list[str] = []
    first = asyncio.Event()
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:

            def on_update(uri: str) -> None:
                seen.append(uri)
                first.set()

            await client.subscribe_resource("note://todo", on_update)
            await client.call("edit", {"name": "todo", "text": "new"})
            await asyncio.wait_for(first.wait(), TIMEOUT)
            await client.unsubscribe_resource("note://todo")
            await client.call("edit", {"name": "todo", "text": "newer"})
            with pytest.raises(MCPError):
                await client.subscribe_resource("nothing://here", on_update)
    assert seen == ["note://todo"]


async def test_the_in_memory_client_reads_resources_too() -> None:
    client = MCPClient(build_app())
    async with client:
        (note,) = await client.read_resource("note://ideas")
    assert note["text"] == "a diagram tool"


async def test_in_memory_connections_nobody_closes_leave_no_listener_behind() -> None:
    app = build_app()
    for _ in range(5):
        client = MCPClient(app)
        await client.read_resource("note://todo")
        del client
    gc.collect()
    assert len(app.catalog.listeners) == 0


@pytest.mark.parametrize("where", ["websocket", "http", "memory"])
async def test_a_2026_07_28_subscription_is_a_listen_stream_until_unsubscribed(where: str) -> None:
    app = build_app()
    seen: list[str] = []
    first = asyncio.Event()

    def on_update(uri: str) -> None:
        seen.append(uri)
        first.set()

    async with app.serving(host="127.0.0.1", port=0) as server:
        target = {"websocket": server.url, "http": f"http://127.0.0.1:{server.port}/mcp"}
        async with MCPClient(target.get(where, app), protocol_version="2026-07-28") as client:
            await client.subscribe_resource("note://todo", on_update)
            await client.call("edit", {"name": "todo", "text": "new"})
            await asyncio.wait_for(first.wait(), TIMEOUT)
            await client.unsubscribe_resource("note://todo")
            async with async_timeout(TIMEOUT):
                # Over HTTP the stream's response is closed: the server sees it go.
                while len(app.catalog.listeners) > (0 if where == "http" else 1):
                    await asyncio.sleep(0.01)
            await client.call("edit", {"name": "todo", "text": "newer"})
            await client.list_tools()  # a round trip after the edit
            with pytest.raises(MCPError, match="does not send updates"):
                await client.subscribe_resource("nothing://here", on_update)
    assert seen == ["note://todo"]
