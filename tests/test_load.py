"""Load and soak with small counts (the full run is `python benchmarks/soak.py`)."""

from __future__ import annotations

import pytest

from jupyter_interp_ext.testing import ServerProcess, soak

pytestmark = pytest.mark.slow  # every test here takes seconds


def test_concurrent_clients_lose_nothing_and_the_server_does_not_grow(tmp_path):
    server = ServerProcess.in_folder(tmp_path / "soak")
    try:
        report = soak(server, contexts=4, runs=8, sessions=3, commands=8, sequential=150)
    finally:
        server.stop()
    assert report["problems"] == [], report
    assert (report["concurrent_runs"], report["concurrent_commands"]) == (32, 24)
