"""Where the server's time goes for one `1+1` run: a real `jupyter server` under cProfile.

Usage: python benchmarks/profile_run.py [--runs N]

Starts the server (notebooks on, as deployed) under cProfile twice: once running `1+1` N times
through the API on one context, once not at all; both stop cleanly (SIGTERM). The difference of
the two profiles is what the runs cost: the server's own CPU time per run, split by what spends
it (each function's own time, grouped by the code it belongs to), then the top functions.
cProfile slows Python code down (roughly doubling small calls), so read the shares, not the
absolute microseconds; the per-run wall time without the profiler is in benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess

WARM_UP = 20

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


def profile_server(scratch: str, runs: int) -> pstats.Stats:
    """The server's profile from its start to its stop, with `runs` runs of `1+1` between."""
    profile = str(Path(scratch, f"server-{runs}.prof"))
    launcher = (sys.executable, "-m", "cProfile", "-o", profile, "-m", "jupyter_server")
    server = ServerProcess.in_folder(Path(scratch, f"runs-{runs}"), launcher=launcher)
    try:
        context = server.create()
        for _ in range(WARM_UP + runs):
            server.run(context, "1+1")
    finally:
        server.stop()
    return pstats.Stats(profile)


def own_times(stats: pstats.Stats) -> dict[tuple[str, int, str], float]:
    """Each function's own time, without time blocked waiting for events (not work)."""
    return {
        key: own
        for key, (_, _, own, _, _) in stats.stats.items()
        if not (key[0] == "~" and "poll" in key[2])
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        # Start-up, the context and the stop cost the same in both: the difference is the runs.
        with_runs = own_times(profile_server(scratch, args.runs))
        without = own_times(profile_server(scratch, 0))
    per_function = {
        key: (own - without.get(key, 0.0)) / args.runs for key, own in with_runs.items()
    }
    totals: dict[str, float] = {}
    for (filename, _, name), seconds in per_function.items():
        group = group_of(filename, name)
        totals[group] = totals.get(group, 0.0) + seconds
    busy = sum(totals.values())
    print(f"Server CPU per `1+1` run under cProfile ({args.runs} runs; waiting excluded):")
    print("| where | µs per run | share |")
    print("|---|---|---|")
    for group, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"| {group} | {seconds * 1e6:.0f} | {seconds / busy:.0%} |")
    print(f"| total | {busy * 1e6:.0f} | |")
    print("\nTop functions (own µs per run):")
    top = sorted(per_function.items(), key=lambda item: -item[1])[:25]
    for (filename, line, name), seconds in top:
        print(f"{seconds * 1e6:8.1f}  {Path(filename).name}:{line}({name})")


if __name__ == "__main__":
    main()
