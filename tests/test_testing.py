"""iccm_network.testing: schema strategies, in-memory calls, and check_app on the examples."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib.util
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings

from iccm_network import App, Context, ToolError, testing
from iccm_network._timeout import timeout as async_timeout
from iccm_network.client import MCPClient
from iccm_network.errors import InvalidParams
from iccm_network.testing import (
    LocalConnection,
    acall,
    arguments_for,
    call,
    check_app,
    check_tool,
    invalid_arguments_for,
    request,
)
from iccm_network.testing.strategies import InvalidCase, invalid_cases_for
from iccm_network.testing.strategies import _Generator as Generator
from iccm_network.tools.convert import build_converter
from iccm_network.tools.routes import Tool
from iccm_network.tools.validation import ArgumentValidator

pytest_plugins = ["iccm_network.pytest_plugin"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once, under a name its dataclasses resolve against."""
    module_name = f"iccm_examples_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


everything: App = load_example("everything").app
hello: App = load_example("hello").app


class AppWith(App):
    """An app serving replacements for some of another app's compiled tools."""

    def __init__(self, base: App, **replacements: Tool) -> None:
        super().__init__(base.name, base.version)
        self._base = base
        self._replacements = replacements

    @property
    def tools(self) -> Mapping[str, Tool]:
        return {**self._base.tools, **self._replacements}


def test_the_testing_package_exports_exactly_its_public_names() -> None:
    assert set(testing.__all__) == {
        "LocalConnection",
        "acall",
        "arequest",
        "arguments_for",
        "call",
        "check_app",
        "check_catalog",
        "check_prompt",
        "check_resource_template",
        "check_tool",
        "invalid_arguments_for",
        "request",
    }
    assert all(hasattr(testing, name) for name in testing.__all__)
    assert (call.__name__, request.__name__) == ("call", "request")


# -- check_app on the project's own examples ------------------------------------


def test_check_app_passes_on_the_hello_example_running_the_real_tools() -> None:
    check_app(hello, run_tools=True)


def test_check_app_passes_on_hello_under_the_oldest_and_the_stateless_revision() -> None:
    check_app(hello, protocol_version="2024-11-05", max_examples=20)
    check_app(hello, protocol_version="2026-07-28", max_examples=20)


@pytest.mark.parametrize("name", list(everything.tools))
def test_check_tool_passes_on_every_tool_of_the_everything_example(name: str) -> None:
    check_tool(everything, name, run_tools=True)


def test_the_everything_example_uses_every_supported_annotation() -> None:
    text = (EXAMPLES / "everything.py").read_text()
    for annotation in (
        "str",
        "int",
        "float",
        "bool",
        "None",
        "list[",
        "tuple[",
        "set[",
        "dict[str,",
        "Any",
        "Optional[",
        "Union[",
        "| None",
        "Literal[",
        "enum.Enum",
        "TypedDict",
        "Required[",
        "NotRequired[",
        "@dataclass",
        "Annotated[",
        "datetime.datetime",
        "datetime.date",
        "uuid.UUID",
        "Path",
        "TreeNode]",
    ):
        assert annotation in text, annotation


# -- check_app fails on broken tools --------------------------------------------


@dataclasses.dataclass
class Box:
    width: float
    height: float


def test_check_app_fails_when_the_converter_is_bypassed() -> None:
    app = App("boxes")

    @app.tool
    def area(box: Box, scale: float = 1.0) -> float:
        """Area of a box."""
        return box.width * box.height * scale

    broken = AppWith(app, area=dataclasses.replace(app.tools["area"], converter=None))
    with pytest.raises(AssertionError, match="the function received /box is dict"):
        check_app(broken, max_examples=20)


def test_check_app_fails_when_a_hand_written_schema_accepts_what_the_function_cannot_take() -> None:
    def repeat(word: str, times: int) -> str:
        return word[:times]

    def schema(times: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"word": {"type": "string"}, "times": {"type": times}},
            "required": ["word", "times"],
            **extra,
        }

    floats = App("floats")
    floats.add_tool(repeat, input_schema=schema("number", additionalProperties=False))
    with pytest.raises(AssertionError, match="/times is float"):
        check_app(floats, max_examples=20)
    extras = App("extras")
    extras.add_tool(repeat, input_schema=schema("integer"))
    with pytest.raises(AssertionError, match="arguments it cannot take"):
        check_app(extras, max_examples=20)
    exact = App("exact")
    exact.add_tool(repeat, input_schema=schema("integer", additionalProperties=False))
    check_app(exact, run_tools=True, max_examples=20)


def test_check_app_fails_when_invalid_arguments_reach_the_function() -> None:
    app = App("lax")

    @app.tool
    def add(a: int, b: int) -> int:
        return a + b

    tool = app.tools["add"]
    lax = dataclasses.replace(tool, validator=ArgumentValidator({"type": "object"}))
    with pytest.raises(AssertionError, match="reached the function|refused"):
        check_app(AppWith(app, add=lax), max_examples=20)


def test_check_app_fails_when_the_function_gets_the_wrong_python_type() -> None:
    app = App("dates")

    @app.tool
    def real(day: datetime.date) -> str:
        return day.isoformat()

    # A converter built for a datetime parameter delivers a datetime where the
    # function declares a date: a datetime is a date to isinstance, not to check_app.
    def wants_datetime(day: datetime.datetime) -> str:
        return day.isoformat()

    wrong = dataclasses.replace(app.tools["real"], converter=build_converter(wants_datetime))
    with pytest.raises(AssertionError, match="/day is datetime"):
        check_tool(AppWith(app, real=wrong), "real", max_examples=20)


def test_check_app_fails_when_a_tool_crashes_on_valid_input() -> None:
    app = App("crashy")

    @app.tool
    def invert(x: float) -> float:
        return 1 / x  # ZeroDivisionError on 0

    with pytest.raises(AssertionError, match="the call failed"):
        check_app(app, run_tools=True, max_examples=20)


def test_check_app_accepts_a_tool_error_as_a_deliberate_refusal() -> None:
    app = App("picky")

    @app.tool
    def positive(x: int) -> int:
        if x <= 0:
            raise ToolError("x must be positive")
        return x

    check_app(app, run_tools=True, max_examples=20)


def test_check_app_refuses_to_run_inside_an_event_loop() -> None:
    async def inside() -> None:
        check_app(hello)

    with pytest.raises(RuntimeError, match="outside an event loop"):
        asyncio.run(inside())


# -- the strategies ------------------------------------------------------------


@pytest.mark.parametrize("name", list(everything.tools))
def test_valid_strategy_needs_no_filter_for_generated_schemas(name: str) -> None:
    tool = everything.tools[name]
    # The framework's vocabulary is modelled exactly, so no filter hides a bug.
    generator = Generator(tool.input_schema)
    strategy = generator.valid(tool.input_schema)
    assert generator.exact

    @given(arguments=strategy)
    def check(arguments: dict[str, Any]) -> None:
        tool.prepare(arguments)  # raises InvalidParams if refused

    check()


@pytest.mark.parametrize("name", list(everything.tools))
def test_invalid_strategy_only_yields_arguments_the_tool_refuses(name: str) -> None:
    tool = everything.tools[name]

    @given(arguments=invalid_arguments_for(tool))
    def check(arguments: dict[str, Any]) -> None:
        with pytest.raises(InvalidParams):
            tool.prepare(arguments)

    check()


def kinds_and_paths(tool: Tool) -> tuple[set[str], set[str]]:
    """What the invalid-case strategy broke, and where, over one Hypothesis run.

    200 examples, not the profile's 50: Hypothesis mixes constants from every
    loaded module of the project into its data, so which of 50 examples go
    deep shifts whenever any module changes; 200 reach every depth tested here.
    """
    kinds: set[str] = set()
    paths: set[str] = set()

    # Deep paths (a recursive tree's child, a list inside a dict) are rare
    # draws: fifty examples missed them depending on which tests ran first.
    @settings(max_examples=200)
    @given(case=invalid_cases_for(tool))
    def collect(case: InvalidCase) -> None:
        kinds.add(case.kind)
        paths.add(case.path)

    collect()
    return kinds, paths


def test_invalid_strategy_breaks_types_requirements_extras_and_enums() -> None:
    kinds, paths = kinds_and_paths(everything.tools["choices"])
    assert kinds == {"type", "missing", "extra", "value"}
    assert {"/mode", "/color", "/priority"} <= paths
    kinds, _ = kinds_and_paths(everything.tools["stamps"])
    assert "format" in kinds


def test_invalid_strategy_reaches_nested_and_recursive_values() -> None:
    _, paths = kinds_and_paths(everything.tools["nested"])
    assert any(p.startswith("/tree/") for p in paths), paths
    assert any(p.startswith("/groups/") and p.count("/") >= 4 for p in paths), paths


def test_invalid_strategy_is_empty_when_an_open_schema_has_nothing_to_break() -> None:
    app = App("open")

    def anything(**arguments: Any) -> int:
        return len(arguments)

    app.add_tool(anything, input_schema={"type": "object"})
    assert invalid_arguments_for(app.tools["anything"]).is_empty
    check_app(app, run_tools=True, max_examples=20)  # only the valid-arguments property runs


def test_valid_strategy_sends_integers_and_floats_to_float_parameters() -> None:
    seen: set[type] = set()

    @given(arguments=arguments_for(everything.tools["scalars"]))
    def collect(arguments: dict[str, Any]) -> None:
        seen.add(type(arguments["ratio"]))

    collect()
    assert seen == {int, float}


def test_valid_strategy_covers_hand_written_keywords_through_the_validator() -> None:
    app = App("manual")
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "even": {"type": "integer", "multipleOf": 2, "minimum": 0, "maximum": 100},
        },
        "required": ["code", "even"],
        "additionalProperties": False,
    }
    app.add_tool(lambda code, even: code * even, name="manual", input_schema=schema)
    tool = app.tools["manual"]

    @given(arguments=arguments_for(tool))
    def check(arguments: dict[str, Any]) -> None:
        tool.prepare(arguments)  # raises InvalidParams if refused

    check()


# -- in-memory calls -----------------------------------------------------------


def test_call_runs_a_tool_through_the_protocol_and_returns_the_result() -> None:
    result = call(hello, "add", {"a": 2, "b": 3})
    assert result == {
        "content": [{"type": "text", "text": "5"}],
        "isError": False,
        "structuredContent": {"result": 5},
    }
    assert call(hello, "hello")["content"] == [{"type": "text", "text": "Hello, world!"}]


def test_call_raises_invalid_params_for_an_unknown_tool() -> None:
    with pytest.raises(InvalidParams, match="Unknown tool"):
        call(hello, "nope")


def test_request_returns_the_raw_reply_with_failing_paths_before_2025_11_25() -> None:
    reply = request(
        hello,
        "tools/call",
        {"name": "add", "arguments": {"a": "x"}},
        protocol_version="2024-11-05",
    )
    assert reply["error"]["code"] == -32602
    paths = {e["path"] for e in reply["error"]["data"]["errors"]}
    assert paths == {"/a", "/b"}


def test_validation_failures_are_tool_errors_from_2025_11_25() -> None:
    result = call(hello, "add", {"a": 1})
    assert result["isError"] is True
    assert "/b" in result["content"][0]["text"]


def test_stateless_revision_requests_carry_the_envelope() -> None:
    result = call(hello, "add", {"a": 1, "b": 1}, protocol_version="2026-07-28")
    assert result["resultType"] == "complete"


def test_unknown_protocol_version_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown protocol version"):
        LocalConnection(hello, protocol_version="1999-01-01")


def test_sync_call_and_request_inside_an_event_loop_say_to_await_their_async_forms() -> None:
    async def call_inside() -> None:
        call(hello, "add", {"a": 1, "b": 1})

    async def request_inside() -> None:
        request(hello, "tools/list")

    with pytest.raises(RuntimeError, match=r"call\(\) cannot run .*`await acall"):
        asyncio.run(call_inside())
    with pytest.raises(RuntimeError, match=r"request\(\) cannot run .*`await arequest"):
        asyncio.run(request_inside())


async def test_acall_and_a_connection_report_progress_and_dataclass_results() -> None:
    assert (await acall(hello, "add", {"a": 1, "b": 1}))["structuredContent"] == {"result": 2}
    connection = LocalConnection(everything)
    frames = await connection.send(
        {
            "jsonrpc": "2.0",
            "id": "p",
            "method": "tools/call",
            "params": {
                "name": "progress",
                "arguments": {"steps": 2},
                "_meta": {"progressToken": 7},
            },
        }
    )
    assert [f.get("method") for f in frames] == [
        "notifications/progress",
        "notifications/progress",
        None,
    ]
    assert connection.notifications[1]["params"] == {"progressToken": 7, "progress": 2, "total": 2}
    result = await connection.call(
        "records",
        {
            "address": {"street": "1 Main St", "city": "Springfield"},
            "options": {"query": "q", "since": "2024-02-29"},
            "point": {"x": 1, "y": 2},
            "shape": {"name": "tri", "points": [{"x": 0, "y": 0}], "color": "blue"},
        },
    )
    shape = result["structuredContent"]["shape"]
    assert shape["type"] == "Shape"
    assert shape["fields"]["color"] == {"type": "Color", "member": "BLUE"}


async def test_a_tool_timeout_applies_in_memory() -> None:
    app = App("slow")

    @app.tool(timeout=0.05)
    async def sleepy() -> str:
        await asyncio.sleep(10)
        return "late"

    result = await acall(app, "sleepy")
    assert result["isError"] is True
    assert "timed out after 0.05 s" in result["content"][0]["text"]


async def test_context_is_given_to_sync_tools_too() -> None:
    app = App("ctx")

    @app.tool
    def which(ctx: Context) -> str:
        return ctx.protocol_version

    result = await acall(app, "which", protocol_version="2025-06-18")
    assert result["content"][0]["text"] == "2025-06-18"


# -- pytest fixtures -----------------------------------------------------------


@pytest.fixture
def mcp_app() -> App:
    return hello


async def test_mcp_local_fixture_calls_in_memory(mcp_local: LocalConnection) -> None:
    assert (await mcp_local.call("add", {"a": 20, "b": 22}))["structuredContent"] == {"result": 42}


async def test_mcp_memory_client_fixture_is_the_client_in_memory(
    mcp_memory_client: MCPClient,
) -> None:
    assert mcp_memory_client.url == "memory://hello"
    assert await mcp_memory_client.call("add", {"a": 20, "b": 22}) == 42
    names = [tool["name"] for tool in await mcp_memory_client.list_tools()]
    assert names == ["hello", "add"]


async def test_mcp_client_fixture_calls_over_a_real_socket(mcp_client: MCPClient) -> None:
    async with async_timeout(10):
        assert await mcp_client.call("add", {"a": 20, "b": 22}) == 42
        names = [tool["name"] for tool in await mcp_client.list_tools()]
    assert names == ["hello", "add"]


def test_check_app_without_hypothesis_names_the_extra_to_install() -> None:
    # None in sys.modules makes "import hypothesis" fail as if it were not installed.
    script = (
        "import sys\n"
        "sys.modules['hypothesis'] = None\n"
        "from iccm_network.testing import call\n"
        "try:\n"
        "    from iccm_network.testing import check_app\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "needs Hypothesis" in done.stdout
    assert 'pip install "iccm-network[testing]"' in done.stdout
