"""Measure the extension against `jupyter_client` alone, interleaved in one run on one machine.

Usage: python benchmarks/run.py [--rounds N] [--out DIR]

Starts `jupyter server` with the extension on a free loopback port, then for each measurement
alternates the API and the same work done directly with `jupyter_client`, so machine noise hits
both alike. Prints a table of medians, p99 and ratios; writes `results.json` and `results.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from jupyter_interp_ext.testing import ServerProcess, bound_port

CPU_CELL = "sum(i * i for i in range(3_000_000))"


def direct_run(client: BlockingKernelClient, code: str) -> None:
    """What the API does, with jupyter_client alone: execute, read iopub to idle, get the reply."""
    msg_id = client.execute(code, stop_on_error=False)
    while True:
        msg = client.get_iopub_msg(timeout=600)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break
    while client.get_shell_msg(timeout=600)["parent_header"].get("msg_id") != msg_id:
        pass


async def attach_async(server: ServerProcess, context_id: str) -> AsyncKernelClient:
    client = AsyncKernelClient(connection_file=str(server.runtime / f"kernel-{context_id}.json"))
    client.load_connection_file()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    return client


async def async_run(client: AsyncKernelClient, code: str) -> None:
    """`direct_run` with jupyter_client's asyncio client, the kind the server uses."""
    msg_id = client.execute(code, stop_on_error=False)
    while True:
        msg = await client.get_iopub_msg(timeout=600)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break
    while (await client.get_shell_msg(timeout=600))["parent_header"].get("msg_id") != msg_id:
        pass


def run_parsed(server: ServerProcess, context_id: str, code: str) -> int:
    """A run through the API, each event parsed with orjson as it arrives; how many came."""
    conn = server.connection()
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
    conn.request(
        "POST",
        "/sandbox/api/execute/code",
        json.dumps({"context_id": context_id, "code": code}),
        headers,
    )
    response = conn.getresponse()
    buffer, scanned, events, last = bytearray(), 0, 0, {}
    while chunk := response.read1(1 << 20):
        buffer += chunk
        while (end := buffer.find(b"\n\n", scanned)) >= 0:
            block = bytes(buffer[:end])
            del buffer[: end + 2]
            scanned = 0
            last = orjson.loads(block[block.index(b"data: ") + 6 :])
            events += 1
        scanned = max(0, len(buffer) - 1)
    if last.get("type") != "execution_complete":
        raise RuntimeError(f"run failed: {last}")
    return events


def cold_start() -> tuple[float, KernelManager, BlockingKernelClient]:
    started = time.perf_counter()
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return time.perf_counter() - started, manager, client


def attach(server: ServerProcess, context_id: str) -> BlockingKernelClient:
    client = BlockingKernelClient(connection_file=str(server.runtime / f"kernel-{context_id}.json"))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def summary(name: str, api: list[float], direct: list[float], unit: str = "ms") -> dict:
    scale = 1000 if unit == "ms" else 1

    def p99(xs: list[float]) -> float:
        return sorted(xs)[max(0, round(0.99 * len(xs)) - 1)] * scale

    row = {
        "name": name,
        "unit": unit,
        "n": len(api),
        "api_median": statistics.median(api) * scale,
        "api_p99": p99(api),
        "direct_median": statistics.median(direct) * scale,
        "direct_p99": p99(direct),
    }
    row["ratio"] = row["api_median"] / row["direct_median"]
    return row


def measure(server: ServerProcess, rounds: int) -> tuple[list[dict], dict]:
    rows = []

    # Context creation from a warm pool vs a cold kernel start; first result after create.
    create, first, cold, cold_first = [], [], [], []
    for _ in range(rounds):
        server.wait_for_pool()
        started = time.perf_counter()
        context = server.create()
        create.append(time.perf_counter() - started)
        server.run(context, "1 + 1")
        first.append(time.perf_counter() - started)
        server.request("DELETE", f"/api/contexts/{context}")
        seconds, manager, client = cold_start()
        cold.append(seconds)
        cold_first.append(seconds + timed(lambda c=client: direct_run(c, "1 + 1")))
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    rows.append(summary("context create (warm pool) vs cold start", create, cold))
    rows.append(summary("create + first result", first, cold_first))

    # 1+1 round trip on the same kernel: through the API, and with a direct client. In the
    # same rounds, what the difference is made of: the same run with jupyter_client's asyncio
    # client (the server's kind), an authenticated request that does nothing, and a bare
    # Tornado handler.
    context = server.create()
    client = attach(server, context)
    loop = asyncio.new_event_loop()
    async_client = loop.run_until_complete(attach_async(server, context))
    api_rt, direct_rt, async_rt, ping_rt, bare_rt = [], [], [], [], []
    with BareTornado() as bare:
        for _ in range(max(200, rounds * 20)):
            api_rt.append(timed(lambda: server.run(context, "1 + 1")))
            direct_rt.append(timed(lambda: direct_run(client, "1 + 1")))
            async_rt.append(
                timed(lambda: loop.run_until_complete(async_run(async_client, "1 + 1")))
            )
            ping_rt.append(timed(lambda: server.request("GET", "/api/ping")))
            bare_rt.append(timed(bare.get))
    rows.append(summary("1+1 round trip", api_rt, direct_rt))
    floor = {
        "asyncio_client_1plus1_ms": statistics.median(async_rt) * 1000,
        "ping_median_ms": statistics.median(ping_rt) * 1000,
        "bare_tornado_median_ms": statistics.median(bare_rt) * 1000,
    }

    # Big outputs, parsed on both sides: the API's events as they stream in, with orjson (as a
    # client reads them), and jupyter_client's asyncio client, which parses each message.
    peaks = []
    for name, code, reps in (
        ("100,000 printed lines", "for i in range(100_000): print(i)", 5),
        ("one 50 MB print", "print('x' * 50_000_000)", 5),
        ("one 50 MB print of lines", "print('line of output text\\n' * 2_500_000)", 5),
    ):
        api_t, direct_t = [], []
        for _ in range(reps):
            server.reset_peak()
            resident = server.usage()[0]
            api_t.append(timed(lambda code=code: run_parsed(server, context, code)))
            peaks.append((name, server.peak_rss() - resident))
            direct_t.append(
                timed(lambda code=code: loop.run_until_complete(async_run(async_client, code)))
            )
        rows.append(summary(name, api_t, direct_t))
    async_client.stop_channels()
    loop.close()
    peak_50mb = max(growth for name, growth in peaks if name == "one 50 MB print")
    client.stop_channels()
    server.request("DELETE", f"/api/contexts/{context}")

    # 20 contexts running a CPU cell at once vs 20 kernels driven directly; idle cost.
    server.wait_for_pool()
    rss_before, fds_before = server.usage()
    contexts = [server.create() for _ in range(20)]
    server.wait_for_pool()
    rss_after, fds_after = server.usage()
    managers = [cold_start()[1:] for _ in range(20)]
    api_batch, direct_batch = [], []
    for _ in range(2):
        api_batch.append(
            timed(lambda: _parallel([lambda c=c: server.run(c, CPU_CELL) for c in contexts]))
        )
        direct_batch.append(
            timed(lambda: _parallel([lambda k=k: direct_run(k[1], CPU_CELL) for k in managers]))
        )
    rows.append(summary("20 concurrent CPU cells (wall time)", api_batch, direct_batch))
    for manager, client in managers:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    for context in contexts:
        server.request("DELETE", f"/api/contexts/{context}")
    idle = {
        "server_rss_per_context_kib": (rss_after - rss_before) / 20 / 1024,
        "server_fds_per_context": (fds_after - fds_before) / 20,
        "server_peak_growth_50mb_mib": peak_50mb / 2**20,
        **floor,
    }
    return rows, idle


class BareTornado:
    """A Tornado server in a child process whose one handler does nothing: the floor of any
    HTTP request, measured with the same client as the API."""

    CODE = (
        "import asyncio, sys, tornado.web\n"
        "class H(tornado.web.RequestHandler):\n"
        "    def get(self): self.write('ok')\n"
        "async def main():\n"
        "    tornado.web.Application([('/', H)]).listen(int(sys.argv[1]), '127.0.0.1')\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )

    def __enter__(self) -> BareTornado:
        self.process = subprocess.Popen([sys.executable, "-c", self.CODE, "0"])
        self.port = bound_port(self.process.pid, "the bare Tornado server", children=False)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port)
        self.get()
        return self

    def get(self) -> None:
        self.connection.request("GET", "/")
        self.connection.getresponse().read()

    def __exit__(self, *exc: object) -> None:
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def _parallel(jobs) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def report(rows: list[dict], idle: dict, out: Path) -> None:
    print(
        f"{'measurement':44} {'n':>4} {'API median':>11} {'API p99':>9} "
        f"{'direct median':>14} {'direct p99':>11} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['name']:44} {r['n']:>4} {r['api_median']:>9.2f}ms {r['api_p99']:>7.2f}ms "
            f"{r['direct_median']:>12.2f}ms {r['direct_p99']:>9.2f}ms {r['ratio']:>6.3f}"
        )
    print(
        f"server memory per idle context: {idle['server_rss_per_context_kib']:.0f} KiB; "
        f"open fds per idle context: {idle['server_fds_per_context']:.1f}"
    )
    print(
        f"server peak memory growth during one 50 MB print: "
        f"{idle['server_peak_growth_50mb_mib']:.0f} MiB"
    )
    print(
        "in the 1+1 rounds (medians): jupyter_client's asyncio client "
        f"{idle['asyncio_client_1plus1_ms']:.2f} ms; an authenticated /api/ping "
        f"{idle['ping_median_ms']:.2f} ms; a bare Tornado handler "
        f"{idle['bare_tornado_median_ms']:.2f} ms"
    )
    out.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "uname": os.uname().release,
    }
    (out / "results.json").write_text(
        json.dumps({"rows": rows, "idle": idle, "machine": machine}, indent=2)
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [r["name"] for r in rows]
    ax.barh(names, [r["ratio"] for r in rows], color="#4C72B0")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("API median / jupyter_client median (lower is better; 1.0 = parity)")
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.text(r["ratio"], i, f" {r['ratio']:.3f}", va="center")
    ax.set_title("jupyter_interp_ext vs jupyter_client alone, same machine, interleaved")
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)
    print(f"wrote {out / 'results.json'} and {out / 'results.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as runtime:
        # The pool fills from the start, as for a deployment that serves agents all day.
        server = ServerProcess(
            Path(root), Path(runtime), "--KernelPool.enabled=True", "--KernelPool.prestart=python"
        )
        try:
            rows, idle = measure(server, args.rounds)
        finally:
            server.stop()
    report(rows, idle, args.out)


if __name__ == "__main__":
    main()
