"""Many contexts at once: 1, 8, 32 and 64 Python contexts, each running a short cell back to
back, through the REST API and with `jupyter_client` alone on the same kernels, interleaved.

Usage: python benchmarks/concurrency.py [--seconds S] [--rounds R] [--counts 1,8,32,64]

Both sides run in this one process on asyncio (httpx for the API, jupyter_client's asyncio
client for the kernels), so the client costs alike. Prints runs per second, the median and
p99 of a run, the ratio of the two sides' throughput, and the server's CPU time per API run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from run import async_run, attach_async

from jupyter_interp_ext.testing import ServerProcess

CELL = "x = 20\nx * 2 + 2"


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def api_side(
    server: ServerProcess, contexts: list[str], seconds: float
) -> tuple[list[float], float]:
    """Each context runs the cell back to back for `seconds`: every run's time, and the
    server's CPU seconds meanwhile."""
    times: list[float] = []
    url = f"http://127.0.0.1:{server.port}/sandbox/api/execute/code"
    headers = {"Authorization": f"token {server.token}"}
    limits = httpx.Limits(max_connections=len(contexts), max_keepalive_connections=len(contexts))
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        end = time.perf_counter() + seconds
        cpu = server_cpu_seconds(server.process.pid)

        async def loop(context: str) -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                response = await client.post(
                    url, json={"context_id": context, "code": CELL}, headers=headers
                )
                if b"execution_complete" not in response.content[-200:]:
                    raise RuntimeError(response.text[-300:])
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(loop(c) for c in contexts))
        return times, server_cpu_seconds(server.process.pid) - cpu


async def direct_side(clients: list, seconds: float) -> list[float]:
    times: list[float] = []
    end = time.perf_counter() + seconds

    async def loop(client) -> None:
        while time.perf_counter() < end:
            started = time.perf_counter()
            await async_run(client, CELL)
            times.append(time.perf_counter() - started)

    await asyncio.gather(*(loop(c) for c in clients))
    return times


def p99(times: list[float]) -> float:
    return sorted(times)[max(0, round(0.99 * len(times)) - 1)]


async def measure(server: ServerProcess, counts: list[int], seconds: float, rounds: int) -> None:
    contexts = [server.create() for _ in range(max(counts))]
    clients = [await attach_async(server, c) for c in contexts]
    print(
        "| contexts | API runs/s | API median | API p99 | direct runs/s | direct median "
        "| direct p99 | direct / API throughput | server CPU per API run |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        api: list[float] = []
        direct: list[float] = []
        cpu = 0.0
        await api_side(server, contexts[:count], 1)  # warm: connections, caches
        for _ in range(rounds):
            times, used = await api_side(server, contexts[:count], seconds)
            api += times
            cpu += used
            direct += await direct_side(clients[:count], seconds)
        api_rate, direct_rate = len(api) / (seconds * rounds), len(direct) / (seconds * rounds)
        print(
            f"| {count} | {api_rate:.0f} | {statistics.median(api) * 1000:.1f} ms | "
            f"{p99(api) * 1000:.1f} ms | {direct_rate:.0f} | "
            f"{statistics.median(direct) * 1000:.1f} ms | {p99(direct) * 1000:.1f} ms | "
            f"{direct_rate / api_rate:.2f} | {cpu / len(api) * 1000:.2f} ms |",
            flush=True,
        )
    for client in clients:
        client.stop_channels()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--counts", default="1,8,32,64")
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess.in_folder(Path(folder))
        try:
            asyncio.run(measure(server, counts, args.seconds, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
