"""Fiedler's server module after the move to iccm-network, runnable with stand-ins.

Before, ``fiedler/mcp_server.py`` used the ``mcp`` SDK's ``Server`` only for
its decorators and then served it by hand: eight ``Tool(...)`` schemas, a
dispatch table of lambdas, an ``except`` ladder that turned exceptions into
error JSON inside *successful* results, and a ``websockets.serve`` loop with
its own JSON-RPC dispatcher. After, each tool is a typed function: the schemas
come from the type hints and docstrings, sync tools run in worker threads
(``fiedler_send`` no longer needs ``asyncio.to_thread``), and expected
failures become ``ToolError`` in one decorator.

The tool bodies are stand-ins for ``fiedler/tools.py`` (no LLM calls, keys in
memory). Run it with ``MCP_PORT=8080 python examples/migrated/fiedler.py``.
See ``docs/migration.md`` for the walk-through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

from iccm_network import App, ToolError

P = ParamSpec("P")
R = TypeVar("R")

Provider = Literal["google", "openai", "together", "xai"]

app = App("fiedler", version="1.0.0")

# What the old ``except`` ladder in call_tool reported, now as ToolError data.
_ERROR_CODES: tuple[tuple[type[Exception], str], ...] = (
    (KeyError, "MISSING_ARGUMENT"),
    (ValueError, "INVALID_INPUT"),
    (PermissionError, "ACCESS_DENIED"),
    (FileNotFoundError, "FILE_NOT_FOUND"),
    (RuntimeError, "PROVIDER_ERROR"),
)


def reported(fn: Callable[P, R]) -> Callable[P, R]:
    """Report Fiedler's expected failures to the caller as tool errors.

    Any other exception is logged server-side and the caller sees a generic
    message with a correlation id, never its text.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except tuple(cls for cls, _ in _ERROR_CODES) as exc:
            code = next(code for cls, code in _ERROR_CODES if isinstance(exc, cls))
            raise ToolError(str(exc), data={"code": code}) from exc

    return wrapper


# -- stand-ins for fiedler/tools.py -------------------------------------------

_MODELS: list[dict[str, Any]] = [
    {"name": "gemini-2.5-pro", "provider": "google", "aliases": ["gemini"], "max_tokens": 32768},
    {"name": "gpt-5", "provider": "openai", "aliases": ["gpt"], "max_tokens": 32768},
    {"name": "grok-4", "provider": "xai", "aliases": ["grok"], "max_tokens": 16384},
]
_config: dict[str, Any] = {"models": ["gemini-2.5-pro"], "output_dir": "/tmp/fiedler"}
_keys: dict[str, str] = {}


def _resolve(model: str) -> str:
    for known in _MODELS:
        if model == known["name"] or model in known["aliases"]:
            return str(known["name"])
    raise ValueError(f"Unknown model: {model}")


@app.tool(annotations={"readOnlyHint": True})
def fiedler_list_models() -> list[dict[str, Any]]:
    """List all available LLM models with their properties (name, provider, aliases, max_tokens)."""
    return _MODELS


@app.tool
@reported
def fiedler_set_models(models: list[str]) -> dict[str, Any]:
    """Configure default models for fiedler_send. Accepts list of model IDs or aliases.

    Args:
        models: List of model IDs or aliases to use as defaults.
    """
    _config["models"] = [_resolve(model) for model in models]
    return {"status": "configured", "models": _config["models"]}


@app.tool
def fiedler_set_output(output_dir: str) -> dict[str, Any]:
    """Configure output directory for fiedler_send results.

    Args:
        output_dir: Path to output directory.
    """
    _config["output_dir"] = output_dir
    return {"status": "configured", "output_dir": output_dir}


@app.tool(annotations={"readOnlyHint": True})
def fiedler_get_config() -> dict[str, Any]:
    """Get current Fiedler configuration (models, output_dir, total_available_models)."""
    return {**_config, "total_available_models": len(_MODELS)}


@app.tool(timeout=600)
@reported
def fiedler_send(
    prompt: str, files: list[str] | None = None, models: list[str] | None = None
) -> dict[str, Any]:
    """Send prompt and optional package files to configured LLMs.

    Returns results from all models in parallel.

    Args:
        prompt: User prompt or question to send to models.
        files: Optional list of file paths to compile into package.
        models: Optional override of default models (use model IDs or aliases).
    """
    chosen = [_resolve(model) for model in models] if models else _config["models"]
    return {
        "status": "success",
        "results": [
            {"model": model, "status": "success", "response": f"[{model}] {len(prompt)} chars"}
            for model in chosen
        ],
        "files": files or [],
    }


@reported
def fiedler_set_key(provider: Provider, api_key: str) -> dict[str, Any]:
    """Store API key securely in system keyring (encrypted)."""
    _keys[provider] = api_key
    return {"status": "stored", "provider": provider}


# This tool keeps its hand-written schema: "writeOnly" and "format": "password"
# tell clients not to echo the key, which a type hint cannot say.
app.add_tool(
    fiedler_set_key,
    description="Store API key securely in system keyring (encrypted). "
    "Replaces need for environment variables.",
    input_schema={
        "type": "object",
        "properties": {
            "provider": {
                "type": "string",
                "enum": ["google", "openai", "together", "xai"],
                "description": "Provider name: google, openai, together, or xai",
            },
            "api_key": {
                "type": "string",
                "description": "API key to store (will be encrypted by OS keyring)",
                "format": "password",
                "writeOnly": True,
            },
        },
        "required": ["provider", "api_key"],
        "additionalProperties": False,
    },
)


@app.tool(annotations={"destructiveHint": True, "idempotentHint": True})
def fiedler_delete_key(provider: Provider) -> dict[str, Any]:
    """Delete stored API key from system keyring.

    Args:
        provider: Provider name.
    """
    if _keys.pop(provider, None) is None:
        raise ToolError(f"No API key stored for {provider}", data={"code": "NOT_FOUND"})
    return {"status": "deleted", "provider": provider}


@app.tool(annotations={"readOnlyHint": True})
def fiedler_list_keys() -> dict[str, Any]:
    """List providers that have API keys stored in system keyring."""
    return {"providers": sorted(_keys)}


if __name__ == "__main__":
    app.run()
