"""Everything the official MCP conformance suite's server scenarios call, over Streamable HTTP.

``.ci/run`` starts it bound to loopback and runs the suite's server scenarios
(listed, with the few left out and why, in ``.ci/conformance-scenarios.txt``)
against ``http://127.0.0.1:PORT/mcp``::

    MCP_HOST=127.0.0.1 MCP_PORT=8765 python examples/conformance_app.py

It doubles as a tour of the server surface: text, image, audio, embedded and
mixed tool results, log messages and progress from a tool, a hand-written
JSON Schema 2020-12 ``inputSchema``, fixed and templated resources with
subscriptions, prompts with arguments and rich content, and completion.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import wave
import zlib
from typing import Any

from iccm_network import App, Audio, Context, File, Image, Message, ToolError

app = App("iccm-conformance", version="1.0.0")


def red_pixel_png() -> bytes:
    """A 1x1 red PNG, built with the standard library.

    Returns:
        The PNG file's bytes.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte, then one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def silence_wav(frames: int = 800) -> bytes:
    """A tenth of a second of 8 kHz mono silence, as a WAV file.

    Args:
        frames: How many 16-bit samples.

    Returns:
        The WAV file's bytes.
    """
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


PNG = red_pixel_png()
WAV = silence_wav()


# -- tools -------------------------------------------------------------------


@app.tool
def test_simple_text() -> str:
    """Return a fixed text."""
    return "This is a simple text response for testing."


@app.tool
def test_image_content() -> Image:
    """Return a 1x1 red PNG."""
    return Image(PNG)


@app.tool
def test_audio_content() -> Audio:
    """Return a short silent WAV."""
    return Audio(WAV, mime_type="audio/wav")


@app.tool
def test_embedded_resource() -> File:
    """Return a text document as an embedded resource."""
    return File(
        "This is an embedded resource content.",
        uri="test://embedded-resource",
        mime_type="text/plain",
    )


@app.tool
def test_multiple_content_types() -> list[str | Image | File]:
    """Return text, an image and an embedded JSON document, in that order."""
    document = json.dumps({"test": "data", "value": 123})
    return [
        "Multiple content types test:",
        Image(PNG),
        File(document, uri="test://mixed-content-resource", mime_type="application/json"),
    ]


@app.tool
async def test_tool_with_logging(ctx: Context) -> str:
    """Send three log messages, a little apart, then finish.

    Args:
        ctx: The call's context.
    """
    await ctx.info("Tool execution started")
    await asyncio.sleep(0.05)
    await ctx.info("Tool processing data")
    await asyncio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Logging test completed"


@app.tool
def test_error_handling() -> str:
    """Always fail, as a tool error."""
    raise ToolError("This tool intentionally returns an error for testing")


@app.tool
async def test_tool_with_progress(ctx: Context) -> str:
    """Report progress three times, then finish.

    Args:
        ctx: The call's context.
    """
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"at {step}%")
    return "Progress test completed"


def json_schema_2020_12_tool(name: str | None = None, address: dict[str, Any] | None = None) -> str:
    """Echo a name and an address, described by a hand-written 2020-12 schema.

    Args:
        name: A person's name.
        address: Their street and city.
    """
    return json.dumps({"name": name, "address": address})


# A hand-written schema is published as written: $schema, $defs and $ref included.
app.add_tool(
    json_schema_2020_12_tool,
    description="Tool with JSON Schema 2020-12 features",
    input_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    },
)


# -- resources ---------------------------------------------------------------


@app.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    """A fixed text resource."""
    return "This is the content of the static text resource."


@app.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A fixed binary resource: a 1x1 red PNG."""
    return PNG


@app.resource("test://watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients may subscribe to."""
    return "Watched resource content"


@app.resource("test://template/{id}/data", mime_type="application/json")
def template_data(id: str) -> dict[str, str]:
    """Data for one id, from a URI template.

    Args:
        id: The id in the URI.
    """
    return {"id": id, "templateTest": "true", "data": f"Data for ID: {id}"}


# -- prompts -----------------------------------------------------------------


@app.prompt
def test_simple_prompt() -> str:
    """A prompt without arguments."""
    return "This is a simple prompt for testing."


@app.prompt
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt that quotes its two arguments.

    Args:
        arg1: First test argument.
        arg2: Second test argument.
    """
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


# The suite names the argument resourceUri, so the parameter is spelt that way.
@app.prompt
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Message]:
    """A prompt that embeds a resource, then asks about it.

    Args:
        resourceUri: URI of the resource to embed.
    """
    document = File(
        "Embedded resource content for testing.", uri=resourceUri, mime_type="text/plain"
    )
    return [Message(document), Message("Please process the embedded resource above.")]


@app.prompt
def test_prompt_with_image() -> list[Message]:
    """A prompt that shows an image, then asks about it."""
    return [Message(Image(PNG)), Message("Please analyze the image above.")]


@app.complete("test_prompt_with_arguments", "arg1")
def complete_arg1(value: str) -> list[str]:
    """Suggest values for ``arg1`` that start with what was typed.

    Args:
        value: The partial value.
    """
    return [
        word for word in ("paris", "park", "party", "test", "testing") if word.startswith(value)
    ]


if __name__ == "__main__":
    app.run()
