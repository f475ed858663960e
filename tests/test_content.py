"""Rich tool results: Image, Audio, File, ResourceLink and mixed lists.

The pure core first (content blocks, registration checks, result shaping),
then a real server on a loopback socket with the library's own client.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import struct
import zlib
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any

import pytest

from iccm_network import App, Audio, File, Image, MCPClient, ResourceLink, ToolDefinitionError
from iccm_network.content import ContentError, content_block, content_value
from iccm_network.protocol.client_results import decode_result
from iccm_network.protocol.outcomes import Raised, Returned
from iccm_network.protocol.results import outcome_result, success_result
from iccm_network.protocol.versions import features
from iccm_network.tools.routes import compile_tool

TIMEOUT = 10.0
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "
LATEST = features("2025-11-25")

_spec = importlib.util.spec_from_file_location(
    "diagram_example", Path(__file__).parents[1] / "examples" / "diagram.py"
)
assert _spec is not None and _spec.loader is not None
diagram = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagram)


def bounded(awaitable: Awaitable[Any]) -> Awaitable[Any]:
    return asyncio.wait_for(awaitable, TIMEOUT)


# -- the content objects ---------------------------------------------------------


def test_image_bytes_become_a_base64_image_block() -> None:
    block = content_block(Image(PNG))
    assert block == {
        "type": "image",
        "data": base64.b64encode(PNG).decode(),
        "mimeType": "image/png",
    }


def test_the_mime_type_comes_from_the_argument_then_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"not really a jpeg")
    assert Image(path=tmp_path / "photo.jpg").mime_type == "image/jpeg"
    assert Image(path=tmp_path / "photo.jpg", mime_type="image/webp").mime_type == "image/webp"
    assert Audio(WAV).mime_type == "audio/wav"
    assert Image(b"GIF89a...").mime_type == "image/gif"


def test_a_missing_file_fails_with_a_readable_message(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match=r"Image: cannot read .*nope\.png.*No such file"):
        Image(path=tmp_path / "nope.png")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: Image(b"plain bytes"), "unknown type"),
        (lambda: Image(PNG, mime_type="audio/wav"), "not an image/ type"),
        (lambda: Audio(PNG), "not an audio/ type"),
        (lambda: Image(PNG, mime_type="png"), "not a MIME type"),
        (lambda: Image(), "either data= or path="),
        (lambda: Image("text"), "data must be bytes"),  # type: ignore[arg-type]
        (lambda: ResourceLink("no-scheme", "x"), "not a URI"),
        (lambda: File(3), "data must be str or bytes"),  # type: ignore[arg-type]
    ],
)
def test_bad_content_is_refused_naming_the_problem(make: Any, problem: str) -> None:
    with pytest.raises(ContentError, match=problem):
        make()


def test_a_textual_file_is_text_and_a_binary_one_a_blob(tmp_path: Path) -> None:
    assert content_block(File("a,b\n1,2\n", name="t.csv")) == {
        "type": "resource",
        "resource": {"uri": "file:///t.csv", "mimeType": "text/csv", "text": "a,b\n1,2\n"},
    }
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7 \xff")
    block = content_block(File(path=tmp_path / "doc.pdf"))
    assert block["resource"] == {
        "uri": (tmp_path / "doc.pdf").resolve().as_uri(),
        "mimeType": "application/pdf",
        "blob": base64.b64encode(b"%PDF-1.7 \xff").decode(),
    }
    # Declared textual but not UTF-8: sent as bytes, never mangled.
    odd = File(b"\xff\xfe", mime_type="text/plain", uri="mem://odd")
    assert content_block(odd)["resource"]["blob"] == "//4="


def test_a_resource_link_block_carries_only_what_was_given() -> None:
    link = ResourceLink("file:///r.txt", "r", mime_type="text/plain", size=3)
    assert content_block(link) == {
        "type": "resource_link",
        "uri": "file:///r.txt",
        "name": "r",
        "mimeType": "text/plain",
        "size": 3,
    }


def test_older_revisions_get_the_nearest_block_they_know() -> None:
    old = features("2024-11-05")
    audio = content_block(Audio(WAV), old)
    assert audio["type"] == "resource" and audio["resource"]["mimeType"] == "audio/wav"
    assert content_block(Audio(WAV), features("2025-03-26"))["type"] == "audio"
    assert content_block(ResourceLink("file:///r", "r"), old) == {
        "type": "text",
        "text": "r: file:///r",
    }


@pytest.mark.parametrize(
    "value",
    [
        Image(PNG),
        Audio(WAV),
        File("hello", name="a.txt"),
        File(b"\x00\x01", uri="mem://blob"),
        ResourceLink("https://example.com/x", "x", title="X", description="an x"),
    ],
)
def test_a_block_reads_back_as_the_same_object(value: Any) -> None:
    assert content_value(content_block(value)) == value


# -- registration ------------------------------------------------------------------


def image_tool() -> Image:
    return Image(PNG)


def mixed_tool() -> list[str | Image | dict[str, int]]:
    return []


async def optional_tool() -> Annotated[Image | None, "maybe"]:
    return None


@pytest.mark.parametrize("fn", [image_tool, mixed_tool, optional_tool])
def test_content_return_annotations_publish_no_output_schema(fn: Any) -> None:
    tool = compile_tool(fn)
    assert tool.returns_content
    assert tool.output_schema is None
    assert "outputSchema" not in tool.definition(LATEST)


def nested_in_dict() -> dict[str, Image]:
    return {}


def nested_in_list() -> list[list[Audio]]:
    return []


def nested_in_tuple() -> tuple[File, int]:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [nested_in_dict, nested_in_list, nested_in_tuple])
def test_content_that_could_never_be_sent_is_refused_at_registration(fn: Any) -> None:
    with pytest.raises(ToolDefinitionError, match="can be returned alone, in a union or in a list"):
        compile_tool(fn)


def test_a_tool_without_a_docstring_gets_its_name_as_description() -> None:
    def getWeather_now() -> str:  # noqa: N802 - the name is the point
        return ""

    assert compile_tool(getWeather_now).description == "Get weather now"
    assert compile_tool(lambda: "", name="x.y-z").description == "X y z"


# -- result shaping ------------------------------------------------------------------


def test_a_mixed_list_becomes_one_block_per_item_in_order() -> None:
    tool = compile_tool(mixed_tool)
    value = ["caption", Image(PNG), {"n": 1}, 7, ResourceLink("file:///a", "a")]
    result = success_result(tool, value, LATEST)
    assert [block["type"] for block in result["content"]] == [
        "text",
        "image",
        "text",
        "text",
        "resource_link",
    ]
    assert result["content"][2]["text"] == '{"n":1}'
    assert result["content"][3]["text"] == "7"
    assert "structuredContent" not in result
    assert result["isError"] is False


def test_an_undeclared_content_return_is_still_content() -> None:
    def untyped():  # type: ignore[no-untyped-def]
        return Image(PNG)

    result = success_result(compile_tool(untyped), Image(PNG), LATEST)
    assert result["content"][0]["type"] == "image"
    assert "structuredContent" not in result


def test_a_content_error_is_a_tool_error_the_caller_reads() -> None:
    tool = compile_tool(image_tool)
    result = outcome_result(tool, Raised(ContentError("Image: cannot read 'x.png'")), LATEST)
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "Image: cannot read 'x.png'"}]


def test_modern_content_results_carry_their_result_type() -> None:
    tool = compile_tool(image_tool)
    result = outcome_result(tool, Returned(Image(PNG)), features("2026-07-28"))
    assert result["resultType"] == "complete"


def test_the_client_rule_typed_objects_for_rich_content() -> None:
    def result(*blocks: Any) -> dict[str, Any]:
        return {"content": [content_block(block) for block in blocks], "isError": False}

    assert decode_result(result(Image(PNG))) == Image(PNG)
    assert decode_result(result("caption", Image(PNG))) == ["caption", Image(PNG)]
    assert decode_result(result("42")) == 42  # a lone text block is decoded as before
    unknown = {"type": "hologram", "data": "x"}
    assert decode_result({"content": [unknown], "isError": False}) == unknown


# -- on a real socket ----------------------------------------------------------------

app = App("content")


@app.tool
def picture(kind: str, path: str = "") -> Image | Audio | File | ResourceLink:
    """Return one kind of content.

    Args:
        kind: image, audio, file, link or missing.
        path: A file to read, for missing.
    """
    if kind == "image":
        return Image(PNG)
    if kind == "audio":
        return Audio(WAV)
    if kind == "file":
        return File('{"a": 1}', name="a.json")
    if kind == "link":
        return ResourceLink("file:///big.bin", "big.bin", size=10_000_000)
    return Image(path=path)


@app.tool
def everything() -> list[Any]:
    """Mixed content."""
    return ["caption", Image(PNG), Audio(WAV), File(b"\x00", uri="mem://z"), {"k": [1, 2]}]


async def test_each_content_kind_reaches_the_client_as_its_object() -> None:
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:
            assert await bounded(client.call("picture", {"kind": "image"})) == Image(PNG)
            assert await bounded(client.call("picture", {"kind": "audio"})) == Audio(WAV)
            file = await bounded(client.call("picture", {"kind": "file"}))
            assert isinstance(file, File)
            assert (file.text, file.mime_type, file.uri) == (
                '{"a": 1}',
                "application/json",
                "file:///a.json",
            )
            link = await bounded(client.call("picture", {"kind": "link"}))
            assert link == ResourceLink("file:///big.bin", "big.bin", size=10_000_000)
            mixed = await bounded(client.call("everything"))
            assert mixed == [
                "caption",
                Image(PNG),
                Audio(WAV),
                File(b"\x00", uri="mem://z"),
                '{"k":[1,2]}',
            ]


async def test_a_missing_file_is_a_tool_error_naming_it(tmp_path: Path) -> None:
    from iccm_network import ToolError

    missing = tmp_path / "gone.png"
    async with app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:
            with pytest.raises(ToolError, match=r"Image: cannot read .*gone\.png"):
                await bounded(client.call("picture", {"kind": "missing", "path": str(missing)}))


async def test_the_diagram_example_draws_a_valid_png() -> None:
    async with diagram.app.serving(host="127.0.0.1", port=0) as server:
        async with MCPClient(server.url) as client:
            image = await bounded(client.call("bar_chart", {"values": [1, 3, 2], "height": 12}))
            report = await bounded(client.call("chart_report", {"values": [2, 4]}))
    assert isinstance(image, Image) and image.mime_type == "image/png"
    width, height = struct.unpack(">II", image.data[16:24])
    assert (width, height) == (24, 12)
    # Decompress the pixels: a 3-bar chart's tallest (middle) bar reaches the top row.
    start = image.data.index(b"IDAT") + 4
    length = struct.unpack(">I", image.data[start - 8 : start - 4])[0]
    raw = zlib.decompress(image.data[start : start + length])
    top_row = raw[1 : 1 + width * 3]
    assert top_row[8 * 3 : 8 * 3 + 3] == bytes(diagram.BAR)
    assert top_row[0:3] == bytes(diagram.BACKGROUND)
    caption, chart, csv = report
    assert caption == "2 bars, largest 4"
    assert isinstance(chart, Image)
    assert isinstance(csv, File) and csv.text == "index,value\n0,2\n1,4\n"
