"""Load and soak: many clients at once with every result checked, then a long sequential run.

Usage: python benchmarks/soak.py [--contexts 8] [--runs 25] [--sessions 4] [--commands 25]
                                 [--sequential 1000]

Talks only to a server it starts itself on 127.0.0.1. Exits non-zero if any result is lost,
mixed up or duplicated, or if the server's open file descriptors or memory keep growing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess, parse_sse

MAX_FD_GROWTH = 10
MAX_RSS_GROWTH = 32 * 1024 * 1024


def context_worker(server: ServerProcess, index: int, runs: int, problems: list[str]) -> None:
    context = server.create()
    for i in range(runs):
        got = parse_sse(server.run(context, f"print({index}, {i})\n{index} * 1000 + {i}"))
        stdout = "".join(e["text"] for e in got if e["type"] == "stdout")
        result = [e["text"] for e in got if e["type"] == "result"]
        if stdout != f"{index} {i}\n" or result != [str(index * 1000 + i)]:
            problems.append(f"context {index} run {i}: stdout={stdout!r} results={result!r}")
    server.request("DELETE", f"/api/contexts/{context}")


def session_worker(server: ServerProcess, index: int, commands: int, problems: list[str]) -> None:
    session = f"soak-{index}"
    for i in range(commands):
        command = f"echo out-{index}-{i}; echo err-{index}-{i} >&2"
        answer = json.loads(
            server.request("POST", "/api/execute", {"command": command, "sessionId": session})
        )
        if (answer["stdout"], answer["stderr"]) != (f"out-{index}-{i}", f"err-{index}-{i}"):
            problems.append(
                f"session {index} command {i}: {answer['stdout']!r} {answer['stderr']!r}"
            )
    server.request("POST", "/api/session/delete", {"sessionId": session})


def soak(server: ServerProcess, args: argparse.Namespace) -> dict:
    problems: list[str] = []
    threads = [
        threading.Thread(target=context_worker, args=(server, c, args.runs, problems))
        for c in range(args.contexts)
    ]
    threads += [
        threading.Thread(target=session_worker, args=(server, s, args.commands, problems))
        for s in range(args.sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    context = server.create()
    for _ in range(50):  # warm up: first runs allocate caches that are not leaks
        server.run(context, "1 + 1")
    rss_before, fds_before = server.usage()
    for i in range(args.sequential):
        got = parse_sse(server.run(context, f"{i} + 1"))
        if [e.get("text") for e in got if e["type"] == "result"] != [str(i + 1)]:
            problems.append(f"sequential run {i}: {got!r}")
    rss_after, fds_after = server.usage()
    report = {
        "concurrent_runs": args.contexts * args.runs,
        "concurrent_commands": args.sessions * args.commands,
        "sequential_runs": args.sequential,
        "problems": problems,
        "fd_growth": fds_after - fds_before,
        "rss_growth_kib": (rss_after - rss_before) // 1024,
    }
    if report["fd_growth"] > MAX_FD_GROWTH:
        problems.append(f"open file descriptors grew by {report['fd_growth']}")
    if rss_after - rss_before > MAX_RSS_GROWTH:
        problems.append(f"server memory grew by {report['rss_growth_kib']} KiB")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--commands", type=int, default=25)
    parser.add_argument("--sequential", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as runtime:
        server = ServerProcess(Path(root), Path(runtime))
        try:
            report = soak(server, args)
        finally:
            server.stop()
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
