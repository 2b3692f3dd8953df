"""Where the server's time goes for one `1+1` run: a real `jupyter server` under cProfile.

Usage: python benchmarks/profile_run.py [--runs N] [--out FILE]

Starts the server (notebooks on, as deployed) under cProfile, runs `1+1` N times through the API
on one context, stops the server cleanly (SIGTERM) and prints the server's own CPU time per run,
split by what spends it (each function's own time, grouped by the code it belongs to), then the
top functions. cProfile slows Python code down (roughly doubling small calls), so read the shares,
not the absolute microseconds; the per-run wall time without the profiler is in
benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess

# Groups of code, by a piece of the file name (first match wins) and the builtins they call.
GROUPS = [
    ("dates in message headers (dateutil)", ("dateutil/", "jsonutil.py")),
    ("kernel messages: deserialise, HMAC (jupyter_client session)", ("jupyter_client/session",)),
    ("kernel messages: ZMQ sockets (pyzmq, zmq.asyncio)", ("zmq/",)),
    ("Jupyter auth and identity", ("jupyter_server/auth/", "jupyter_server/base/handlers")),
    ("Tornado: HTTP parsing, handler, writes", ("tornado/",)),
    ("this extension: handler, run, events, notebook", ("jupyter_interp_ext/",)),
    ("asyncio event loop", ("asyncio/",)),
    ("JSON (json module)", ("json/",)),
]
BUILTIN_GROUPS = [
    ("JSON (json module)", ("json", "orjson")),
    ("kernel messages: deserialise, HMAC (jupyter_client session)", ("hmac", "_hashlib")),
    ("kernel messages: ZMQ sockets (pyzmq, zmq.asyncio)", ("zmq",)),
    ("Tornado: HTTP parsing, handler, writes", ("socket", "send", "recv")),
]


def group_of(filename: str, name: str) -> str:
    for group, needles in GROUPS:
        if any(needle in filename for needle in needles):
            return group
    if filename == "~":
        for group, needles in BUILTIN_GROUPS:
            if any(needle in name for needle in needles):
                return group
    return "other (traitlets, logging, re, builtins)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--out", default=None, help="keep the cProfile file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        profile = args.out or str(Path(scratch, "server.prof"))
        root, runtime = Path(scratch, "root"), Path(scratch, "runtime")
        root.mkdir()
        runtime.mkdir()
        launcher = (sys.executable, "-m", "cProfile", "-o", profile, "-m", "jupyter_server")
        server = ServerProcess(root, runtime, "--KernelPool.sizes={}", launcher=launcher)
        try:
            context = server.create()
            for _ in range(50):
                server.run(context, "1+1")  # warm up; counted, but 50 of thousands
            for _ in range(args.runs):
                server.run(context, "1+1")
        finally:
            server.stop()
        stats = pstats.Stats(profile)
    runs = args.runs + 50
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, own, _, _) in stats.stats.items():
        if filename == "~" and "poll" in name:
            continue  # blocked waiting for events: not work
        group = group_of(filename, name)
        totals[group] = totals.get(group, 0.0) + own
    busy = sum(totals.values())
    print(f"Server CPU per `1+1` run under cProfile ({runs} runs; waiting for events excluded):")
    print("| where | µs per run | share |")
    print("|---|---|---|")
    for group, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"| {group} | {seconds / runs * 1e6:.0f} | {seconds / busy:.0%} |")
    print(f"| total | {busy / runs * 1e6:.0f} | |")
    print()
    stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
