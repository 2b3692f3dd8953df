"""What chart and table data cost a kernel that never plots: kernel start and `1+1`, with them on
and off, interleaved in one run on one machine (each round in the other order).

Usage: python benchmarks/rich_data.py [--rounds N]

Starts two servers without kernel pools, one with `CodeContextRegistry.chart_data` and tables
on (the default) and one with both off; each round creates a context on each (a fresh kernel
and its prelude) and runs `1+1` 50 times on it, alternating servers so machine noise hits both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess

RUNS_PER_CONTEXT = 50


def one_round(server: ServerProcess) -> tuple[float, list[float]]:
    """Seconds to create a context, and the seconds of each `1+1` on it."""
    started = time.perf_counter()
    context = server.create()
    created = time.perf_counter() - started
    runs = []
    for _ in range(RUNS_PER_CONTEXT):
        started = time.perf_counter()
        server.run(context, "1+1")
        runs.append(time.perf_counter() - started)
    server.request("DELETE", f"/api/contexts/{context}")
    return created, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    settings = {
        "on": [],
        "off": ["--CodeContextRegistry.chart_data=False", "--CodeContextRegistry.table_max_rows=0"],
    }
    starts: dict[str, list[float]] = {name: [] for name in settings}
    runs: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as scratch:
        servers = {}
        try:
            for name, extra in settings.items():
                servers[name] = ServerProcess.in_folder(Path(scratch, name), *extra)
            for number in range(args.rounds):
                order = list(servers.items())
                for name, server in order if number % 2 else reversed(order):
                    created, timed = one_round(server)
                    starts[name].append(created)
                    runs[name].extend(timed)
        finally:
            for server in servers.values():
                server.stop()
    print(f"{'':24} {'on (default)':>14} {'off':>10} {'ratio':>7}")
    for label, data in (("kernel start + prelude", starts), ("1+1", runs)):
        on, off = statistics.median(data["on"]) * 1000, statistics.median(data["off"]) * 1000
        print(f"{label:24} {on:>12.2f}ms {off:>8.2f}ms {on / off:>7.3f}")


if __name__ == "__main__":
    main()
