"""The benchmarks run end to end against iccm-network servers.

These only check that the tooling works (calls flow, nothing fails); speed
figures come from ``python -m benchmarks compare`` and
``python -m benchmarks.godot_overhead``, never from tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(*args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    figures: dict[str, Any] = json.loads(completed.stdout)
    return figures


def test_load_generator_gets_answers_and_no_errors_from_the_iccm_server() -> None:
    figures = run_benchmark(
        "load", "--server", "iccm", "--seconds", "1", "--warmup", "0.2", "-c", "4", "-k", "4"
    )
    assert figures["errors"] == 0
    assert figures["calls"] > 0
    assert figures["server_cpu_us_per_call"] is not None


def test_large_round_trip_echoes_the_argument_back_intact() -> None:
    figures = run_benchmark("large", "--server", "iccm", "--mib", "1", "--repeats", "1")
    assert figures["errors"] == 0
    assert figures["round_trip_ms"] > 0


def test_godot_overhead_benchmark_measures_every_scenario_and_counts_every_entry() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.godot_overhead",
            "--workload",
            "noisy",
            "--rounds",
            "1",
            "--blocks",
            "1",
            "--block",
            "10",
            "--warmup",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    rows = [line.split(maxsplit=1) for line in completed.stdout.splitlines() if line.strip()]
    ratios = {row[0]: row[1] for row in rows if not row[1].startswith("{")}
    figures = {row[0]: json.loads(row[1]) for row in rows if row[1].startswith("{")}
    for scenario in ("none", "control", "up", "up-shared", "down", "hang-tcp", "hang-ws"):
        assert scenario in ratios, completed.stdout
    shipped = figures["up-shared"]
    assert shipped["delivered"] == shipped["received"] == shipped["queued"] > 0, shipped
    assert shipped["lost"] == shipped["dropped"] == 0, shipped
    # Up's Godot runs at idle priority: on a machine busy with other work it
    # can miss the reply timeout, and entries are lost; each must then be
    # counted as lost, and none that Godot received may go uncounted.
    shipped = figures["up"]
    assert shipped["connections"] > 0, shipped
    assert shipped["delivered"] <= shipped["received"], shipped
    assert shipped["received"] <= shipped["delivered"] + shipped["lost"], shipped
    assert shipped["delivered"] + shipped["lost"] <= shipped["queued"], shipped
    assert shipped["dropped"] == 0, shipped


def test_http_benchmark_gets_answers_from_iccm_and_the_sdks_http_server() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "http", "--rounds", "1", "--seconds", "0.5"]
        + ["--warmup", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["iccm", "sdk-json", "sdk-sse"]
    for row in rows[1:]:
        assert float(row.split("|")[2]) > 0  # calls/s: every server answered
    assert re.findall(r"'errors': (\d+)", completed.stderr) == ["0", "0", "0"]


def test_the_default_server_runs_the_default_install_with_no_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks.launcher import DEFAULT_INSTALL, SERVERS

    monkeypatch.setenv("MCP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("MCP_EVENT_LOOP", "uvloop")
    monkeypatch.setenv("GODOT_URL", "ws://godot:9060")
    spec = SERVERS["default"]
    environment = spec.environment()
    assert [name for name in environment if name.startswith("MCP_")] == []
    assert "GODOT_URL" not in environment
    assert spec.command()[0] == str(DEFAULT_INSTALL / "bin" / "python")
    # The tuned server keeps its settings.
    assert SERVERS["iccm"].environment()["MCP_LOG_LEVEL"] == "WARNING"


def test_compare_loads_the_servers_in_turn_and_measures_each(tmp_path: Path) -> None:
    measurements = tmp_path / "compare.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "compare", "--cases", "echo,slow", "--rounds", "1"]
        + ["--seconds", "0.3", "--warmup", "0.1", "--servers", "iccm,raw"]
        + ["--json", str(measurements)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    figures = {(row["case"], row["server"]): row for row in json.loads(measurements.read_text())}
    assert sorted(figures) == [("echo", "iccm"), ("echo", "raw"), ("slow", "iccm"), ("slow", "raw")]
    for row in figures.values():
        assert row["errors"] == 0
        assert row["calls"] > 0
        assert row["server_cpu_us_per_call"] > 0
    # The slow case holds its fast calls against the same server's calls
    # without slow ones, measured in the same slices.
    assert figures[("slow", "iccm")]["slow_calls"] > 0
    assert figures[("slow", "iccm")]["p99_ms_without_slow_calls"] > 0
