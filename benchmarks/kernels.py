"""Each kernel type's start time and idle memory, bare and as a context (with its prelude).

Usage: python benchmarks/kernels.py [--rounds N]

For Python (ipykernel) and JavaScript and TypeScript (Deno), alternating in one run: a bare
kernel started with `jupyter_client` until it answers, against a context created through the API
on a server without a pool (a fresh kernel, then the prelude this extension runs in it). Memory
is the resident size of the kernel's processes once idle (after one second), so the difference
is what the prelude adds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

from jupyter_interp_ext.shells.process_tree import descendants
from jupyter_interp_ext.testing import ServerProcess, resident_bytes

KERNELS = {"python": "python3", "javascript": "deno-javascript", "typescript": "deno-typescript"}
SETTLE_SECONDS = 1.0


def bare(kernel_name: str) -> tuple[float, int]:
    started = time.perf_counter()
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    seconds = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)
    pid = manager.provisioner.pid
    memory = resident_bytes([pid, *descendants(pid)])
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return seconds, memory


def as_context(server: ServerProcess, language: str) -> tuple[float, int]:
    before = set(descendants(server.process.pid))
    started = time.perf_counter()
    context = server.create(language)
    seconds = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)
    memory = resident_bytes([p for p in descendants(server.process.pid) if p not in before])
    server.request("DELETE", f"/api/contexts/{context}")
    return seconds, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess.in_folder(Path(scratch))
        try:
            for number in range(args.rounds):
                for language, kernel_name in KERNELS.items():
                    order = ["bare", "context"] if number % 2 else ["context", "bare"]
                    for how in order:
                        if how == "bare":
                            result = bare(kernel_name)
                        else:
                            result = as_context(server, language)
                        results.setdefault((language, how), []).append(result)
        finally:
            server.stop()
    print("| kernel | bare start | as a context (with prelude) | bare idle memory | as a context |")
    print("|---|---|---|---|---|")
    for language in KERNELS:
        row = [language]
        for measure in (0, 1):
            for how in ("bare", "context"):
                values = [r[measure] for r in results[(language, how)]]
                median = statistics.median(values)
                shown = f"{median * 1000:.0f} ms" if measure == 0 else f"{median / 2**20:.0f} MiB"
                row.append(shown)
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
