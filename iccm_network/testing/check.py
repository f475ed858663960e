"""``check_app`` and ``check_tool``: property-test tools through the full protocol path.

For each tool, the function is swapped for a probe that records and
type-checks what reaches it; generated valid arguments must reach it
converted to the declared Python types, and generated invalid ones must be
refused with the failing path named, without reaching it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import inspect
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

import typing_extensions
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from jsonschema import Draft202012Validator

from iccm_network.app import App
from iccm_network.context import Context
from iccm_network.errors import InvalidParams, ToolDefinitionError
from iccm_network.protocol.results import ERROR_DATA_META_KEY
from iccm_network.protocol.versions import LATEST_HANDSHAKE_VERSION
from iccm_network.testing.local import LocalConnection
from iccm_network.testing.strategies import InvalidCase, arguments_for, invalid_cases_for
from iccm_network.tools.convert import (
    DICT_ORIGINS,
    LIST_ORIGINS,
    NONE_TYPE,
    SET_ORIGINS,
    UNION_ORIGINS,
    record_fields,
    resolve_parameters,
    strip_annotated,
)
from iccm_network.tools.routes import Tool

__all__ = ["check_app", "check_tool"]


def _mismatch(value: Any, hint: Any, path: str) -> str | None:
    """Why ``value`` is not of the declared type ``hint``, or ``None`` when it is."""
    hint = strip_annotated(hint)
    while hasattr(hint, "__supertype__"):  # typing.NewType
        hint = hint.__supertype__
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    found = f"{path or 'argument'} is {type(value).__qualname__} {value!r:.60}, expected {hint!r}"
    if hint is Any:
        return None
    if hint is None or hint is NONE_TYPE:
        return None if value is None else found
    if hint in (bool, int, float, str):
        return None if type(value) is hint else found
    if origin is typing.Literal:
        return None if any(type(value) is type(a) and value == a for a in args) else found
    if origin in UNION_ORIGINS:
        return None if any(_mismatch(value, arm, path) is None for arm in args) else found
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum) or issubclass(hint, (uuid.UUID, PurePath, datetime.time)):
            return None if isinstance(value, hint) else found
        if issubclass(hint, datetime.date):
            exact = issubclass(hint, datetime.datetime) or not isinstance(value, datetime.datetime)
            return None if isinstance(value, hint) and exact else found
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):
                return found
            return _first(
                _mismatch(getattr(value, name), field_hint, f"{path}/{name}")
                for name, field_hint, _, _ in record_fields(hint)
            )
        if typing_extensions.is_typeddict(hint):
            fields = {name: (h, req) for name, h, _, req in record_fields(hint)}
            if not isinstance(value, dict) or not value.keys() <= fields.keys():
                return found
            missing = [name for name, (_, req) in fields.items() if req and name not in value]
            if missing:
                return f"{path}/{missing[0]} is missing from {value!r:.60}"
            return _first(
                _mismatch(item, fields[name][0], f"{path}/{name}") for name, item in value.items()
            )
    if hint in LIST_ORIGINS or origin in LIST_ORIGINS:
        if type(value) is not list:
            return found
        return _each(value, args[0] if args else Any, path)
    if hint is tuple or origin is tuple:
        if type(value) is not tuple:
            return found
        if len(args) == 2 and args[1] is Ellipsis:
            return _each(value, args[0], path)
        if args and len(args) != len(value):
            return found
        return _first(
            _mismatch(item, arm, f"{path}/{i}")
            for i, (item, arm) in enumerate(zip(value, args, strict=True))
        )
    if hint in SET_ORIGINS or origin in SET_ORIGINS:
        expected = frozenset if (origin or hint) is frozenset else set
        if type(value) is not expected:
            return found
        return _each(value, args[0] if args else Any, path)
    if hint in DICT_ORIGINS or origin in DICT_ORIGINS:
        if type(value) is not dict or not all(type(k) is str for k in value):
            return found
        return _first(
            _mismatch(item, args[1] if args else Any, f"{path}/{k}") for k, item in value.items()
        )
    return None  # not a type this framework converts; nothing more to say


def _each(values: Iterable[Any], hint: Any, path: str) -> str | None:
    return _first(_mismatch(item, hint, f"{path}/{i}") for i, item in enumerate(values))


def _first(problems: Iterable[str | None]) -> str | None:
    return next((problem for problem in problems if problem is not None), None)


class _Probe:
    """Stands in for a tool's function: records and type-checks what reaches it."""

    def __init__(self, tool: Tool, run: bool) -> None:
        self.tool = tool
        self.run = run
        self.calls: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.hints = _declared_hints(tool)
        try:
            self.signature: inspect.Signature | None = inspect.signature(tool.fn)
        except (TypeError, ValueError):
            self.signature = None

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(dict(kwargs))
        if self.signature is not None:
            try:
                self.signature.bind(**kwargs)
            except TypeError as exc:
                self.problems.append(f"arguments it cannot take: {exc}")
        for name, value in kwargs.items():
            if name == self.tool.context_parameter:
                if not isinstance(value, Context):
                    self.problems.append(f"{name} is {value!r}, expected a Context")
            else:
                problem = _mismatch(value, self.hints.get(name, Any), f"/{name}")
                if problem is not None:
                    self.problems.append(problem)
        if not self.run:
            return None
        fn = self.tool.fn
        if self.tool.is_async:
            return await fn(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)


def _declared_hints(tool: Tool) -> dict[str, Any]:
    """The parameters' type hints; empty when the function has none to read.

    A hand-written ``input_schema`` skips conversion, so its function receives
    plain JSON: its hints are checked against that, which is what it gets.
    """
    try:
        params, hints, _, _ = resolve_parameters(tool.fn)
    except ToolDefinitionError:
        return {}  # such as an MCPServer handler taking **arguments
    return {param.name: hints[param.name] for param in params}


def _validation_errors(reply: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The failing paths of a refused call, or ``None`` if it was not refused as invalid."""
    if "error" in reply:
        error = reply["error"]
        data = error.get("data") if error.get("code") == InvalidParams.default_code else None
    else:
        result = reply.get("result", {})
        refused = result.get("isError") is True
        data = result.get("_meta", {}).get(ERROR_DATA_META_KEY) if refused else None
    errors = data.get("errors") if isinstance(data, dict) else None
    return errors if isinstance(errors, list) else None


def _covers(reported: str, path: str) -> bool:
    return path == reported or path.startswith(reported + "/") or reported == ""


def check_tool(
    app: App,
    name: str,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    run_tools: bool = False,
    max_examples: int | None = None,
) -> None:
    """Property-test one tool of ``app``; see ``check_app``.

    Args:
        app: The app.
        name: The tool's name.
        protocol_version: The MCP revision the calls are made under.
        run_tools: Also run the real function on valid arguments, and check
            it neither fails unexpectedly nor breaks its ``outputSchema``.
        max_examples: Examples per property; defaults to the Hypothesis
            profile's setting.

    Raises:
        AssertionError: A property failed; Hypothesis has shrunk the example.
        RuntimeError: Called inside a running event loop.
    """
    tool = app.tools[name]
    Draft202012Validator.check_schema(tool.input_schema)
    if tool.output_schema is not None:
        Draft202012Validator.check_schema(tool.output_schema)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("check_app() and check_tool() must run outside an event loop")

    published = Draft202012Validator(
        tool.input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    probe = _Probe(tool, run_tools)
    instrumented = dataclasses.replace(tool, fn=probe, is_async=True)
    connection = LocalConnection(
        app, protocol_version=protocol_version, tools={**app.tools, name: instrumented}
    )
    output_check = (
        Draft202012Validator(tool.output_schema).iter_errors
        if tool.output_schema is not None
        else None
    )
    loop = asyncio.new_event_loop()

    def send(arguments: dict[str, Any]) -> dict[str, Any]:
        probe.calls.clear()
        probe.problems.clear()
        return loop.run_until_complete(
            connection.request("tools/call", {"name": name, "arguments": arguments})
        )

    def accepts_valid_arguments(arguments: dict[str, Any]) -> None:
        where = f"tool {name!r} with arguments {arguments!r}"
        errors = [e.message for e in published.iter_errors(arguments)]
        assert not errors, f"{where}: generated arguments break the schema: {errors}"
        reply = send(arguments)
        assert "result" in reply, f"{where}: valid arguments were refused: {reply}"
        result = reply["result"]
        assert len(probe.calls) == 1, f"{where}: the function was not called: {result}"
        assert not probe.problems, f"{where}: the function received {probe.problems[0]}"
        expected = set(arguments) | {tool.context_parameter} - {None}
        assert set(probe.calls[0]) == expected, (
            f"{where}: the function received {sorted(probe.calls[0])}"
        )
        meta = result.get("_meta", {}).get(ERROR_DATA_META_KEY)
        if result.get("isError"):
            assert run_tools and not (isinstance(meta, dict) and "correlationId" in meta), (
                f"{where}: the call failed: {result['content']}"
            )
        elif run_tools and output_check is not None and "structuredContent" in result:
            broken = [e.message for e in output_check(result["structuredContent"])]
            assert not broken, f"{where}: structuredContent breaks the outputSchema: {broken}"

    def refuses_invalid_arguments(case: InvalidCase) -> None:
        where = f"tool {name!r} with {case.kind} at {case.path!r}: {case.arguments!r}"
        reply = send(case.arguments)
        assert not probe.calls, f"{where}: invalid arguments reached the function: {reply}"
        errors = _validation_errors(reply)
        assert errors, f"{where}: not refused as invalid params: {reply}"
        paths = [str(error.get("path")) for error in errors]
        assert any(_covers(p, case.path) for p in paths), (
            f"{where}: the errors name {paths}, not {case.path!r}"
        )

    tests: list[Callable[[], None]] = [given(arguments_for(tool))(accepts_valid_arguments)]
    invalid = invalid_cases_for(tool)
    if not invalid.is_empty:  # an open object of ``Any`` values has nothing to break
        tests.append(given(invalid)(refuses_invalid_arguments))
    _run_tests(tests, loop, max_examples)


def _run_tests(
    tests: list[Callable[[], None]], loop: asyncio.AbstractEventLoop, max_examples: int | None
) -> None:
    """Run Hypothesis tests that call through ``loop``, then close the loop."""
    try:
        for test in tests:
            if max_examples is not None:
                test = hypothesis_settings(max_examples=max_examples)(test)
            test()
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def check_app(
    app: App,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    run_tools: bool = False,
    max_examples: int | None = None,
) -> None:
    """Property-test every tool of ``app`` through the full protocol path.

    For each tool: its schemas are valid Draft 2020-12; every argument set
    generated from its ``inputSchema`` is accepted and reaches the function
    converted to the declared Python types (dataclass instances, enum
    members, datetimes...); every generated invalid set is refused with
    -32602 (an ``isError`` result from 2025-11-25) naming the failing path,
    and never reaches the function. The function body is replaced by a probe
    unless ``run_tools`` is true. Call it from a plain (non-async) test; the
    Hypothesis profile in effect decides the number of examples.

    Args:
        app: The app to check.
        protocol_version: The MCP revision the calls are made under.
        run_tools: Also run the real functions on valid arguments.
        max_examples: Examples per property, overriding the profile.

    Raises:
        AssertionError: A property failed; the message names the tool, the
            arguments (shrunk by Hypothesis) and what went wrong.
        RuntimeError: Called inside a running event loop.
    """
    for name in app.tools:
        check_tool(
            app,
            name,
            protocol_version=protocol_version,
            run_tools=run_tools,
            max_examples=max_examples,
        )
