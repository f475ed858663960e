"""Logging: stderr set up only when the application did not, and startup lines.

``configure_logging`` touches the root logger, so the tests that call it for
real run in a child interpreter; the rest read what a started server states.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from iccm_network import App
from iccm_network.logs import (
    TRACE,
    configure_logging,
    log_startup,
    parse_level,
    redact_url,
    startup_lines,
)
from iccm_network.protocol.versions import ALL_VERSIONS

CHILD_TIMEOUT = 20.0
"""Seconds for a child interpreter (a start and a few imports on a loaded machine)."""

app = App("horace", version="2.1.0")


@app.tool
def echo(text: str) -> str:
    """Echo text back.

    Args:
        text: The text.
    """
    return text


def run_child(code: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        env={**os.environ, **environment},
        check=True,
    )


# -- levels and URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("info", logging.INFO),
        ("WARN", logging.WARNING),
        ("warning", logging.WARNING),
        (" Debug ", logging.DEBUG),
        ("TRACE", TRACE),
        ("CRITICAL", logging.CRITICAL),
        ("15", 15),
        (logging.ERROR, logging.ERROR),
    ],
)
def test_levels_are_read_from_names_in_any_case_and_numbers(
    given: str | int, expected: int
) -> None:
    assert parse_level(given) == expected


def test_an_unknown_level_name_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown log level 'VERBOSE' \(expected one of TRACE"):
        parse_level("VERBOSE")


def test_app_run_refuses_a_bad_mcp_log_level_before_serving() -> None:
    with pytest.raises(ValueError, match="log_level: unknown log level 'LOUD'"):
        app.run(host="127.0.0.1", port=0, log_level="LOUD")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://godot-mcp:9060", "ws://godot-mcp:9060"),
        ("ws://ops:s3cret@godot-mcp:9060/mcp", "ws://ops:***@godot-mcp:9060/mcp"),
        ("wss://ops@godot:443", "wss://ops:***@godot:443"),
        ("godot:9060", "godot:9060"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- configure_logging, in a child interpreter ----------------------------------------


def test_configure_logging_logs_to_stderr_when_the_application_configured_nothing() -> None:
    child = run_child(
        """
        import logging
        from iccm_network.logs import configure_logging
        print(configure_logging("debug"))
        logging.getLogger("iccm_network.server").debug("connection open: peer=%s", "1.2.3.4:5")
        """
    )
    assert child.stdout == "True\n"
    assert child.stderr.endswith(" DEBUG iccm_network.server: connection open: peer=1.2.3.4:5\n")


def test_configure_logging_leaves_the_applications_own_setup_alone() -> None:
    child = run_child(
        """
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="app: %(message)s")
        from iccm_network.logs import configure_logging
        print(configure_logging("DEBUG"))
        logging.getLogger("iccm_network.server").info("not shown at WARNING")
        logging.getLogger("iccm_network.server").warning("shown the application's way")
        """
    )
    assert child.stdout == "False\napp: shown the application's way\n"
    assert child.stderr == ""


def test_configure_logging_names_the_trace_level() -> None:
    child = run_child(
        """
        import logging
        from iccm_network.logs import TRACE, configure_logging
        configure_logging("TRACE")
        logging.getLogger("iccm_network.godot").log(TRACE, "frame sent")
        """
    )
    assert child.stderr.endswith(" TRACE iccm_network.godot: frame sent\n")


def test_app_run_logs_startup_and_shutdown_to_stderr_at_mcp_log_level() -> None:
    code = """
        from iccm_network import App
        app = App("horace")
        app.run(host="127.0.0.1", port=0)
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MCP_LOG_LEVEL": "info"},
    )
    try:
        assert child.stderr is not None
        deadline = time.monotonic() + CHILD_TIMEOUT
        lines = []
        while time.monotonic() < deadline:
            line = child.stderr.readline()
            lines.append(line)
            if "listening on" in line or not line:
                break
        assert any(" INFO iccm_network.server: listening on " in line for line in lines), lines
        child.send_signal(signal.SIGTERM)
        rest = child.communicate(timeout=CHILD_TIMEOUT)[1]
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert " INFO iccm_network.server: server stopped\n" in rest


# -- startup lines ---------------------------------------------------------------------


async def test_startup_lines_state_what_is_served_where_and_how() -> None:
    async with app.serving(
        host="127.0.0.1",
        port=0,
        auth_token="let-me-in",
        allowed_origins=["https://ops.example"],
        max_message_size=1024 * 1024,
        tool_timeout=30,
    ) as server:
        lines = startup_lines(server)
        port = server.port
    text = "\n".join(lines)
    assert lines[0] == "serving horace 2.1.0 with 1 tools: echo"
    assert f"listening on ws://127.0.0.1:{port} (IPv4 loopback only)" in text
    assert f"Streamable HTTP at http://127.0.0.1:{port}/mcp" in text
    assert all(version in text for version in ALL_VERSIONS)
    assert "bearer token required" in text
    assert "let-me-in" not in text
    assert "browser origins accepted: https://ops.example" in text
    assert "max message 1 MiB" in text
    assert "tool timeout 30 s" in text
    assert "log shipping to Godot: off (GODOT_URL unset)" in text


async def test_startup_lines_say_when_every_interface_is_bound() -> None:
    async with app.serving(port=0) as server:
        lines = startup_lines(server)
        port, sockets = server.port, len(server.sockets)
    listening = [line for line in lines if line.startswith("listening on")]
    assert len(listening) == sockets >= 1
    assert any(
        f"ws://[::]:{port} (every interface, IPv6 and IPv4)" in line
        or f"ws://0.0.0.0:{port} (every IPv4 interface, no IPv6)" in line
        for line in listening
    )
    assert "any Host accepted; no bearer token" in "\n".join(lines)


async def test_startup_lines_show_godot_shipping_without_its_password() -> None:
    async with app.serving(
        host="127.0.0.1", port=0, godot_url="ws://ops:hunter2@godot-mcp:9060"
    ) as server:
        on = startup_lines(server)[-1]
    async with app.serving(
        host="127.0.0.1", port=0, godot_url="ws://godot-mcp:9060", logging_enabled=False
    ) as server:
        off = startup_lines(server)[-1]
    assert on == "log shipping to Godot: on, to ws://ops:***@godot-mcp:9060"
    assert off == "log shipping to Godot: off (LOGGING_ENABLED=false)"


async def test_log_startup_writes_each_line_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iccm_network")
    async with app.serving(host="127.0.0.1", port=0) as server:
        caplog.clear()
        log_startup(server)
        expected = startup_lines(server)
        logged = [r for r in caplog.records if r.name == "iccm_network.server"]
    assert [r.getMessage() for r in logged] == expected
    assert {r.levelno for r in logged} == {logging.INFO}


def test_configure_logging_does_nothing_when_handlers_exist() -> None:
    # pytest's own capture handlers are on the root logger here.
    assert logging.getLogger().handlers
    assert configure_logging("INFO") is False
