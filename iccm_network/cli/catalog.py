"""The ``resources``, ``read`` and ``prompts`` commands of ``iccm-network``.

::

    iccm-network resources URL [--json]   fixed resources, then templates
    iccm-network read URL URI [--json]    the contents: text as is, a blob's bytes
    iccm-network prompts URL [--json]     prompts and their arguments
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from iccm_network.client import MCPClient
from iccm_network.errors import MCPConnectionError, MCPError

__all__ = ["COMMANDS", "add_commands", "run_command"]

COMMANDS: Final = frozenset({"resources", "read", "prompts"})
"""The commands this module adds."""


def add_commands(
    commands: Any, client: argparse.ArgumentParser, epilog: str
) -> list[argparse.ArgumentParser]:
    """Add the commands to the ``iccm-network`` parser; return their parsers.

    Args:
        commands: The parser's subparsers.
        client: The parent parser with the URL and connection options.
        epilog: The exit codes line.
    """
    resources = commands.add_parser(
        "resources",
        parents=[client],
        help="list a server's resources and resource templates",
        description="List the fixed resources, then the resource templates.",
        epilog=epilog,
    )
    read = commands.add_parser(
        "read",
        parents=[client],
        help="read a resource",
        description="Read a resource: text is printed as is, a blob's bytes are written to stdout.",
        epilog=epilog,
    )
    read.add_argument("uri", metavar="URI")
    prompts = commands.add_parser(
        "prompts",
        parents=[client],
        help="list a server's prompts",
        description="List the prompts and their arguments.",
        epilog=epilog,
    )
    for parser in (resources, read, prompts):
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return [resources, read, prompts]


async def run_command(
    args: argparse.Namespace,
    url: str,
    options: Mapping[str, Any],
    report_failure: Callable[[BaseException], int],
) -> int:
    """Run one of ``COMMANDS`` and return its exit code.

    Args:
        args: The parsed arguments.
        url: The server's URL, already checked.
        options: ``MCPClient`` options (timeouts, token, headers).
        report_failure: Prints a failure and returns its exit code.
    """
    client = MCPClient(url, retries=0, **options)
    try:
        if args.command == "resources":
            listed: Any = {
                "resources": await client.list_resources(),
                "resourceTemplates": await client.list_resource_templates(),
            }
        elif args.command == "prompts":
            listed = await client.list_prompts()
        else:
            listed = await client.read_resource(args.uri)
    except (MCPConnectionError, MCPError, TimeoutError) as exc:
        return report_failure(exc)
    finally:
        await client.close()
    if args.json:
        print(json.dumps(listed, indent=2, ensure_ascii=False))
    elif args.command == "resources":
        rows = [
            (r.get("uri", "?"), r.get("name", ""), r.get("description", ""))
            for r in listed["resources"]
        ]
        rows += [
            (t.get("uriTemplate", "?"), t.get("name", ""), t.get("description", ""))
            for t in listed["resourceTemplates"]
        ]
        _table(("URI", "NAME", "DESCRIPTION"), rows)
    elif args.command == "prompts":
        _table(
            ("PROMPT", "ARGUMENTS", "DESCRIPTION"),
            [(p.get("name", "?"), _arguments(p), p.get("description", "")) for p in listed],
        )
    else:
        _contents(listed)
    return 0


def _arguments(prompt: Mapping[str, Any]) -> str:
    arguments = prompt.get("arguments")
    if not isinstance(arguments, list):
        return ""
    return ", ".join(
        str(a.get("name")) + ("" if a.get("required") else "?")
        for a in arguments
        if isinstance(a, dict)
    )


def _table(header: tuple[str, str, str], rows: Sequence[tuple[Any, Any, Any]]) -> None:
    lines = [tuple(str(cell or "").strip().split("\n", 1)[0] for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(2)]
    for first, second, third in [header, *lines]:
        print(f"{first:<{widths[0]}}  {second:<{widths[1]}}  {third}".rstrip())


def _contents(contents: Sequence[Mapping[str, Any]]) -> None:
    for entry in contents:
        if "blob" in entry:
            sys.stdout.flush()
            sys.stdout.buffer.write(base64.b64decode(str(entry["blob"])))
            sys.stdout.buffer.flush()
        else:
            text = str(entry.get("text", ""))
            print(text, end="" if text.endswith("\n") else "\n")
