"""The ``App`` methods that register resources, prompts and completion hooks.

``add_resource``, ``add_prompt`` and ``add_completion`` are the API; the
decorators ``@app.resource(...)``, ``@app.prompt`` and ``@app.complete(...)``
are sugar over them and hand the function back unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, overload

from iccm_network.catalog.completion import CompletionHook, compile_hook
from iccm_network.catalog.prompts import Prompt, compile_prompt
from iccm_network.catalog.resources import Resource, compile_resource
from iccm_network.catalog.table import Catalog
from iccm_network.errors import ToolDefinitionError

__all__ = ["CatalogRegistry"]

F = TypeVar("F", bound=Callable[..., Any])


def _origin(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", fn))


class CatalogRegistry:
    """Registration of resources, prompts and completion hooks; ``App`` has it."""

    _catalog: Catalog

    @property
    def catalog(self) -> Catalog:
        """The registered resources, templates, prompts and completion hooks."""
        return self._catalog

    # -- resources -----------------------------------------------------------

    def add_resource(
        self,
        fn: Callable[..., Any],
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
    ) -> Resource:
        """Register a function that reads a resource at a URI or URI template.

        Args:
            fn: The function, sync (run in a worker thread) or async. For a
                template, its parameters are the template's variables, typed.
                It returns ``str`` (text), ``bytes`` (a base64 blob) or a
                JSON-able value (JSON text); raising ``FileNotFoundError``
                answers "resource not found".
            uri: A fixed URI (``config://app``) or a template
                (``file://{path}``; ``{+path}`` or ``{path*}`` may hold ``/``).
            name: The name in listings; defaults to the function's name.
            title: A human-readable title.
            description: Defaults to the docstring.
            mime_type: The MIME type of the contents.

        Raises:
            ToolDefinitionError: The URI or template is taken or invalid, or
                the parameters do not match the template's variables.
        """
        resource = compile_resource(
            fn, uri, name=name, title=title, description=description, mime_type=mime_type
        )
        table = self.catalog.resources if resource.template is None else self.catalog.templates
        existing = table.get(resource.uri)
        if existing is not None:
            raise ToolDefinitionError(
                f"resource {resource.uri!r} is already registered by {_origin(existing.tool.fn)}"
            )
        table[resource.uri] = resource
        self._catalog_changed("resources")
        return resource

    def remove_resource(self, uri: str) -> Resource:
        """Unregister a resource or template, as registered; servers stop offering it at once.

        Clients connected in the handshake era are sent
        ``notifications/resources/list_changed``.

        Args:
            uri: The fixed URI or the template, as registered.

        Raises:
            KeyError: Nothing is registered at ``uri``.
        """
        catalog = self.catalog
        table = catalog.resources if uri in catalog.resources else catalog.templates
        resource = table.pop(uri)
        self._catalog_changed("resources")
        return resource

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of ``add_resource``; returns the function unchanged.

        Args:
            uri: A fixed URI or a URI template.
            name: The name in listings; defaults to the function's name.
            title: A human-readable title.
            description: Defaults to the docstring.
            mime_type: The MIME type of the contents.
        """

        def register(fn: F) -> F:
            self.add_resource(
                fn, uri, name=name, title=title, description=description, mime_type=mime_type
            )
            return fn

        return register

    async def notify_resource_updated(self, uri: str) -> None:
        """Tell every client subscribed to ``uri`` that it changed.

        Sends ``notifications/resources/updated`` on each connection that
        subscribed with ``resources/subscribe`` or a 2026-07-28
        ``subscriptions/listen`` naming ``uri``.

        Args:
            uri: The resource that changed.
        """
        listeners = list(self.catalog.listeners)
        if listeners:
            await asyncio.gather(*(listener(uri) for listener in listeners))

    # -- prompts -------------------------------------------------------------

    def add_prompt(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Prompt:
        """Register a function as a prompt.

        Args:
            fn: The function, sync or async; its typed parameters are the
                prompt's arguments, described by its docstring. It returns a
                ``str``, a ``Message`` or a list of them.
            name: The prompt name; defaults to the function's name.
            title: A human-readable title.
            description: Defaults to the docstring.

        Raises:
            ToolDefinitionError: The name is taken or invalid, or a parameter
                has no JSON Schema.
        """
        prompt = compile_prompt(fn, name=name, title=title, description=description)
        existing = self.catalog.prompts.get(prompt.name)
        if existing is not None:
            raise ToolDefinitionError(
                f"prompt {prompt.name!r} is already registered by {_origin(existing.tool.fn)}"
            )
        self.catalog.prompts[prompt.name] = prompt
        self._catalog_changed("prompts")
        return prompt

    def remove_prompt(self, name: str) -> Prompt:
        """Unregister a prompt; servers stop offering it at once.

        Clients connected in the handshake era are sent
        ``notifications/prompts/list_changed``.

        Args:
            name: The prompt's name.

        Raises:
            KeyError: No prompt has that name.
        """
        prompt = self.catalog.prompts.pop(name)
        self._catalog_changed("prompts")
        return prompt

    def _catalog_changed(self, kind: str) -> None:
        """Announce a changed listing to running servers; ``App`` does the announcing.

        Args:
            kind: ``"resources"`` or ``"prompts"``.
        """

    @overload
    def prompt(self, fn: F, /) -> F: ...

    @overload
    def prompt(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Callable[[F], F]: ...

    def prompt(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator form of ``add_prompt``; returns the function unchanged.

        Args:
            fn: The function, when used bare (``@app.prompt``).
            name: The prompt name; defaults to the function's name.
            title: A human-readable title.
            description: Defaults to the docstring.
        """

        def register(f: F) -> F:
            self.add_prompt(f, name=name, title=title, description=description)
            return f

        return register if fn is None else register(fn)

    # -- completion ----------------------------------------------------------

    def add_completion(self, fn: Callable[..., Any], target: str, argument: str) -> CompletionHook:
        """Register a hook that completes one argument of a prompt or resource template.

        Args:
            fn: ``fn(value)`` or ``fn(value, context)``, sync or async,
                returning a list of strings; ``context`` is a
                ``dict[str, str]`` of the other arguments already given.
            target: A registered prompt's name, or a registered resource
                template's URI template.
            argument: The argument or template variable it completes.

        Raises:
            ToolDefinitionError: The target or argument is unknown, or it has
                a hook already.
        """
        catalog = self.catalog
        owner = catalog.prompts.get(target) or catalog.templates.get(target)
        where = f"completion hook {_origin(fn)}"
        if owner is None:
            raise ToolDefinitionError(
                f"{where}: {target!r} is not a registered prompt or resource template "
                "(register it first)"
            )
        if argument not in owner.tool.input_schema.get("properties", {}):
            raise ToolDefinitionError(f"{where}: {target!r} has no argument {argument!r}")
        if (target, argument) in catalog.hooks:
            raise ToolDefinitionError(f"{where}: {target!r} {argument!r} already has a hook")
        hook = compile_hook(fn, target, argument)
        catalog.hooks[(target, argument)] = hook
        return hook

    def complete(self, target: str, argument: str) -> Callable[[F], F]:
        """Decorator form of ``add_completion``; returns the function unchanged.

        Args:
            target: A registered prompt's name or resource template's URI template.
            argument: The argument it completes.
        """

        def register(fn: F) -> F:
            self.add_completion(fn, target, argument)
            return fn

        return register
