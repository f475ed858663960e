"""``iccm-network resources``, ``read`` and ``prompts`` against a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from catalog_app import build_app
from helpers_client import run_main

from iccm_network.transport.websocket import Server


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with build_app().serving(host="127.0.0.1", port=0) as running:
        yield running


async def test_resources_lists_fixed_resources_then_templates(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["resources", server.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["URI", "NAME", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == [
        "config://app",
        "note://{name}",
        "blob://{size}",
        "tree://{+path}",
    ]


async def test_read_prints_text_and_json_on_request(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["read", server.url, "note://todo"]) == 0
    assert capsys.readouterr().out == "buy milk\n"
    assert await run_main(["read", server.url, "blob://2", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry == {"uri": "blob://2", "mimeType": "application/octet-stream", "blob": "AAE="}


async def test_read_of_an_unknown_resource_exits_1_with_the_code(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["read", server.url, "note://none"]) == 1
    assert "error -32002" in capsys.readouterr().err


async def test_prompts_lists_arguments_marking_optional_ones(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_main(["prompts", server.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("paint") and "colour, times?, mood?" in lines[1]
    assert lines[2].startswith("chat") and "topic" in lines[2]
