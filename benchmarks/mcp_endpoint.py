"""What the MCP endpoint adds to a run: `1+1` as an MCP `tools/call` of `run_code`, as the REST
route `POST /api/execute/code`, and with `jupyter_client` alone on the same kernel, interleaved.

Usage: python benchmarks/mcp_endpoint.py [--runs N]

Both HTTP requests go over one keep-alive connection each, as raw as a client can send them:
the MCP call is a single 2026-07-28 exchange (its headers and `_meta` envelope, no handshake),
the REST run reads the whole event stream. Prints medians and p99 and the ratios between them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from run import attach, direct_run, timed

from jupyter_interp_ext.mcp_endpoint.service import CLIENT_CAPABILITIES
from jupyter_interp_ext.mcp_endpoint.tasks import TASKS_EXTENSION
from jupyter_interp_ext.testing import ServerProcess

VERSION = "2026-07-28"


def mcp_call(server: ServerProcess, context_id: str, number: int, takes_tasks: bool) -> None:
    """`run_code` through the MCP endpoint; fails loudly unless it answers `2`. A client that
    takes tasks is answered with plain JSON, one that does not with an event stream (kept
    alive by pings while a long run goes on)."""
    capabilities = {"extensions": {TASKS_EXTENSION: {}}} if takes_tasks else {}
    body = {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {
            "name": "run_code",
            "arguments": {"code": "1+1", "context_id": context_id},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": VERSION,
                CLIENT_CAPABILITIES: capabilities,
            },
        },
    }
    headers = {
        "Authorization": f"token {server.token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "run_code",
    }
    conn = server.connection()
    conn.request("POST", "/sandbox/mcp", json.dumps(body), headers)
    response = conn.getresponse()
    answer = response.read()
    if response.status != 200 or b'"text":"2"' not in answer:  # (in either framing)
        raise RuntimeError(f"MCP call failed: {response.status} {answer[:300]!r}")


def row(name: str, times: list[float]) -> str:
    p99 = sorted(times)[max(0, round(0.99 * len(times)) - 1)]
    return f"| {name} | {len(times)} | {statistics.median(times):.2f} ms | {p99:.2f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess.in_folder(Path(folder))
        try:
            context = server.create()
            client = attach(server, context)
            work = {
                "MCP, plain JSON": lambda n: mcp_call(server, context, n, takes_tasks=True),
                "MCP, event stream": lambda n: mcp_call(server, context, n, takes_tasks=False),
                "REST": lambda n: server.run(context, "1+1"),
                "jupyter_client": lambda n: direct_run(client, "1+1"),
            }
            times: dict[str, list[float]] = {name: [] for name in work}
            for number in range(20):  # warm: imports, the endpoint's start, caches
                for do in work.values():
                    do(number)
            names, order = list(work), random.Random(0)
            for number in range(args.runs):
                # A new order each round: what one way leaves the server to finish (the
                # kernel's broadcast of a direct run, which the server reads too) falls on
                # each alike. (Turning the order only made the call after the direct run the
                # same one in three rounds of four: 0.2-0.3 ms charged to it.)
                order.shuffle(names)
                for name in names:
                    do = work[name]
                    times[name].append(timed(lambda do=do, n=number: do(n)) * 1000)
            client.stop_channels()
        finally:
            server.stop()
    print("| `1+1` through | n | median | p99 |\n|---|---|---|---|")
    for name, measured in times.items():
        print(row(name, measured))
    median = {name: statistics.median(measured) for name, measured in times.items()}
    print(f"\nREST / jupyter_client {median['REST'] / median['jupyter_client']:.3f}")
    for name in ("MCP, plain JSON", "MCP, event stream"):
        print(
            f"{name} / REST {median[name] / median['REST']:.3f} "
            f"(+{median[name] - median['REST']:.2f} ms); "
            f"/ jupyter_client {median[name] / median['jupyter_client']:.3f}"
        )


if __name__ == "__main__":
    main()
