"""What every benchmark server shares: its command line and how it stops."""

from __future__ import annotations

import argparse
import asyncio
import sys

__all__ = ["ServerOptions", "announce", "parse_options", "released"]


class ServerOptions(argparse.Namespace):
    """The parsed command line of a benchmark server."""

    port: int
    tools: int
    lifetime: float
    sequential: bool
    profile: str | None


def parse_options(description: str, argv: list[str] | None = None) -> ServerOptions:
    """Parse a benchmark server's command line.

    Args:
        description: What the server is, for ``--help``.
        argv: Arguments; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--tools", type=int, default=4, help="register this many tools (>= 4)")
    parser.add_argument(
        "--lifetime", type=float, default=600.0, help="exit after this many seconds regardless"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="await each call before reading the next"
    )
    parser.add_argument("--profile", help="write cProfile statistics to this file on exit")
    return parser.parse_args(argv, namespace=ServerOptions())


def announce(port: int) -> None:
    """Tell the launcher the port is accepting connections.

    Args:
        port: The bound port.
    """
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


async def released(lifetime: float) -> None:
    """Return when standard input reaches end of file, or after ``lifetime`` seconds.

    The launcher holds the other end of the pipe, so a server never outlives
    it, even when the launcher is killed.

    Args:
        lifetime: The longest the server may run.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    async def drain() -> None:
        while await reader.read(65536):
            pass

    # Not iccm_network's timeout helper: the raw baselines import nothing of it.
    try:
        await asyncio.wait_for(drain(), lifetime)
    except asyncio.TimeoutError:
        pass
    finally:
        transport.close()
