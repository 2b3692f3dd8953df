"""What the sandbox's terminal routes add to Jupyter's own terminal socket (terminado's, which
JupyterLab uses), on the same terminal, interleaved:

- a keystroke's round trip: a line typed into `cat` until its echo and its output are back;
- a flood: 20 MB of output (`base64` of zeros) until its end marker.

Usage: python benchmarks/terminals.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from jupyter_interp_ext.testing import ServerProcess

FLOOD = "head -c 15000000 /dev/zero | base64 -w 0; echo; echo flood-$((1+1))\r"
FLOOD_END = "flood-2"
TERMINAL = "sandbox_bench"  # the terminal of the session `bench`


class Reader:
    """Everything one socket has shown, read on a thread; `until` waits for a text."""

    def __init__(self, ws: ClientConnection, decode: Callable[[Any], str | None]) -> None:
        self.ws = ws
        self.decode = decode
        self.shown: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                text = self.decode(message)
                if text:
                    with self.changed:
                        self.shown.append(text)
                        self.changed.notify_all()
        except Exception:  # the socket closed
            pass

    def mark(self) -> int:
        with self.changed:
            return len(self.shown)

    def until(self, text: str, since: int) -> None:
        """Wait until `text` is in what was shown after `since` (a `mark()`)."""
        window, seen = "", since
        with self.changed:
            while True:
                window = window[-len(text) :] + "".join(self.shown[seen:])
                seen = len(self.shown)
                if text in window:
                    return
                if not self.changed.wait(60):
                    raise TimeoutError(text)


def pty_socket(server: ServerProcess) -> tuple[ClientConnection, Reader]:
    url = f"ws://127.0.0.1:{server.port}/sandbox/ws/pty?sessionId=bench&cols=200&rows=50"
    ws = connect(url, additional_headers={"Authorization": f"token {server.token}"}, max_size=None)
    ws.__enter__()
    reader = Reader(ws, lambda m: m.decode("utf-8", "replace") if isinstance(m, bytes) else None)
    return ws, reader


def jupyter_socket(server: ServerProcess, name: str) -> tuple[ClientConnection, Reader]:
    url = f"ws://127.0.0.1:{server.port}/terminals/websocket/{name}"
    ws = connect(url, additional_headers={"Authorization": f"token {server.token}"}, max_size=None)
    ws.__enter__()

    def decode(message: Any) -> str | None:
        kind, *rest = json.loads(message)
        return str(rest[0]) if kind == "stdout" else None

    return ws, Reader(ws, decode)


def type_into(ws: ClientConnection, text: str, terminado: bool) -> None:
    ws.send(json.dumps(["stdin", text]) if terminado else text.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--floods", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess.in_folder(Path(folder))
        try:
            keys, floods = measure(server, args.runs, args.floods)
        finally:
            server.stop()
    print("| through | keystroke round trip, median | p99 | 20 MB of output, median |")
    print("|---|---|---|---|")
    for name in keys:
        times = sorted(keys[name])
        p99 = times[max(0, round(0.99 * len(times)) - 1)]
        print(
            f"| {name} | {statistics.median(times):.2f} ms | {p99:.2f} ms | "
            f"{statistics.median(floods[name]):.0f} ms |"
        )
    ours, theirs = (statistics.median(keys[n]) for n in ("/ws/pty", "terminado"))
    flood_ours, flood_theirs = (statistics.median(floods[n]) for n in ("/ws/pty", "terminado"))
    print(f"\nkeystroke /ws/pty / terminado {ours / theirs:.3f}")
    print(f"flood /ws/pty / terminado {flood_ours / flood_theirs:.3f}")


def open_socket(server: ServerProcess, name: str) -> tuple[ClientConnection, Reader]:
    """A socket of its own to the benchmark's terminal, once what the terminal kept has
    arrived (the terminal is made by the first `/ws/pty` connection)."""
    ws, reader = pty_socket(server) if name == "/ws/pty" else jupyter_socket(server, TERMINAL)
    time.sleep(0.3)
    return ws, reader


def measure(
    server: ServerProcess, runs: int, flood_runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each socket alone on the terminal (a second reader would change the first's timing),
    in alternating blocks."""
    names = ("/ws/pty", "terminado")
    ws, _ = open_socket(server, "/ws/pty")
    type_into(ws, "cat\r", False)
    ws.close()
    keys: dict[str, list[float]] = {name: [] for name in names}
    blocks = 10
    for block in range(blocks):
        for name in names:
            ws, reader = open_socket(server, name)
            for number in range(runs // blocks + 2):
                line = f"k{block}-{number}{name[1]}"
                since = reader.mark()
                start = time.perf_counter()
                type_into(ws, line + "\r", name == "terminado")
                reader.until(f"{line}\r\n{line}\r\n", since)
                if number >= 2:  # (the first after connecting is warm-up)
                    keys[name].append((time.perf_counter() - start) * 1000)
            ws.close()
    ws, _ = open_socket(server, "/ws/pty")
    type_into(ws, "\x04", False)  # cat ends
    ws.close()
    floods: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(flood_runs):
        for name in names:
            ws, reader = open_socket(server, name)
            since = reader.mark()
            start = time.perf_counter()
            type_into(ws, FLOOD, name == "terminado")
            reader.until(FLOOD_END + "\r\n", since)
            floods[name].append((time.perf_counter() - start) * 1000)
            ws.close()
    return keys, floods


if __name__ == "__main__":
    main()
