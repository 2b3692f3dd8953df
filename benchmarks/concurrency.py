"""Many contexts at once: 1, 8, 32 and 64 Python contexts, each running a short cell back to
back, through the REST API and with `jupyter_client` alone on the same kernels, interleaved.

Usage: python benchmarks/concurrency.py [--seconds S] [--rounds R] [--counts 1,8,32,64]

Both sides run in this one process on asyncio (aiohttp for the API, jupyter_client's asyncio
client for the kernels). aiohttp, not httpx: with 32 connections httpx's pool took 3.5 ms of
this process's CPU per request (1.4 ms with one), more than the server's whole share. Prints
runs per second, the median and p99 of a run, the ratio of the two sides' throughput, and
where the CPU went per run: the server, the kernels, this client process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from run import async_run, attach_async

from jupyter_interp_ext.testing import ServerProcess

CELL = "x = 20\nx * 2 + 2"


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernels_cpu_seconds(server_pid: int) -> float:
    """CPU time of the server's child processes (its kernels) so far."""
    children = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return sum(server_cpu_seconds(int(pid)) for pid in children)


class CpuShare:
    """CPU seconds the server, its kernels and this client process spent over a span."""

    def __init__(self, server: ServerProcess) -> None:
        self.pid = server.process.pid
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        pid = self.pid
        return server_cpu_seconds(pid), kernels_cpu_seconds(pid), time.process_time()

    def spent(self) -> tuple[float, float, float]:
        now = self._now()
        return tuple(b - a for a, b in zip(self.start, now, strict=True))  # type: ignore[return-value]


async def api_side(
    server: ServerProcess, contexts: list[str], seconds: float
) -> tuple[list[float], tuple[float, float, float]]:
    """Each context runs the cell back to back for `seconds`: every run's time, and the CPU
    seconds of the server, its kernels and this client meanwhile."""
    times: list[float] = []
    url = f"http://127.0.0.1:{server.port}/sandbox/api/execute/code"
    headers = {"Authorization": f"token {server.token}"}
    connector = aiohttp.TCPConnector(limit=len(contexts))
    async with aiohttp.ClientSession(connector=connector, headers=headers) as client:
        end = time.perf_counter() + seconds
        cpu = CpuShare(server)

        async def loop(context: str) -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                async with client.post(url, json={"context_id": context, "code": CELL}) as r:
                    body = await r.read()
                if b"execution_complete" not in body[-200:]:
                    raise RuntimeError(body[-300:])
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(loop(c) for c in contexts))
        return times, cpu.spent()


async def direct_side(
    server: ServerProcess, clients: list, seconds: float
) -> tuple[list[float], tuple[float, float, float]]:
    times: list[float] = []
    end = time.perf_counter() + seconds
    cpu = CpuShare(server)

    async def loop(client) -> None:
        while time.perf_counter() < end:
            started = time.perf_counter()
            await async_run(client, CELL)
            times.append(time.perf_counter() - started)

    await asyncio.gather(*(loop(c) for c in clients))
    return times, cpu.spent()


def p99(times: list[float]) -> float:
    return sorted(times)[max(0, round(0.99 * len(times)) - 1)]


async def measure(server: ServerProcess, counts: list[int], seconds: float, rounds: int) -> None:
    contexts = [server.create() for _ in range(max(counts))]
    clients = [await attach_async(server, c) for c in contexts]
    print(
        "| contexts | API runs/s | API median | API p99 | direct runs/s | direct median "
        "| direct p99 | direct / API throughput | CPU per API run: server, kernel, client "
        "| CPU per direct run: kernel, client |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        api: list[float] = []
        direct: list[float] = []
        api_cpu, direct_cpu = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
        await api_side(server, contexts[:count], 1)  # warm: connections, caches
        for _ in range(rounds):
            times, spent = await api_side(server, contexts[:count], seconds)
            api += times
            api_cpu = [a + b for a, b in zip(api_cpu, spent, strict=True)]
            times, spent = await direct_side(server, clients[:count], seconds)
            direct += times
            direct_cpu = [a + b for a, b in zip(direct_cpu, spent, strict=True)]
        api_rate, direct_rate = len(api) / (seconds * rounds), len(direct) / (seconds * rounds)
        per_api = [f"{x / len(api) * 1000:.2f}" for x in api_cpu]
        per_direct = [f"{x / len(direct) * 1000:.2f}" for x in direct_cpu[1:]]
        print(
            f"| {count} | {api_rate:.0f} | {statistics.median(api) * 1000:.1f} ms | "
            f"{p99(api) * 1000:.1f} ms | {direct_rate:.0f} | "
            f"{statistics.median(direct) * 1000:.1f} ms | {p99(direct) * 1000:.1f} ms | "
            f"{direct_rate / api_rate:.2f} | {', '.join(per_api)} ms | "
            f"{', '.join(per_direct)} ms |",
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
