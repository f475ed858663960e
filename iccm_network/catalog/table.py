"""An app's resources, prompts and completion hooks, and the requests on them (pure).

``Catalog`` holds what ``@app.resource``, ``@app.prompt`` and
``@app.complete`` registered. The protocol core hands it ``resources/read``,
``prompts/get`` and ``completion/complete`` requests; an answer that needs
the app's function to run comes back as a ``Deferred``: the compiled
function, its arguments, and how to shape its outcome into a result or a
JSON-RPC error. The transport runs it exactly as it runs a tool call (worker
thread for sync functions, timeout, ``Context``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from iccm_network.catalog.completion import (
    CompletionHook,
    choices,
    completion_result,
    hook_values,
)
from iccm_network.catalog.prompts import Prompt, prompt_messages
from iccm_network.catalog.resources import Resource, resource_contents
from iccm_network.catalog.text_arguments import prepare_text_arguments
from iccm_network.errors import InternalError, InvalidParams, MCPError, ToolError
from iccm_network.protocol.outcomes import Outcome, Raised, Returned, ShutDown, TimedOut
from iccm_network.protocol.results import correlation_id
from iccm_network.protocol.versions import Features
from iccm_network.tools.routes import Tool

__all__ = [
    "META_SUBSCRIPTION_ID",
    "RESOURCE_NOT_FOUND",
    "Catalog",
    "Deferred",
    "UpdateListener",
    "resource_not_found",
]

logger = logging.getLogger("iccm_network.catalog")

RESOURCE_NOT_FOUND: Final = -32002
"""The handshake era's code for an unknown resource; 2026-07-28 uses -32602."""

META_SUBSCRIPTION_ID: Final = "io.modelcontextprotocol/subscriptionId"
"""Marks a notification sent on a 2026-07-28 ``subscriptions/listen`` stream."""

Render = Callable[[Outcome, Features], "dict[str, Any] | MCPError"]
UpdateListener = Callable[[str], Awaitable[None]]
"""Tells one connection that a resource changed; registered by the transport."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """A request whose answer needs an app function to run.

    Args:
        tool: The compiled function.
        arguments: Its keyword arguments, validated and converted.
        render: Shapes the call's outcome into a result or an error.
    """

    tool: Tool
    arguments: dict[str, Any]
    render: Render


def resource_not_found(uri: str, features: Features) -> MCPError:
    """The error for an unknown resource under one revision: -32002, or -32602 from 2026-07-28.

    Args:
        uri: The URI asked for.
        features: The revision.
    """
    if features.modern:
        return InvalidParams(f"Resource not found: {uri}", data={"uri": uri})
    return MCPError(f"Resource not found: {uri}", code=RESOURCE_NOT_FOUND, data={"uri": uri})


def _string(params: Mapping[str, Any], key: str, method: str) -> str:
    value = params.get(key)
    if type(value) is not str:
        raise InvalidParams(f'Invalid params: {method} needs a string "{key}"')
    return value


def _shape(
    outcome: Outcome, what: str, build: Callable[[Any], dict[str, Any]]
) -> dict[str, Any] | MCPError:
    """A result from ``build`` for a returned value, else the JSON-RPC error to send."""
    if isinstance(outcome, TimedOut):
        return InternalError(f"{what} {outcome.message}")
    if isinstance(outcome, ShutDown):
        return InternalError(outcome.message)
    if isinstance(outcome, Raised):
        error = outcome.exception
        if isinstance(error, MCPError):
            return error  # the function chose the JSON-RPC error to send
        if isinstance(error, ToolError):
            return InternalError(error.message, data=error.data)
        return _failed(what, error)
    if not isinstance(outcome, Returned):
        raise ValueError(f"{outcome!r} gets no reply")
    try:
        return build(outcome.value)
    except (TypeError, ValueError, RecursionError) as exc:
        return _failed(what, exc)


def _failed(what: str, exc: BaseException) -> MCPError:
    incident = correlation_id()
    logger.error(
        "%s failed [correlation id %s]",
        what,
        incident,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"trace_id": incident},
    )
    return InternalError(
        f"{what} failed with an internal error (correlation id {incident})",
        data={"correlationId": incident},
    )


class Catalog:
    """The resources, resource templates, prompts and completion hooks of one app."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.templates: dict[str, Resource] = {}
        self.prompts: dict[str, Prompt] = {}
        self.hooks: dict[tuple[str, str], CompletionHook] = {}
        # Held weakly: an in-memory connection nobody closes must not live on
        # here; a server's connection holds its own listener while it is open.
        self.listeners: weakref.WeakSet[UpdateListener] = weakref.WeakSet()
        """One per open connection, for ``notify_resource_updated``."""

    # -- what the app has ----------------------------------------------------

    @property
    def has_resources(self) -> bool:
        """True when a resource or a template is registered."""
        return bool(self.resources or self.templates)

    @property
    def has_completions(self) -> bool:
        """True when a prompt or template has arguments to complete."""
        return bool(self.prompts or self.templates)

    def capabilities(self) -> dict[str, Any]:
        """The server capabilities for what is registered, and nothing else."""
        capabilities: dict[str, Any] = {}
        if self.has_resources:
            capabilities["resources"] = {"subscribe": True, "listChanged": False}
        if self.prompts:
            capabilities["prompts"] = {"listChanged": False}
        if self.has_completions:
            capabilities["completions"] = {}
        return capabilities

    def definitions(self, kind: str, features: Features) -> list[dict[str, Any]]:
        """The entries of one listing, in registration order.

        Args:
            kind: ``resources``, ``resourceTemplates`` or ``prompts``.
            features: What the revision supports.
        """
        if kind == "prompts":
            return [prompt.definition(features) for prompt in self.prompts.values()]
        source = self.resources if kind == "resources" else self.templates
        return [resource.definition(features) for resource in source.values()]

    def known_uri(self, uri: str) -> bool:
        """Whether ``uri`` is a fixed resource or matches a template.

        Args:
            uri: A resource URI.
        """
        if uri in self.resources:
            return True
        return any(
            t.template is not None and t.template.match(uri) for t in self.templates.values()
        )

    # -- requests ------------------------------------------------------------

    def read(self, params: Mapping[str, Any], features: Features) -> Deferred:
        """Plan a ``resources/read``.

        Args:
            params: The request's params.
            features: The revision it is served under.

        Raises:
            MCPError: The URI is missing or unknown (the revision's code), or
                a template variable does not fit its type (-32602).
        """
        uri = _string(params, "uri", "resources/read")
        resource = self.resources.get(uri)
        arguments: dict[str, Any] = {}
        if resource is None:
            for candidate in self.templates.values():
                assert candidate.template is not None
                variables = candidate.template.match(uri)
                if variables is not None:
                    resource = candidate
                    owner = f"resource template {candidate.uri!r}"
                    arguments = prepare_text_arguments(candidate.tool, variables, owner)
                    break
        if resource is None:
            raise resource_not_found(uri, features)
        found = resource

        def build(value: Any) -> dict[str, Any]:
            result: dict[str, Any] = {"contents": [resource_contents(found, uri, value)]}
            if features.modern:
                # What a function reads may change at any moment: no caching.
                result["ttlMs"] = 0
                result["cacheScope"] = "private"
            return result

        def render(outcome: Outcome, _: Features) -> dict[str, Any] | MCPError:
            if isinstance(outcome, Raised) and isinstance(outcome.exception, FileNotFoundError):
                return resource_not_found(uri, features)
            return _shape(outcome, f"resource {uri!r}", build)

        return Deferred(found.tool, arguments, render)

    def get_prompt(self, params: Mapping[str, Any], features: Features) -> Deferred:
        """Plan a ``prompts/get``.

        Args:
            params: The request's params.
            features: The revision it is served under.

        Raises:
            InvalidParams: The prompt is unknown, or an argument is missing,
                unknown or does not fit its type; the message names it.
        """
        name = _string(params, "name", "prompts/get")
        prompt = self.prompts.get(name)
        if prompt is None:
            raise InvalidParams(f"Unknown prompt: {name}", data={"name": name})
        given = params.get("arguments")
        if given is None:
            given = {}
        elif type(given) is not dict:
            raise InvalidParams('Invalid params: "arguments" must be an object')
        arguments = prepare_text_arguments(prompt.tool, given, f"prompt {name!r}")

        def build(value: Any) -> dict[str, Any]:
            result: dict[str, Any] = {}
            if prompt.description:
                result["description"] = prompt.description
            result["messages"] = prompt_messages(value)
            return result

        def render(outcome: Outcome, _: Features) -> dict[str, Any] | MCPError:
            return _shape(outcome, f"prompt {name!r}", build)

        return Deferred(prompt.tool, arguments, render)

    def complete(self, params: Mapping[str, Any], features: Features) -> dict[str, Any] | Deferred:
        """Answer a ``completion/complete``, or plan the hook call that will.

        Args:
            params: The request's params.
            features: The revision it is served under.

        Raises:
            InvalidParams: The reference or the argument is unknown.
        """
        ref = params.get("ref")
        argument = params.get("argument")
        if type(ref) is not dict or type(argument) is not dict:
            raise InvalidParams('Invalid params: completion/complete needs "ref" and "argument"')
        argument_name = _string(argument, "name", "completion/complete argument")
        value = _string(argument, "value", "completion/complete argument")
        context = params.get("context")
        given = context.get("arguments") if type(context) is dict else None
        others = {k: v for k, v in given.items() if type(v) is str} if type(given) is dict else {}
        kind = ref.get("type")
        function: Prompt | Resource | None
        if kind == "ref/prompt":
            target = _string(ref, "name", "completion/complete ref/prompt")
            function = self.prompts.get(target)
            if function is None:
                raise InvalidParams(f"Unknown prompt: {target}", data={"name": target})
        elif kind == "ref/resource":
            target = _string(ref, "uri", "completion/complete ref/resource")
            function = self.templates.get(target)
            if function is None:
                if target in self.resources:
                    return completion_result([])  # a fixed URI has nothing to complete
                raise resource_not_found(target, features)
        else:
            raise InvalidParams('Invalid params: ref.type is "ref/prompt" or "ref/resource"')
        properties: Mapping[str, Any] = function.tool.input_schema.get("properties", {})
        if argument_name not in properties:
            raise InvalidParams(
                f"Invalid params: {target!r} has no argument {argument_name!r}",
                data={"argument": argument_name},
            )
        hook = self.hooks.get((target, argument_name))
        if hook is None:
            allowed = choices(properties[argument_name]) or []
            return completion_result([v for v in allowed if v.startswith(value)])

        def render(outcome: Outcome, _: Features) -> dict[str, Any] | MCPError:
            return _shape(
                outcome,
                f"completion hook for {target!r} {argument_name!r}",
                lambda values: completion_result(hook_values(values)),
            )

        return Deferred(hook.tool, hook.arguments(value, others), render)
