"""Registering tools: the decorator, add_tool(), and mistakes caught at registration."""

from __future__ import annotations

from typing import Any

import pytest

from iccm_network import App, Context, ToolDefinitionError


def test_decorator_registers_and_returns_the_function_unchanged() -> None:
    app = App("t")

    @app.tool
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    assert double(4) == 8
    assert list(app.tools) == ["double"]
    assert app.tools["double"].fn is double


def test_decorator_with_options_sets_name_description_title_timeout_annotations() -> None:
    app = App("t")

    @app.tool(
        name="horace.echo",
        description="Echo text back",
        title="Echo",
        timeout=30,
        annotations={"readOnlyHint": True, "openWorldHint": False},
    )
    async def echo(text: str) -> str:
        return text

    tool = app.tools["horace.echo"]
    assert tool.description == "Echo text back"
    assert tool.title == "Echo"
    assert tool.timeout == 30.0
    assert tool.annotations == {"readOnlyHint": True, "openWorldHint": False}
    assert tool.is_async


def test_docstring_gives_the_description_and_parameter_descriptions() -> None:
    app = App("t")

    @app.tool
    def get_file_info(file_id: str, include_versions: bool = False) -> dict[str, Any]:
        """Get detailed metadata for a specific file.

        Args:
            file_id: The file's id.
            include_versions: Also return the version history.
        """
        return {}

    tool = app.tools["get_file_info"]
    assert tool.description.startswith("Get detailed metadata for a specific file.")
    assert tool.input_schema["properties"] == {
        "file_id": {"type": "string", "description": "The file's id."},
        "include_versions": {
            "type": "boolean",
            "default": False,
            "description": "Also return the version history.",
        },
    }
    assert tool.input_schema["required"] == ["file_id"]
    assert tool.input_schema["additionalProperties"] is False


def test_add_tool_uses_an_explicit_input_schema_as_is() -> None:
    app = App("t")
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

    def search(**arguments: Any) -> list[str]:
        return [arguments["q"]]

    tool = app.add_tool(search, name="search", description="Search", input_schema=schema)
    assert tool.input_schema == schema
    assert tool.prepare({"q": "x"}) == {"q": "x"}


def test_context_parameter_is_left_out_of_the_schema() -> None:
    app = App("t")

    @app.tool
    async def long_job(steps: int, ctx: Context) -> str:
        return "ok"

    tool = app.tools["long_job"]
    assert list(tool.input_schema["properties"]) == ["steps"]
    assert tool.context_parameter == "ctx"


def test_duplicate_names_fail_at_registration_naming_the_first_function() -> None:
    app = App("t")

    @app.tool
    def ping() -> str:
        return "pong"

    with pytest.raises(ToolDefinitionError, match="already registered by .*ping"):
        app.add_tool(lambda: "x", name="ping")


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "slash/name", "ünï"])
def test_names_outside_the_mcp_rule_fail_at_registration(name: str) -> None:
    with pytest.raises(ToolDefinitionError, match="invalid name"):
        App("t").add_tool(lambda: None, name=name)


def test_an_unsupported_annotation_fails_at_registration_naming_function_and_parameter() -> None:
    app = App("t")

    def upload(blob: bytes) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"upload.*blob"):
        app.add_tool(upload)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"annotations": {"readOnly": True}}, "unknown tool annotation"),
        ({"annotations": {"readOnlyHint": "yes"}}, "must be a bool"),
        ({"input_schema": {"type": "array"}}, "inputSchema"),
        ({"input_schema": {"type": "object", "properties": 3}}, "invalid inputSchema"),
    ],
)
def test_bad_options_fail_at_registration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        App("t").add_tool(lambda: None, name="x", **options)


def test_a_bad_setting_fails_when_the_app_is_created() -> None:
    with pytest.raises(ValueError, match="port"):
        App("t", port=70000)


def test_settings_come_from_arguments_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_PORT", "9001")
    monkeypatch.setenv("MCP_HOST", "127.0.0.1")
    app = App("t", port=9002)
    assert app.settings().port == 9002
    assert app.settings().host == "127.0.0.1"
    assert app.settings(port=9003).port == 9003
    assert App("t").settings().port == 9001


def test_a_bad_environment_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_MAX_MESSAGE_SIZE", "lots")
    with pytest.raises(ValueError, match="MCP_MAX_MESSAGE_SIZE"):
        App("t").settings()


def test_the_shutdown_close_code_is_1001_or_1012(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_SHUTDOWN_CLOSE_CODE", "1012")
    assert App("t").settings().shutdown_close_code == 1012
    with pytest.raises(ValueError, match="shutdown_close_code"):
        App("t", shutdown_close_code=1000)


def test_an_unknown_log_level_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="MCP_LOG_LEVEL.*unknown log level"):
        App("t").settings()
    with pytest.raises(ValueError, match="unknown log level"):
        App("t", log_level="LOUD")
