"""The official MCP Python SDK reads rich content and log messages, in every mode it offers.

Modes as in ``test_mcp_sdk_interop``: a low-level ``ClientSession``
(``session``), ``Client(mode="legacy")``, ``Client(mode="auto")`` (adopts
2026-07-28 through ``server/discover``) and ``Client(mode="2026-07-28")``.
The SDK validates each result against its revision's schema, so a passing call
also means every content block had the shape the revision requires.
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
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_sdk_adapter import WebSocketTransport, open_client, open_session

from iccm_network import App, Audio, Context, File, Image, ResourceLink

TIMEOUT = 5.0
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(16))
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(8)
MODES = ["session", "legacy", "auto", "2026-07-28"]

app = App("sdk-content")


@app.tool
def image() -> Image:
    """A PNG image."""
    return Image(PNG)


@app.tool
def audio() -> Audio:
    """A WAV sound."""
    return Audio(WAV)


@app.tool
def mixed() -> list[str | Image | Audio | File | ResourceLink | dict[str, int]]:
    """Every kind of content at once."""
    return [
        "caption",
        Image(PNG),
        Audio(WAV),
        File("name,n\nada,1\n", name="t.csv"),
        File(b"\x00\xff", name="z.bin"),
        ResourceLink("https://example.com/r.pdf", "r.pdf", mime_type="application/pdf"),
        {"n": 1},
    ]


@app.tool
async def chatty(ctx: Context) -> str:
    """Log at four levels, then answer."""
    await ctx.debug("d")
    await ctx.info("i", step=1)
    await ctx.warning("w")
    await ctx.error("e", code=7)
    return "done"


Logged = list[types.LoggingMessageNotificationParams]


@asynccontextmanager
async def connected(mode: str, logs: Logged, log_level: str | None = None) -> AsyncIterator[Any]:
    """Serve ``app`` and yield an SDK object with ``call_tool``; logs land in ``logs``."""

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            transport = WebSocketTransport(server.url)
            if mode == "session":
                async with open_session(transport, logging_callback=on_log) as session:
                    await session.initialize()
                    yield session
            else:
                async with open_client(
                    transport, mode=mode, logging_callback=on_log, log_level=log_level
                ) as client:
                    yield client


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each of the SDK's ways to connect."""
    value: str = request.param
    return value


async def test_image_and_audio_arrive_as_base64_blocks(mode: str) -> None:
    async with connected(mode, []) as api:
        (picture,) = (await api.call_tool("image", {})).content
        (sound,) = (await api.call_tool("audio", {})).content
    assert isinstance(picture, types.ImageContent)
    assert (base64.b64decode(picture.data), picture.mime_type) == (PNG, "image/png")
    assert isinstance(sound, types.AudioContent)
    assert (base64.b64decode(sound.data), sound.mime_type) == (WAV, "audio/wav")


async def test_mixed_content_arrives_block_by_block(mode: str) -> None:
    async with connected(mode, []) as api:
        result = await api.call_tool("mixed", {})
    assert result.is_error is False
    assert result.structured_content is None
    caption, picture, sound, text_file, blob_file, link, data = result.content
    assert isinstance(caption, types.TextContent) and caption.text == "caption"
    assert isinstance(picture, types.ImageContent)
    assert isinstance(sound, types.AudioContent)
    assert isinstance(text_file, types.EmbeddedResource)
    assert isinstance(text_file.resource, types.TextResourceContents)
    assert text_file.resource.text == "name,n\nada,1\n"
    assert text_file.resource.mime_type == "text/csv"
    assert isinstance(blob_file, types.EmbeddedResource)
    assert isinstance(blob_file.resource, types.BlobResourceContents)
    assert base64.b64decode(blob_file.resource.blob) == b"\x00\xff"
    assert isinstance(link, types.ResourceLink)
    assert (str(link.uri), link.name, link.mime_type) == (
        "https://example.com/r.pdf",
        "r.pdf",
        "application/pdf",
    )
    assert isinstance(data, types.TextContent) and data.text == '{"n":1}'


async def test_content_tools_publish_no_output_schema(mode: str) -> None:
    async with connected(mode, []) as api:
        tools = {tool.name: tool for tool in (await api.list_tools()).tools}
    assert all(tools[name].output_schema is None for name in ("image", "audio", "mixed"))


async def test_log_messages_reach_the_logging_callback(mode: str) -> None:
    logs: Logged = []
    async with connected(mode, logs, log_level="warning") as api:
        if mode in ("session", "legacy"):
            # The handshake era sends every level until the client raises it.
            assert (await api.call_tool("chatty", {})).content[0].text == "done"
            assert [log.level for log in logs] == ["debug", "info", "warning", "error"]
            logs.clear()
            with warnings.catch_warnings():
                # The SDK warns that 2026-07-28 deprecates logging; this is the handshake era.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await api.set_logging_level("warning")
        await api.call_tool("chatty", {})
    assert [(log.level, log.logger, log.data) for log in logs] == [
        ("warning", "chatty", "w"),
        ("error", "chatty", {"message": "e", "code": 7}),
    ]


@pytest.mark.parametrize("mode", ["auto", "2026-07-28"])
async def test_a_modern_client_that_opts_in_to_nothing_gets_no_logs(mode: str) -> None:
    logs: Logged = []
    async with connected(mode, logs) as api:
        assert (await api.call_tool("chatty", {})).content[0].text == "done"
    assert logs == []
