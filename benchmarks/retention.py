"""Kept runs and memory: the server within its budgets while it keeps 100 runs' events.

Usage: python benchmarks/retention.py [--runs 100] [--mib-per-run 2]

Starts two servers with the extension and the same retention budgets (per run and in all) and
drives them alike: the first through `runs` runs that each print `mib-per-run` MiB (more than
the budgets can keep), the second through `runs` runs of `1 + 1` (what each kept run costs in
itself). Reports, after each batch, what the server says it keeps (`sandbox_retained_bytes`,
`sandbox_retained_executions`) and the resident size of the server process alone (its kernels
excluded), against the configured budget.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess, resident_bytes

MIB = 1024 * 1024


def gauge(server: ServerProcess, name: str) -> float:
    text = server.request("GET", "/metrics", prefix="").decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def measure(server: ServerProcess, context: str, code: str, runs: int) -> dict[str, float]:
    server.run(context, "1 + 1")  # warm: the first run's prelude and imports
    before = resident_bytes([server.process.pid])
    for _ in range(runs):
        server.run(context, code)
    return {
        "kept runs": gauge(server, "sandbox_retained_executions"),
        "kept MiB": gauge(server, "sandbox_retained_bytes") / MIB,
        "server RSS growth MiB": (resident_bytes([server.process.pid]) - before) / MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--mib-per-run", type=float, default=2.0)
    parser.add_argument("--budget-mib", type=int, default=64)
    parser.add_argument("--per-run-mib", type=int, default=8)
    args = parser.parse_args()
    budgets = (
        f"--ExecutionManager.retain_bytes={args.budget_mib * MIB}",
        f"--ExecutionManager.retain_bytes_per_run={args.per_run_mib * MIB}",
        f"--ExecutionManager.retain_runs={args.runs * 10}",
    )
    print(
        f"budgets: {args.budget_mib} MiB in all, {args.per_run_mib} MiB per run; "
        f"{args.runs} runs per batch"
    )
    chunk = 64 * 1024
    big = (
        f"import sys\nfor _ in range({int(args.mib_per_run * MIB) // chunk}):\n"
        f"    sys.stdout.write('x' * {chunk})"
    )
    with tempfile.TemporaryDirectory() as folder:
        for label, code in ((f"{args.mib_per_run:g} MiB printed each", big), ("1 + 1", "1 + 1")):
            server = ServerProcess.in_folder(Path(folder) / label.replace(" ", "_"), *budgets)
            try:
                figures = measure(server, server.create(), code, args.runs)
            finally:
                server.process.terminate()
                server.process.wait()
            print(f"{label:>24}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
