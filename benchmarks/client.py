"""What the Python client adds to a run over raw HTTP: `1+1` through `Sandbox.run_code`, through
one bare httpx request (the HTTP library the client is built on) and through a bare keep-alive
`http.client` connection, interleaved on one context.

Usage: python benchmarks/client.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from jupyter_interp_ext.client import Sandbox
from jupyter_interp_ext.testing import ServerProcess


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as runtime:
        server = ServerProcess(Path(root), Path(runtime))
        try:
            context = server.create()
            url = f"http://127.0.0.1:{server.port}/"
            body = {"context_id": context, "code": "1+1"}
            headers = {"Authorization": f"token {server.token}"}
            with Sandbox(url, token=server.token) as sandbox, httpx.Client(headers=headers) as bare:

                def plain_httpx() -> None:
                    bare.post(f"{url}sandbox/api/execute/code", json=body).read()

                paths = {
                    "http.client": lambda: server.run(context, "1+1"),
                    "httpx request": plain_httpx,
                    "Sandbox.run_code": lambda: sandbox.run_code("1+1", context=context),
                }
                times: dict[str, list[float]] = {name: [] for name in paths}
                for _ in range(20):  # warm every path
                    for work in paths.values():
                        work()
                for _ in range(args.runs):
                    for name, work in paths.items():
                        times[name].append(timed(work))
        finally:
            server.stop()
    client = statistics.median(times["Sandbox.run_code"])
    for name, values in times.items():
        median, p99 = statistics.median(values), statistics.quantiles(values, n=100)[98]
        ratio = client / median
        print(f"{name:18} median {median:6.2f} ms   p99 {p99:6.2f} ms   client/this {ratio:.3f}")


if __name__ == "__main__":
    main()
