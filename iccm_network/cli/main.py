"""The ``iccm-network`` command (also ``python -m iccm_network``).

::

    iccm-network serve MODULE:APP [--host H] [--port P]
    iccm-network tools URL [--json]
    iccm-network call URL TOOL [JSON]
    iccm-network doctor URL [--json]
    iccm-network resources URL [--json]
    iccm-network read URL URI [--json]
    iccm-network prompts URL [--json]

Exit codes: 0 success; 1 a tool error or protocol error (for ``doctor``: the
server answered but does not speak MCP, or its messages are too big for the
relay); 2 a usage error (bad arguments, JSON or URL, as ``argparse`` has it,
with the command's usage); 3 a connection failure, with the diagnosis on
stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from iccm_network.cli.catalog import COMMANDS, add_commands, run_command
from iccm_network.cli.doctor import RELAY_MAX_SIZE, doctor
from iccm_network.client import MCPClient
from iccm_network.content import CONTENT_TYPES
from iccm_network.errors import MCPConnectionError, MCPError, ToolError
from iccm_network.transport.connect import Endpoint

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECTION: Final = 3

_EXIT_CODES: Final = (
    "Exit codes: 0 ok, 1 tool or protocol error, 2 usage error, 3 connection failure."
)

_PROTOCOL_REASONS: Final = frozenset({"not-mcp", "message-too-big"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iccm-network",
        description="Serve, call and diagnose MCP servers over WebSocket.",
        epilog=_EXIT_CODES,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run an App", description="Import MODULE and run its App until SIGTERM."
    )
    serve.add_argument("target", metavar="MODULE:APP", help="e.g. horace.server:app")
    serve.add_argument("--host", help="interface to bind (overrides MCP_HOST; default: all)")
    serve.add_argument("--port", type=int, help="port to bind (overrides MCP_PORT)")

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("url", metavar="URL", help="ws://host:port/path, host:port or a host")
    client.add_argument(
        "--timeout", type=float, default=10.0, help="seconds for each step (doctor: 5, else 10)"
    )
    client.add_argument(
        "--token",
        default=os.environ.get("MCP_AUTH_TOKEN"),
        help="bearer token for the handshake (default: $MCP_AUTH_TOKEN)",
    )
    client.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra handshake header, such as 'Origin: http://x' (repeatable)",
    )

    tools = commands.add_parser(
        "tools",
        parents=[client],
        help="list a server's tools",
        description="List the tools.",
        epilog=_EXIT_CODES,
    )
    tools.add_argument("--json", action="store_true", help="print the definitions as JSON")

    call = commands.add_parser(
        "call",
        parents=[client],
        help="call a tool",
        description="Call a tool and print its result as JSON on stdout.",
        epilog=_EXIT_CODES,
    )
    call.add_argument("tool", metavar="TOOL")
    call.add_argument(
        "arguments",
        metavar="JSON",
        nargs="?",
        default="{}",
        help="arguments object, or - for stdin",
    )

    check = commands.add_parser(
        "doctor",
        parents=[client],
        help="diagnose a connection step by step",
        description="Walk DNS, TCP, WebSocket handshake, initialize, tools/list and ping, "
        "time each step, and explain the first failure. Exit 0 only when all pass.",
        epilog=_EXIT_CODES,
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--origin",
        metavar="URL",
        help="send this Origin header, as a browser does (to reproduce a browser client's "
        "403 from the server's MCP_ALLOWED_ORIGINS)",
    )
    check.add_argument(
        "--max-size",
        type=int,
        default=RELAY_MAX_SIZE,
        metavar="BYTES",
        help="fail when a tools/list message is larger (default 1 MiB, the relay's limit; "
        "0 disables the check)",
    )
    check.set_defaults(timeout=5.0)
    catalog = add_commands(commands, client, _EXIT_CODES)
    for command in (tools, call, check, *catalog):
        command.set_defaults(command_parser=command)
    return parser


def _headers(raw: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header needs 'NAME: VALUE', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "serve":
            return _serve(args.target, args.host, args.port)
        # Mistakes in a subcommand's arguments show that subcommand's usage.
        command: argparse.ArgumentParser = args.command_parser
        headers = _headers(args.header, command)
        client_options: dict[str, Any] = {
            "connect_timeout": args.timeout,
            "auth_token": args.token,
            "headers": headers,
        }
        url = _checked_url(args.url, command)
        if args.command == "doctor":
            return asyncio.run(_doctor(url, args, headers))
        if args.command == "tools":
            return asyncio.run(_tools(url, client_options, as_json=args.json))
        if args.command in COMMANDS:
            return asyncio.run(run_command(args, url, client_options, _report_failure))
        arguments = _arguments(args.arguments, command)
        return asyncio.run(_call(url, args.tool, arguments, client_options))
    except SystemExit as exc:  # argparse reports usage errors by exiting
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except _UnusableURL as exc:
        try:
            exc.parser.error(str(exc))
        except SystemExit:
            pass
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


class _UnusableURL(ValueError):
    """The URL cannot be parsed: a usage error of ``parser``'s command."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


def _checked_url(url: str, parser: argparse.ArgumentParser) -> str:
    try:
        Endpoint.parse(url)
    except ValueError as exc:
        raise _UnusableURL(str(exc), parser) from None
    return url


def _arguments(raw: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    text = sys.stdin.read() if raw == "-" else raw
    try:
        value = json.loads(text)
    except ValueError as exc:
        parser.error(f"JSON arguments are not valid JSON: {exc}")
    if not isinstance(value, dict):
        parser.error('JSON arguments must be an object, such as \'{"name": "Ada"}\'')
    return value


# -- serve ---------------------------------------------------------------------


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        # Like `python -m`: a module in the current directory is importable.
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    value: Any = module
    for part in (attribute or "app").split("."):
        value = getattr(value, part)
    return value


def _serve(target: str, host: str | None, port: int | None) -> int:
    try:
        app = _load(target)
    except (ImportError, AttributeError) as exc:
        print(f"iccm-network serve: cannot load {target!r}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not callable(getattr(app, "run", None)):
        print(f"iccm-network serve: {target!r} is not an App (it has no run())", file=sys.stderr)
        return EXIT_ERROR
    app.run(host=host, port=port)
    return EXIT_OK


# -- client commands -----------------------------------------------------------


def _report_failure(exc: BaseException) -> int:
    if isinstance(exc, MCPConnectionError):
        print(exc.problem, file=sys.stderr)
        if exc.check:
            print(f"Check: {exc.check}", file=sys.stderr)
        print(f"(step: {exc.step}, reason: {exc.reason})", file=sys.stderr)
        return EXIT_CONNECTION
    if isinstance(exc, ToolError | MCPError):
        label = "tool error" if isinstance(exc, ToolError) else f"error {exc.code}"
        print(f"{label}: {exc.message}", file=sys.stderr)
        if exc.data is not None:
            print(json.dumps(exc.data, indent=2, ensure_ascii=False), file=sys.stderr)
        return EXIT_ERROR
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_ERROR


async def _call(
    url: str, tool: str, arguments: Mapping[str, Any], options: Mapping[str, Any]
) -> int:
    client = MCPClient(url, retries=0, **options)
    try:
        result = await client.call(tool, arguments)
    except (MCPConnectionError, MCPError, ToolError, TimeoutError) as exc:
        return _report_failure(exc)
    finally:
        await client.close()
    print(json.dumps(result, indent=2, ensure_ascii=False, default=_content_json))
    return EXIT_OK


def _content_json(value: Any) -> Any:
    # An Image, File... is printed as the content block it arrived as.
    if isinstance(value, CONTENT_TYPES):
        return value.block()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def _tools(url: str, options: Mapping[str, Any], *, as_json: bool) -> int:
    client = MCPClient(url, retries=0, **options)
    try:
        tools = await client.list_tools()
    except (MCPConnectionError, MCPError, TimeoutError) as exc:
        return _report_failure(exc)
    finally:
        await client.close()
    if as_json:
        print(json.dumps(tools, indent=2, ensure_ascii=False))
    else:
        _print_table(tools, sys.stdout)
    return EXIT_OK


def _parameters(tool: Mapping[str, Any]) -> str:
    schema = tool.get("inputSchema")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return ""
    listed = schema.get("required")
    required: list[Any] = listed if isinstance(listed, list) else []
    return ", ".join(name if name in required else f"{name}?" for name in schema["properties"])


def _print_table(tools: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    """Name, parameters (``?`` marks optional ones) and the description's first line."""
    rows = [
        (
            str(tool.get("name", "?")),
            _parameters(tool),
            str(tool.get("description") or "").strip().split("\n", 1)[0],
        )
        for tool in tools
    ]
    header = ("TOOL", "PARAMETERS", "DESCRIPTION")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
    columns = shutil.get_terminal_size((100, 24)).columns
    for name, params, description in [header, *rows]:
        line = f"{name:<{widths[0]}}  {params:<{widths[1]}}  {description}".rstrip()
        if len(line) > columns and columns > 20:
            line = line[: columns - 3] + "..."
        print(line, file=out)
    print(f"{len(rows)} tool{'s' if len(rows) != 1 else ''}", file=out)


async def _doctor(url: str, args: argparse.Namespace, headers: Mapping[str, str]) -> int:
    report = await doctor(
        url,
        timeout=args.timeout,
        headers=headers,
        auth_token=args.token,
        origin=args.origin,
        max_size=args.max_size or None,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.render())
    failure = report.failure
    if failure is None:
        return EXIT_OK
    # The server answered but is not fit for MCP: like a protocol error.
    return EXIT_ERROR if failure.reason in _PROTOCOL_REASONS else EXIT_CONNECTION
