"""``check_prompt`` and ``check_resource_template``: property-test string arguments.

Prompt arguments and URI template variables travel as strings. Valid
argument sets are generated from the function's schema (as for tools) and
written as the client would write them: a string parameter's value as it
is, any other as JSON text (``3``, ``true``); a template's variables are
percent-encoded into a URI. Each must reach the function converted to the
declared types. Invalid sets (a wrong type, a value outside a ``Literal``,
a missing or unexpected argument) must be refused with -32602 naming the
argument, without reaching the function.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from hypothesis import given

from iccm_network.app import App
from iccm_network.catalog.prompts import Prompt
from iccm_network.catalog.resources import Resource
from iccm_network.catalog.text_arguments import is_text_schema
from iccm_network.errors import InvalidParams
from iccm_network.protocol.versions import LATEST_HANDSHAKE_VERSION
from iccm_network.testing.check import _covers, _Probe, _run_tests
from iccm_network.testing.local import LocalConnection
from iccm_network.testing.strategies import InvalidCase, arguments_for, invalid_cases_for

__all__ = ["check_catalog", "check_prompt", "check_resource_template"]


def _as_strings(
    arguments: Mapping[str, Any], properties: Mapping[str, Any]
) -> dict[str, str] | None:
    """The arguments as a client sends them, or ``None`` if a string parameter got a non-string."""
    written: dict[str, str] = {}
    for name, value in arguments.items():
        schema = properties.get(name, {})
        if is_text_schema(schema):
            if not isinstance(value, str):
                return None  # "5" for a str parameter is a fine string: nothing to refuse
            written[name] = value
        else:
            written[name] = json.dumps(value)
    return written


def _expand(resource: Resource, values: Mapping[str, str]) -> str:
    """The URI for ``values``: RFC 6570 simple or reserved expansion of each variable."""
    assert resource.template is not None
    uri = resource.uri
    for name, value in values.items():
        uri = uri.replace("{" + name + "}", quote(value, safe=""))
        uri = uri.replace("{+" + name + "}", quote(value, safe="/"))
        uri = uri.replace("{" + name + "*}", quote(value, safe="/"))
    return uri


@contextmanager
def _instrumented(
    table: dict[str, Any], key: str, item: Prompt | Resource, run: bool
) -> Iterator[_Probe]:
    probe = _Probe(item.tool, run)

    async def stand_in(**kwargs: Any) -> Any:
        # Empty text is a valid prompt and a valid resource: the reply shows
        # how the arguments were taken, whatever the real function returns.
        await probe(**kwargs)
        return ""

    table[key] = dataclasses.replace(
        item, tool=dataclasses.replace(item.tool, fn=stand_in, is_async=True)
    )
    try:
        yield probe
    finally:
        table[key] = item


def _check(
    app: App,
    what: str,
    item: Prompt | Resource,
    request: Callable[[dict[str, str]], tuple[str, dict[str, Any]]],
    table: dict[str, Any],
    key: str,
    *,
    allowed_kinds: frozenset[str],
    protocol_version: str,
    max_examples: int | None,
) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("check_prompt() and check_resource_template() run outside an event loop")
    tool = item.tool
    properties: Mapping[str, Any] = tool.input_schema.get("properties", {})
    template = isinstance(item, Resource)
    loop = asyncio.new_event_loop()

    def usable(written: dict[str, str] | None) -> bool:
        # A URI variable is never empty: an empty value could not be matched back.
        return written is not None and not (template and "" in written.values())

    valid = arguments_for(tool).map(lambda a: (a, _as_strings(a, properties)))
    invalid = invalid_cases_for(tool).filter(lambda c: c.kind in allowed_kinds)
    invalid_written = invalid.map(lambda c: (c, _as_strings(c.arguments, properties)))

    with _instrumented(table, key, item, False) as probe:
        connection = LocalConnection(app, protocol_version=protocol_version)

        def send(written: dict[str, str]) -> dict[str, Any]:
            probe.calls.clear()
            probe.problems.clear()
            method, params = request(written)
            return loop.run_until_complete(connection.request(method, params))

        def accepts_valid_arguments(pair: tuple[dict[str, Any], dict[str, str] | None]) -> None:
            arguments, written = pair
            assert written is not None
            where = f"{what} with arguments {written!r}"
            reply = send(written)
            assert "result" in reply, f"{where}: valid arguments were refused: {reply}"
            assert len(probe.calls) == 1, f"{where}: the function was not called"
            assert not probe.problems, f"{where}: the function received {probe.problems[0]}"
            expected = set(arguments) | {tool.context_parameter} - {None}
            assert set(probe.calls[0]) == expected, f"{where}: it received {sorted(probe.calls[0])}"

        def refuses_invalid_arguments(pair: tuple[InvalidCase, dict[str, str] | None]) -> None:
            case, written = pair
            assert written is not None
            where = f"{what} with {case.kind} at {case.path!r}: {written!r}"
            reply = send(written)
            assert not probe.calls, f"{where}: invalid arguments reached the function: {reply}"
            error = reply.get("error", {})
            assert error.get("code") == InvalidParams.default_code, f"{where}: {reply}"
            data = error.get("data")
            errors = data.get("errors") if isinstance(data, dict) else None
            assert isinstance(errors, list) and errors, f"{where}: no failing paths: {reply}"
            paths = [str(e.get("path")) for e in errors]
            assert any(_covers(p, case.path) for p in paths), f"{where}: errors name {paths}"

        tests: list[Callable[[], None]] = [
            given(valid.filter(lambda pair: usable(pair[1])))(accepts_valid_arguments)
        ]
        # A plain string variable takes any text: a template of those has
        # nothing a URI could get wrong.
        breakable = not template or any(
            not is_text_schema(schema)
            or "enum" in schema
            or "const" in schema
            or "format" in schema
            for schema in properties.values()
        )
        if breakable and not invalid.is_empty:
            tests.append(
                given(invalid_written.filter(lambda pair: usable(pair[1])))(
                    refuses_invalid_arguments
                )
            )
        _run_tests(tests, loop, max_examples)


def check_prompt(
    app: App,
    name: str,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    max_examples: int | None = None,
) -> None:
    """Property-test one prompt's arguments through ``prompts/get``.

    Args:
        app: The app.
        name: The prompt's name.
        protocol_version: The MCP revision the requests are made under.
        max_examples: Examples per property; defaults to the Hypothesis profile.

    Raises:
        AssertionError: A property failed; Hypothesis has shrunk the example.
    """
    prompt = app.catalog.prompts[name]
    _check(
        app,
        f"prompt {name!r}",
        prompt,
        lambda written: ("prompts/get", {"name": name, "arguments": written}),
        app.catalog.prompts,
        name,
        allowed_kinds=frozenset({"type", "value", "format", "missing", "extra"}),
        protocol_version=protocol_version,
        max_examples=max_examples,
    )


def check_resource_template(
    app: App,
    uri_template: str,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    max_examples: int | None = None,
) -> None:
    """Property-test one resource template's variables through ``resources/read``.

    Args:
        app: The app.
        uri_template: The template, as registered.
        protocol_version: The MCP revision the requests are made under.
        max_examples: Examples per property; defaults to the Hypothesis profile.

    Raises:
        AssertionError: A property failed; Hypothesis has shrunk the example.
    """
    resource = app.catalog.templates[uri_template]
    _check(
        app,
        f"resource template {uri_template!r}",
        resource,
        lambda written: ("resources/read", {"uri": _expand(resource, written)}),
        app.catalog.templates,
        uri_template,
        # A URI always holds every variable and nothing else.
        allowed_kinds=frozenset({"type", "value", "format"}),
        protocol_version=protocol_version,
        max_examples=max_examples,
    )


def check_catalog(
    app: App,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    max_examples: int | None = None,
) -> None:
    """Property-test every prompt and resource template of ``app``.

    Args:
        app: The app.
        protocol_version: The MCP revision the requests are made under.
        max_examples: Examples per property; defaults to the Hypothesis profile.
    """
    for name in list(app.catalog.prompts):
        check_prompt(app, name, protocol_version=protocol_version, max_examples=max_examples)
    for uri_template in list(app.catalog.templates):
        check_resource_template(
            app, uri_template, protocol_version=protocol_version, max_examples=max_examples
        )
