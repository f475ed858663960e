"""Start benchmark servers as subprocesses, find their ports, and stop them.

A server process is bounded twice: it exits when its standard input closes
(the launcher holds the pipe) and after ``--lifetime`` seconds in any case.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import venv
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from iccm_network._timeout import timeout as async_timeout

__all__ = [
    "DEFAULT_INSTALL",
    "ROOT",
    "SERVERS",
    "RunningServer",
    "ServerSpec",
    "cold_start",
    "default_install",
    "iccm_variant",
    "import_time",
    "launch",
]

ROOT = Path(__file__).resolve().parent.parent
"""The repository root, where ``python -m benchmarks...`` finds the package."""

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_LIFETIME = 300.0


@dataclass(frozen=True)
class ServerSpec:
    """How to start one kind of server.

    Args:
        name: The name shown in tables.
        module: The module run with ``python -m``.
        args: Extra command-line arguments.
        pythonpath: Directories put first on ``PYTHONPATH`` (a patched
            iccm_network, say).
        env: Extra environment variables.
        python: The interpreter; the one running the benchmark by default.
        clean_env: Start from an environment without any of the server's
            settings (``MCP_*``, ``GODOT_URL``, ``LOGGING_ENABLED``).
        log: Where the server's stderr (its log) goes, instead of the terminal.
    """

    name: str
    module: str
    args: tuple[str, ...] = ()
    pythonpath: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    clean_env: bool = False
    log: Path | None = None

    def command(self, *extra: str) -> list[str]:
        """The command line that starts this server.

        Args:
            *extra: More arguments for the server.
        """
        return [self.python or sys.executable, "-m", self.module, *self.args, *extra]

    @property
    def cwd(self) -> str:
        """Where the server starts: ``python -m`` puts this directory first on ``sys.path``."""
        return self.pythonpath[0] if self.pythonpath else str(ROOT)

    def environment(self) -> dict[str, str]:
        """The environment the server runs with."""
        env = dict(os.environ)
        if self.clean_env:
            env = {k: v for k, v in env.items() if not _setting(k)}
        path = [*self.pythonpath, str(ROOT)]
        if env.get("PYTHONPATH"):
            path.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(path)
        env.update(self.env)
        return env


def _setting(variable: str) -> bool:
    return variable.startswith("MCP_") or variable in ("GODOT_URL", "LOGGING_ENABLED")


DEFAULT_INSTALL = ROOT / ".bench" / "default-install"
"""A virtual environment with ``pip install .`` and nothing else: what a user gets."""

# The tuned server of earlier figures: quiet log, and asyncio's own loop like
# the baselines (the dev install has uvloop, which App.run would pick).
_ICCM_ENV = {"MCP_LOG_LEVEL": "WARNING", "MCP_EVENT_LOOP": "asyncio"}

SERVERS: dict[str, ServerSpec] = {
    "iccm": ServerSpec("iccm", "benchmarks.servers.iccm_app", env=_ICCM_ENV),
    # Exactly the default install and settings: no extras, no environment,
    # the stderr log at INFO that App.run sets up (written to a file).
    "default": ServerSpec(
        "default",
        "benchmarks.servers.iccm_app",
        python=str(DEFAULT_INSTALL / "bin" / "python"),
        clean_env=True,
        log=ROOT / ".bench" / "default-server.log",
    ),
    # The dev install on uvloop, otherwise default settings.
    "uvloop": ServerSpec(
        "uvloop",
        "benchmarks.servers.iccm_app",
        env={"MCP_EVENT_LOOP": "uvloop"},
        clean_env=True,
        log=ROOT / ".bench" / "uvloop-server.log",
    ),
    "raw": ServerSpec("raw", "benchmarks.servers.raw"),
    "sequential": ServerSpec("sequential", "benchmarks.servers.raw", args=("--sequential",)),
}
"""The servers ``compare`` runs: iccm-network and the two hand-written baselines."""


def default_install(progress: IO[str] | None = None) -> Path:
    """Create or refresh ``DEFAULT_INSTALL``: a venv with ``pip install ROOT``, no extras.

    The install is redone when ``pyproject.toml`` or the interpreter
    changes. The server still imports ``iccm_network`` from the source tree
    (``ROOT`` comes first on its path), so it runs the current code with
    exactly the dependencies a plain install brings.

    Args:
        progress: Where to say that it is installing.

    Returns:
        The venv's Python.
    """
    python = DEFAULT_INSTALL / "bin" / "python"
    stamp = DEFAULT_INSTALL / "pyproject.sha256"
    # Remade for another interpreter too: the venv takes the running one's version.
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + sys.version.encode()
    ).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    if progress is not None:
        print(f"installing the default install into {DEFAULT_INSTALL} ...", file=progress)
    venv.create(DEFAULT_INSTALL, clear=True, with_pip=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(digest)
    return python


_COMPILED: set[str] = set()


def _byte_compile(spec: ServerSpec) -> None:
    # pip writes a package's bytecode when it installs it, so a user's server
    # never compiles its modules at start; one served from a source tree
    # would, on every start, where PYTHONDONTWRITEBYTECODE is set.
    for root in (*spec.pythonpath, str(ROOT)):
        if root not in _COMPILED:
            package = Path(root) / "iccm_network"
            if package.is_dir():
                compileall.compile_dir(package, quiet=1)
            _COMPILED.add(root)


def _stderr(spec: ServerSpec) -> Any:
    if spec.log is None:
        return None
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    return spec.log.open("ab")


async def _start(spec: ServerSpec, *extra: str) -> asyncio.subprocess.Process:
    # The server's stdin is the pipe whose closing stops it (see _stop).
    stderr = _stderr(spec)
    try:
        return await asyncio.create_subprocess_exec(
            *spec.command("--lifetime", str(_LIFETIME), *extra),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=spec.environment(),
            cwd=spec.cwd,
        )
    finally:
        if stderr is not None:
            stderr.close()


def iccm_variant(name: str, path: str) -> ServerSpec:
    """An iccm-network server importing ``iccm_network`` from ``path`` first.

    Args:
        name: The name shown in tables.
        path: A directory holding a (patched) ``iccm_network`` package.
    """
    return ServerSpec(name, SERVERS["iccm"].module, pythonpath=(path,), env=_ICCM_ENV)


@dataclass
class RunningServer:
    """A started server process.

    Args:
        spec: What was started.
        process: The subprocess.
        port: Its port on 127.0.0.1.
    """

    spec: ServerSpec
    process: asyncio.subprocess.Process
    port: int

    @property
    def pid(self) -> int:
        """The server's process id, for ``/proc`` figures."""
        return self.process.pid

    @property
    def url(self) -> str:
        """Where to connect."""
        return f"ws://127.0.0.1:{self.port}/"


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
    if process.stdout is not None:
        await process.stdout.read()


@contextlib.asynccontextmanager
async def launch(spec: ServerSpec, *extra: str) -> AsyncIterator[RunningServer]:
    """Run a server for the ``async with`` block.

    Args:
        spec: The server to start.
        *extra: More arguments for the server.

    Raises:
        RuntimeError: The server exited or did not announce a port in time.
    """
    _byte_compile(spec)
    process = await _start(spec, *extra)
    try:
        assert process.stdout is not None
        async with async_timeout(_START_TIMEOUT):
            line = await process.stdout.readline()
        word, _, number = line.decode().partition(" ")
        if word != "PORT":
            raise RuntimeError(f"{spec.name} server did not start (exit code {process.returncode})")
        yield RunningServer(spec, process, int(number))
    finally:
        await _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def cold_start(spec: ServerSpec, extra: Sequence[str] = ()) -> float:
    """Seconds from starting the server process to its port accepting connections.

    Args:
        spec: The server to start.
        extra: More arguments for the server.

    Raises:
        RuntimeError: The port did not accept connections in time.
    """
    port = _free_port()
    _byte_compile(spec)
    started = time.perf_counter()
    process = await _start(spec, "--port", str(port), *extra)
    try:
        while not await _accepting(port):
            if process.returncode is not None or time.perf_counter() - started > _START_TIMEOUT:
                raise RuntimeError(f"{spec.name} server did not accept connections")
            await asyncio.sleep(0.002)
        return time.perf_counter() - started
    finally:
        await _stop(process)


def import_time(spec: ServerSpec) -> float:
    """Seconds that ``import iccm_network`` takes in a fresh process of ``spec``'s Python.

    Read from ``python -X importtime`` (the import alone, not the
    interpreter's start), with the bytecode written as an install writes it.

    Args:
        spec: An iccm-network server: its interpreter, path and environment.
    """
    _byte_compile(spec)
    done = subprocess.run(
        [spec.python or sys.executable, "-X", "importtime", "-c", "import iccm_network"],
        capture_output=True,
        text=True,
        check=True,
        env=spec.environment(),
        cwd=spec.cwd,
    )
    for line in reversed(done.stderr.splitlines()):
        if line.rstrip().endswith("| iccm_network"):
            return int(line.split("|")[1]) / 1e6
    raise RuntimeError("python -X importtime did not report iccm_network")
