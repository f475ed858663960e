"""``check_prompt`` and ``check_resource_template`` property-test string arguments."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_app import build_app

import iccm_network.catalog.table
from iccm_network.testing.check_catalog import (
    check_catalog,
    check_prompt,
    check_resource_template,
)
from iccm_network.tools.routes import Tool


def test_every_prompt_and_template_of_the_sample_app_passes() -> None:
    check_catalog(build_app(), max_examples=25)


def test_the_modern_revision_passes_too() -> None:
    check_prompt(build_app(), "paint", protocol_version="2026-07-28", max_examples=15)


def test_a_server_that_passes_strings_unconverted_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unconverted(tool: Tool, arguments: dict[str, Any], owner: str) -> dict[str, Any]:
        return dict(arguments)

    monkeypatch.setattr(iccm_network.catalog.table, "prepare_text_arguments", unconverted)
    with pytest.raises(AssertionError, match="received"):
        check_resource_template(build_app(), "blob://{size}", max_examples=25)
    with pytest.raises(AssertionError):
        check_prompt(build_app(), "paint", max_examples=25)
