"""Command line: ``python -m benchmarks COMMAND`` (compare, http, http-parts, load, ...).

``compare`` runs every case against iccm-network and the baselines and
prints the table of ratios; ``http`` compares Streamable HTTP with the
official SDK's own HTTP server; the other commands run one case against one
server and print its figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from benchmarks.compare import CASES, DEFAULT_SERVERS, compare, print_table
from benchmarks.http_load import compare_http, print_http_table
from benchmarks.http_parts import http_parts
from benchmarks.launcher import (
    SERVERS,
    ServerSpec,
    cold_start,
    default_install,
    iccm_variant,
    import_time,
    launch,
)
from benchmarks.loadgen import run_idle, run_large, run_load
from benchmarks.payloads import TOOL_ARGUMENTS
from benchmarks.profiling import profile_server

__all__ = ["main"]


def _spec(args: argparse.Namespace) -> ServerSpec:
    if args.iccm_path:
        return iccm_variant("iccm-variant", args.iccm_path)
    if args.server == "default":
        default_install(sys.stderr)
    return SERVERS[args.server]


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    async with launch(_spec(args)) as server:
        result = await run_load(
            server.url,
            pid=server.pid,
            connections=args.connections,
            in_flight=args.in_flight,
            seconds=args.seconds,
            warmup=args.warmup,
            tool=args.tool,
            arguments=TOOL_ARGUMENTS[args.tool],
            slow_every=args.slow_every,
            compression=args.compression,
        )
    return result.summary()


async def _idle(args: argparse.Namespace) -> dict[str, Any]:
    async with launch(_spec(args)) as server:
        result = await run_idle(server.url, pid=server.pid, connections=args.connections)
    return result.summary()


async def _large(args: argparse.Namespace) -> dict[str, Any]:
    async with launch(_spec(args)) as server:
        result = await run_large(
            server.url,
            pid=server.pid,
            size=args.mib * 2**20,
            repeats=args.repeats,
            compression=args.compression,
        )
    return result.summary()


async def _coldstart(args: argparse.Namespace) -> dict[str, Any]:
    spec = _spec(args)
    times = [await cold_start(spec, ("--tools", str(args.tools))) for _ in range(args.repeats)]
    figures = {"tools": args.tools, "cold_start_ms": _median(times) * 1e3}
    if spec.module == SERVERS["iccm"].module:
        imports = [import_time(spec) for _ in range(args.repeats)]
        figures["import_iccm_network_ms"] = _median(imports) * 1e3
    return figures


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def one_server(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--server", choices=sorted(SERVERS), default="iccm")
        command.add_argument("--iccm-path", help="serve iccm_network from this directory instead")
        return command

    load = one_server("load", "C connections x K calls in flight for S seconds")
    load.add_argument("--connections", "-c", type=int, default=16)
    load.add_argument("--in-flight", "-k", type=int, default=8)
    load.add_argument("--seconds", "-s", type=float, default=3.0)
    load.add_argument("--warmup", type=float, default=1.0)
    load.add_argument("--tool", choices=["echo", "register"], default="echo")
    load.add_argument("--slow-every", type=int, default=0, metavar="N")
    load.add_argument("--compression", choices=["deflate"], default=None)

    idle = one_server("idle", "hold N initialized connections and read server memory")
    idle.add_argument("--connections", "-n", type=int, default=1000)

    large = one_server("large", "round trips of a large argument echoed as a large result")
    large.add_argument("--mib", type=int, default=8)
    large.add_argument("--repeats", type=int, default=5)
    large.add_argument("--compression", choices=["deflate"], default=None)

    cold = one_server("coldstart", "process start to port accepting")
    cold.add_argument("--tools", type=int, default=50)
    cold.add_argument("--repeats", type=int, default=3)

    run_all = commands.add_parser("compare", help="every case, every server, interleaved")
    run_all.add_argument("--rounds", type=int, default=3)
    run_all.add_argument("--seconds", type=float, default=2.0, help="measured seconds per load")
    run_all.add_argument("--warmup", type=float, default=0.5)
    run_all.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    run_all.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run iccm_network from PATH (a patched copy) under NAME",
    )
    run_all.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, from {', '.join(SERVERS)} (raw is always run)",
    )
    run_all.add_argument("--json", help="also write every measurement to this file")

    http = commands.add_parser("http", help="Streamable HTTP: iccm-network vs the SDK's server")
    http.add_argument("--rounds", type=int, default=3)
    http.add_argument("--seconds", type=float, default=2.0, help="measured seconds per load")
    http.add_argument("--warmup", type=float, default=0.5)
    http.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of every server compared",
    )

    commands.add_parser(
        "http-parts", help="server CPU of one HTTP request without sockets, and h11's part"
    )

    prof = one_server("profile", "cProfile a server under load: microseconds per call")
    prof.add_argument("--tool", choices=["echo", "register"], default="echo")
    prof.add_argument("--seconds", type=float, default=3.0)
    prof.add_argument("--top", type=int, default=25)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command named on the command line.

    Args:
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    args = _parser().parse_args(argv)
    if args.command == "compare":
        variants = [iccm_variant(*item.split("=", 1)) for item in args.variant]
        cases = [name.strip() for name in args.cases.split(",") if name.strip()]
        unknown = sorted(set(cases) - set(CASES))
        if unknown:
            sys.exit(f"unknown cases: {', '.join(unknown)}; choose from {', '.join(CASES)}")
        servers = [name.strip() for name in args.servers.split(",") if name.strip()]
        unknown = sorted(set(servers) - set(SERVERS))
        if unknown:
            sys.exit(f"unknown servers: {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
        results = asyncio.run(
            compare(
                cases,
                rounds=args.rounds,
                seconds=args.seconds,
                warmup=args.warmup,
                variants=variants,
                servers=servers,
                progress=sys.stderr,
            )
        )
        print_table(results, sys.stdout)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(results.as_json(), out, indent=1)
        return
    if args.command == "http":
        figures_by_server = asyncio.run(
            compare_http(
                args.rounds, args.seconds, args.warmup, progress=sys.stderr, loop=args.loop
            )
        )
        print_http_table(figures_by_server, sys.stdout)
        return
    if args.command == "http-parts":
        for part, micros in http_parts().items():
            print(f"{part}: {micros:.1f} us")
        return
    if args.command == "profile":
        print(asyncio.run(profile_server(_spec(args), args.tool, args.seconds, args.top)))
        return
    runners = {"load": _load, "idle": _idle, "large": _large, "coldstart": _coldstart}
    figures = asyncio.run(runners[args.command](args))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
