"""The benchmark load generator runs end to end against an iccm-network server.

These only check that the tooling works (calls flow, nothing fails); speed
figures come from ``python -m benchmarks compare``, never from tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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
