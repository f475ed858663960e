"""The TypeScript MCP SDK client (``@modelcontextprotocol/sdk``) over WebSocket.

``.ci/run`` installs the pinned SDK into ``.ci/ts-client/node_modules`` and sets
``ICCM_REQUIRE_NODE=1``, so in CI this test runs or fails. Locally it is skipped,
with the reason, when Node or the package is missing; install them with
``npm ci --prefix .ci/ts-client``.

The SDK validates every message with its schemas (zod), so a passing run also
means each content block, log message, list change, resource, prompt,
completion and resource update had the shape it expects.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import pytest

from iccm_network import App, Audio, Context, File, Image, Message, ResourceLink

TIMEOUT = 60.0
"""Seconds for the whole Node run; it takes about one when all is well."""

ROOT = Path(__file__).parents[1]
SDK = ROOT / ".ci" / "ts-client" / "node_modules" / "@modelcontextprotocol" / "sdk"
SCRIPT = Path(__file__).with_name("ts_sdk_client.mjs")
CATALOG_SCRIPT = Path(__file__).with_name("ts_sdk_catalog.mjs")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(16))
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(8)


def node_or_skip() -> str:
    """The ``node`` executable; a skip (or, in CI, a failure) when it or the SDK is absent."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (SDK / "package.json").is_file():
        problem = f"the TypeScript SDK is not installed ({SDK}); run npm ci --prefix .ci/ts-client"
    if problem is None:
        assert node is not None
        return node
    if os.environ.get("ICCM_REQUIRE_NODE") == "1":
        pytest.fail(f"ICCM_REQUIRE_NODE=1 but {problem}")
    pytest.skip(problem)


def make_app() -> App:
    app = App("ts-content")

    @app.tool
    def image() -> Image:
        return Image(PNG)

    @app.tool
    def audio() -> Audio:
        """A WAV sound."""
        return Audio(WAV)

    @app.tool
    def mixed() -> list[str | Image | File | ResourceLink]:
        """Every kind of content at once."""
        return [
            "caption",
            Image(PNG),
            File("a,b\n", name="t.csv"),
            File(b"\x00\xff", name="z.bin"),
            ResourceLink("https://example.com/r.pdf", "r.pdf", mime_type="application/pdf"),
        ]

    @app.tool
    def missing_file() -> Image:
        """Read a file that is not there."""
        return Image(path=ROOT / "no-such-diagram.png")

    @app.tool
    async def chatty(ctx: Context) -> str:
        """Log at four levels."""
        await ctx.debug("d")
        await ctx.info("i")
        await ctx.warning("w")
        await ctx.error("e", code=7)
        return "done"

    @app.tool
    def add_tool() -> str:
        """Register one more tool while serving."""

        def later() -> str:
            return "later"

        app.add_tool(later)
        return "added"

    return app


async def run_script(script: Path, app: App) -> dict[str, Any]:
    """Serve ``app`` on loopback, run a Node script against it, and parse its JSON report."""
    node = node_or_skip()
    async with app.serving(host="127.0.0.1", port=0) as server:
        process = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",  # Node 20 keeps its WebSocket client behind a flag
            str(script),
            str(SDK),
            server.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")
    report: dict[str, Any] = json.loads(out)
    return report


async def test_the_typescript_sdk_reads_content_logs_and_list_changes() -> None:
    report = await run_script(SCRIPT, make_app())

    assert report["capabilities"] == {"tools": {"listChanged": True}, "logging": {}}
    tools = {tool["name"]: tool for tool in report["tools"]}
    assert tools["image"]["description"] == "Image"  # no docstring: the name, humanised
    assert not any(tool["hasOutputSchema"] for tool in tools.values() if tool["name"] != "add_tool")

    (picture,) = report["image"]["content"]
    assert picture == {
        "type": "image",
        "data": base64.b64encode(PNG).decode(),
        "mimeType": "image/png",
    }
    (sound,) = report["audio"]["content"]
    assert (sound["type"], base64.b64decode(sound["data"])) == ("audio", WAV)
    caption, chart, text_file, blob_file, link = report["mixed"]["content"]
    assert caption == {"type": "text", "text": "caption"}
    assert chart["type"] == "image"
    assert text_file["resource"] == {
        "uri": "file:///t.csv",
        "mimeType": "text/csv",
        "text": "a,b\n",
    }
    assert base64.b64decode(blob_file["resource"]["blob"]) == b"\x00\xff"
    assert link == {
        "type": "resource_link",
        "uri": "https://example.com/r.pdf",
        "name": "r.pdf",
        "mimeType": "application/pdf",
    }
    missing = report["missing"]
    assert missing["isError"] is True
    assert "Image: cannot read" in missing["content"][0]["text"]
    assert "no-such-diagram.png" in missing["content"][0]["text"]

    assert [(log["level"], log["data"]) for log in report["logs"]] == [
        ("warning", "w"),
        ("error", {"message": "e", "code": 7}),
    ]
    assert report["listChanged"] == 1
    assert "later" in report["toolsAfter"]


def make_catalog_app() -> App:
    app = App("ts-catalog")

    @app.resource("config://app", mime_type="application/json")
    def config() -> dict[str, int]:
        """The settings."""
        return {"retries": 3}

    @app.resource("blob://logo", mime_type="image/png")
    def logo() -> bytes:
        """The logo."""
        return PNG

    @app.resource("note://{name}")
    def note(name: Literal["todo", "ideas"]) -> str:
        """One note.

        Args:
            name: Which note.
        """
        return f"the {name} note"

    @app.prompt
    def review(path: str, focus: Literal["bugs", "style"] = "bugs") -> list[Message]:
        """Ask for a review.

        Args:
            path: The file.
            focus: What to look for.
        """
        return [
            Message(f"Review {path} for {focus}."),
            Message(Image(PNG)),
            Message(File("print(1)\n", uri="file:///main.py", mime_type="text/x-python")),
            Message("I will.", role="assistant"),
        ]

    @app.tool
    async def touch(uri: str) -> str:
        """Tell subscribers a resource changed.

        Args:
            uri: The resource.
        """
        await app.notify_resource_updated(uri)
        return "touched"

    return app


async def test_the_typescript_sdk_reads_resources_gets_prompts_and_completes() -> None:
    report = await run_script(CATALOG_SCRIPT, make_catalog_app())

    capabilities = report["capabilities"]
    assert capabilities["resources"]["subscribe"] is True
    assert "prompts" in capabilities and "completions" in capabilities
    assert [(r["uri"], r["name"], r["mimeType"]) for r in report["resources"]] == [
        ("config://app", "config", "application/json"),
        ("blob://logo", "logo", "image/png"),
    ]
    assert [t["uriTemplate"] for t in report["templates"]] == ["note://{name}"]
    (config,) = report["config"]["contents"]
    assert (config["uri"], json.loads(config["text"])) == ("config://app", {"retries": 3})
    (logo,) = report["logo"]["contents"]
    assert base64.b64decode(logo["blob"]) == PNG
    (todo,) = report["note"]["contents"]
    assert (todo["uri"], todo["text"]) == ("note://todo", "the todo note")
    assert report["missing"] == -32602  # "ideas" or "todo" only: an invalid variable

    (prompt,) = report["prompts"]
    assert prompt["name"] == "review"
    assert [(a["name"], a.get("required", False)) for a in prompt["arguments"]] == [
        ("path", True),
        ("focus", False),
    ]
    text, picture, document, answer = report["review"]["messages"]
    assert text == {
        "role": "user",
        "content": {"type": "text", "text": "Review main.py for style."},
    }
    assert picture["content"]["type"] == "image"
    assert base64.b64decode(picture["content"]["data"]) == PNG
    assert document["content"]["resource"]["text"] == "print(1)\n"
    assert answer["role"] == "assistant"
    assert report["focus"]["completion"]["values"] == ["style"]
    assert report["names"]["completion"]["values"] == ["todo", "ideas"]

    # Subscribed, touched, unsubscribed, touched: one notification.
    assert report["updated"] == ["config://app"]
