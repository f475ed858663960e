"""``examples/conformance_app.py`` answers what the conformance suite asks, without Node.

CI runs the official suite against it (``.ci/conformance.py``); these tests
ask the same questions over Streamable HTTP with ``MCPClient``, so a change
that breaks a scenario fails the ordinary test run too, on any machine.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from iccm_network import App, Audio, File, Image, MCPClient, ToolError

TIMEOUT = 10.0
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "conformance_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_conformance_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # type hints are resolved in the module's namespace
    spec.loader.exec_module(module)
    return module


MODULE = load_example()


@asynccontextmanager
async def client(**options: Any) -> AsyncIterator[MCPClient]:
    app = MODULE.app
    assert isinstance(app, App)
    with anyio.fail_after(TIMEOUT):
        async with app.serving(host="127.0.0.1", port=0) as server:
            url = f"http://127.0.0.1:{server.port}/mcp"
            async with MCPClient(url, protocol_version="2025-11-25", **options) as mcp:
                yield mcp


def test_the_png_and_wav_are_real_files() -> None:
    png = MODULE.PNG
    assert (
        png.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in png and png.endswith(b"IEND\xaeB`\x82")
    )
    with wave.open(io.BytesIO(MODULE.WAV)) as audio:
        assert (audio.getnchannels(), audio.getframerate(), audio.getnframes()) == (1, 8000, 800)


async def test_every_tool_has_a_description_and_the_2020_12_schema_is_published_as_written() -> (
    None
):
    async with client() as mcp:
        tools = {tool["name"]: tool for tool in await mcp.list_tools()}
    assert all(tool["description"] for tool in tools.values())
    schema = tools["json_schema_2020_12_tool"]["inputSchema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "address" in schema["$defs"] and schema["additionalProperties"] is False


async def test_the_tools_return_text_image_audio_embedded_and_mixed_content() -> None:
    async with client() as mcp:
        text = await mcp.call("test_simple_text")
        image = await mcp.call("test_image_content")
        audio = await mcp.call("test_audio_content")
        embedded = await mcp.call("test_embedded_resource")
        mixed = await mcp.call("test_multiple_content_types")
        echoed = await mcp.call(
            "json_schema_2020_12_tool", {"name": "Ada", "address": {"city": "London"}}
        )
        with pytest.raises(ToolError, match="intentionally"):
            await mcp.call("test_error_handling")
    assert text == "This is a simple text response for testing."
    assert image == Image(MODULE.PNG, mime_type="image/png")
    assert audio == Audio(MODULE.WAV, mime_type="audio/wav")
    assert isinstance(embedded, File) and embedded.uri == "test://embedded-resource"
    assert [type(part) for part in mixed] == [str, Image, File]
    assert json.loads(mixed[2].data) == {"test": "data", "value": 123}
    assert echoed == {"name": "Ada", "address": {"city": "London"}}


async def test_a_tool_logs_three_messages_and_reports_progress() -> None:
    logs: list[tuple[str, Any]] = []
    steps: list[float] = []
    async with client(on_log=lambda level, data, logger: logs.append((level, data))) as mcp:
        await mcp.set_log_level("debug")
        await mcp.call("test_tool_with_logging")
        await mcp.call(
            "test_tool_with_progress", on_progress=lambda done, total, note: steps.append(done)
        )
    assert logs == [
        ("info", "Tool execution started"),
        ("info", "Tool processing data"),
        ("info", "Tool execution completed"),
    ]
    assert steps == [0, 50, 100]


async def test_resources_read_as_text_blob_and_from_the_template() -> None:
    async with client() as mcp:
        listed = {resource["uri"] for resource in await mcp.list_resources()}
        (text,) = await mcp.read_resource("test://static-text")
        (blob,) = await mcp.read_resource("test://static-binary")
        (data,) = await mcp.read_resource("test://template/123/data")
        await mcp.subscribe_resource("test://watched-resource", lambda uri: None)
        await mcp.unsubscribe_resource("test://watched-resource")
    assert listed == {"test://static-text", "test://static-binary", "test://watched-resource"}
    assert text["mimeType"] == "text/plain" and text["text"]
    assert base64.b64decode(blob["blob"]) == MODULE.PNG
    assert data["uri"] == "test://template/123/data"
    assert json.loads(data["text"])["id"] == "123"


async def test_prompts_carry_arguments_an_embedded_resource_and_an_image() -> None:
    async with client() as mcp:
        names = [prompt["name"] for prompt in await mcp.list_prompts()]
        simple = await mcp.get_prompt("test_simple_prompt")
        with_args = await mcp.get_prompt(
            "test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"}
        )
        embedded = await mcp.get_prompt(
            "test_prompt_with_embedded_resource", {"resourceUri": "test://example-resource"}
        )
        pictured = await mcp.get_prompt("test_prompt_with_image")
        completed = await mcp.complete("arg1", "te", prompt="test_prompt_with_arguments")
    assert len(names) == 4
    assert simple["messages"][0]["content"]["text"] == "This is a simple prompt for testing."
    assert with_args["messages"][0]["content"]["text"] == (
        "Prompt with arguments: arg1='hello', arg2='world'"
    )
    resource = embedded["messages"][0]["content"]
    assert resource["type"] == "resource"
    assert resource["resource"]["uri"] == "test://example-resource"
    assert pictured["messages"][0]["content"]["type"] == "image"
    assert completed["values"] == ["test", "testing"]
