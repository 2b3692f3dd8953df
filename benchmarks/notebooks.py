"""What each context's notebook costs: `1+1` with notebooks on and off, and how responsive the
server stays while a notebook open in a browser (JupyterLab with jupyter-collaboration) shows a
100,000-line run.

Usage: python benchmarks/notebooks.py [--rounds N] [--lines N] [--no-browser]

Part 1 starts two servers without kernel pools, one with notebooks (the default) and one with
`ContextNotebooks.enabled=False`; one context on each runs `1+1` 100 times per round, the
servers alternating (each round in the other order) so machine noise hits both. The notebook
grows by 100 cells a round, as an agent's does.

Part 2 (needs Debian's chromium and Playwright) opens a context's notebook in JupyterLab, then
runs `for i in range(N): print(i)` through the API while another connection sends `/api/ping`
every 20 ms: ping latency before and during the run, the run's own time, and when the page
showed the last line. The same run with no browser open is measured for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess

RUNS_PER_ROUND = 100
CHROMIUM = "/usr/bin/chromium"


def start(scratch: str, name: str, *extra: str) -> ServerProcess:
    return ServerProcess.in_folder(Path(scratch, name), *extra)


def ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def one_plus_one(scratch: str, rounds: int) -> None:
    servers = {
        "on": start(scratch, "on"),
        "off": start(scratch, "off", "--ContextNotebooks.enabled=False"),
    }
    try:
        contexts = {name: server.create() for name, server in servers.items()}
        runs: dict[str, list[float]] = {name: [] for name in servers}
        for number in range(rounds):
            order = list(servers) if number % 2 else list(reversed(servers))
            for name in order:
                server, context = servers[name], contexts[name]
                for _ in range(RUNS_PER_ROUND):
                    started = time.perf_counter()
                    server.run(context, "1+1")
                    runs[name].append(time.perf_counter() - started)
        on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
        print(f"1+1, {rounds * RUNS_PER_ROUND} runs each (one context; its notebook grows):")
        for name in servers:
            print(
                f"  notebooks {name:3}: median {statistics.median(runs[name]) * 1000:.2f} ms, "
                f"p99 {ms(runs[name], 0.99):.2f} ms"
            )
        print(f"  ratio on/off: {on / off:.3f}")
    finally:
        for server in servers.values():
            server.stop()


class Pinger(threading.Thread):
    """`/api/ping` every 20 ms on its own connection, keeping each answer's latency."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.latencies: list[tuple[float, float]] = []  # (when, seconds)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.perf_counter()
            self.server.request("GET", "/api/ping")
            self.latencies.append((started, time.perf_counter() - started))
            time.sleep(0.02)

    def between(self, start: float, end: float) -> list[float]:
        return [latency for when, latency in self.latencies if start <= when <= end]


def long_run(scratch: str, lines: int, browser: bool) -> None:
    server = start(scratch, f"long-{browser}")
    code = f"for i in range({lines}): print(i)"
    try:
        context = json.loads(server.request("POST", "/api/contexts", {"language": "python"}))
        server.run(context["contextId"], "1")  # the notebook exists and has a run
        playwright = page = None
        if browser:
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = chromium.new_page()
            page.goto(
                f"http://127.0.0.1:{server.port}/lab/tree/{context['notebook']}"
                f"?token={server.token}"
            )
            page.locator(".jp-OutputArea-output").first.wait_for(timeout=60_000)
        pinger = Pinger(server)
        pinger.start()
        time.sleep(2)
        began = time.perf_counter()
        server.run(context["contextId"], code)
        ran = time.perf_counter()
        shown = None
        if page is not None:
            page.locator(".jp-OutputArea-output", has_text=str(lines - 1)).first.wait_for(
                timeout=120_000
            )
            shown = time.perf_counter()
        time.sleep(1)
        pinger.stopping.set()
        pinger.join()
        # During: from the run's start until the page showed its last line (or it ended).
        idle, during = pinger.between(0, began), pinger.between(began, shown or ran)
        label = "browser open" if browser else "no browser"
        print(f"{lines:,}-line run, notebook {label}:")
        print(
            f"  run {ran - began:.2f} s"
            + (f", last line in the page {shown - began:.2f} s" if shown else "")
        )
        print(
            f"  ping idle: median {ms(idle, 0.5):.2f} ms, p99 {ms(idle, 0.99):.2f} ms; "
            f"during: median {ms(during, 0.5):.2f} ms, p99 {ms(during, 0.99):.2f} ms, "
            f"max {max(during) * 1000:.1f} ms ({len(during)} pings)"
        )
        if playwright is not None:
            playwright.stop()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        one_plus_one(scratch, args.rounds)
        long_run(scratch, args.lines, browser=False)
        if not args.no_browser:
            long_run(scratch, args.lines, browser=True)


if __name__ == "__main__":
    main()
