"""Sandboxes on a JupyterHub: from `create`/`connect` to the first result, and their memory.

Usage: python benchmarks/hub.py [--rounds N]

Starts a real Hub with tests/hub/jupyterhub_config.py (the reference deployment, its state in a
temporary folder), then, per round and interleaved: `Sandbox.create` → first `1 + 1` (cold);
`pause` then `Sandbox.connect` → first result (paused); `Sandbox.connect` to the running
sandbox → first result (running). A cold start is split into the Hub's spawn (until the
server answers), the first context (a kernel start and its prelude) and the first run; for
comparison, the single-user server's start alone (`jupyterhub-singleuser --help` imports it
all and exits: the Python import of Jupyter Server, JupyterHub's mixin and every enabled
extension) is timed on its own. Memory is the resident size of the sandbox's server process
tree, idle and after a context ran code.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_interp_ext.client import CodeContext, Sandbox
from jupyter_interp_ext.shells.process_tree import descendants
from jupyter_interp_ext.testing import HubProcess, resident_bytes

TESTS = Path(__file__).resolve().parents[1] / "tests"


def ms(seconds: float) -> float:
    return seconds * 1000


def tree_rss(pid: int) -> int:
    return resident_bytes([pid, *descendants(pid)])


def cold(hub: HubProcess, token: str) -> tuple[dict[str, float], Sandbox, CodeContext]:
    started = time.perf_counter()
    sandbox = Sandbox.create(hub_url=hub.url, token=token)
    spawned = time.perf_counter()
    context = sandbox.create_code_context()
    contexted = time.perf_counter()
    assert sandbox.run_code("1 + 1", context=context).text == "2"
    done = time.perf_counter()
    return (
        {
            "create → first result": ms(done - started),
            "  spawn (until the server answers)": ms(spawned - started),
            "  first context (kernel + prelude)": ms(contexted - spawned),
            "  first run": ms(done - contexted),
        },
        sandbox,
        context,
    )


def resumed(hub: HubProcess, token: str, sandbox: Sandbox) -> float:
    sandbox.pause()
    started = time.perf_counter()
    again = Sandbox.connect(sandbox.sandbox_id, hub_url=hub.url, token=token)
    assert again.run_code("1 + 1").text == "2"
    elapsed = ms(time.perf_counter() - started)
    again.close()
    return elapsed


def running(hub: HubProcess, token: str, sandbox_id: str) -> float:
    started = time.perf_counter()
    again = Sandbox.connect(sandbox_id, hub_url=hub.url, token=token)
    assert again.run_code("1 + 1").text == "2"
    elapsed = ms(time.perf_counter() - started)
    again.close()
    return elapsed


def server_import() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jupyterhub.singleuser", "--help"],
        check=True,
        capture_output=True,
    )
    return ms(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    memory: dict[str, list[float]] = {"idle server": [], "with one context that ran": []}
    with tempfile.TemporaryDirectory() as folder:
        hub = HubProcess(
            TESTS / "hub" / "jupyterhub_config.py",
            Path(folder),
            TESTS / "hub" / "node_modules" / ".bin",
        )
        try:
            token = hub.user_token("bench")
            for _ in range(args.rounds):
                parts, sandbox, context = cold(hub, token)
                for name, value in parts.items():
                    figures.setdefault(name, []).append(value)
                # The sandbox's single-user server is the parent of its kernels.
                pid = int(sandbox.run_code("import os; os.getppid()", context=context).text or 0)
                memory["with one context that ran"].append(tree_rss(pid) / 2**20)
                sandbox.remove_code_context(context)
                time.sleep(1)  # the kernel's memory is given back before the idle figure
                memory["idle server"].append(tree_rss(pid) / 2**20)
                sandbox.run_code("1 + 1")  # its default context, which a connect finds
                figures.setdefault("connect → first result (running)", []).append(
                    running(hub, token, sandbox.sandbox_id)
                )
                figures.setdefault("connect → first result (paused)", []).append(
                    resumed(hub, token, sandbox)
                )
                figures.setdefault("single-user server import alone", []).append(server_import())
                sandbox.kill()
        finally:
            hub.stop()
    print(f"{args.rounds} rounds, medians (min-max), milliseconds:")
    for name, values in figures.items():
        print(f"{name:38s} {statistics.median(values):8.0f}  ({min(values):.0f}-{max(values):.0f})")
    for name, values in memory.items():
        print(f"memory, {name:30s} {statistics.median(values):8.0f} MiB")


if __name__ == "__main__":
    main()
