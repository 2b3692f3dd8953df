"""Load and soak with small counts (the full run is `python benchmarks/soak.py`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def test_concurrent_clients_lose_nothing_and_the_server_does_not_grow():
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--contexts",
            "4",
            "--runs",
            "8",
            "--sessions",
            "3",
            "--commands",
            "8",
            "--sequential",
            "150",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.stdout, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["problems"] == [], report
    assert done.returncode == 0, done.stderr[-2000:]
    assert (report["concurrent_runs"], report["concurrent_commands"]) == (32, 24)
