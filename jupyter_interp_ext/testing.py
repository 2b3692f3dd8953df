"""Helpers to test and measure a server with this extension, outside the server itself.

`ServerProcess` runs a real `jupyter server` with the extension in a child process (as an
operator would: no terminal, its own port and token); `SSEParser` reads event streams the way an
EventSource does. Tests (through `jupyter_interp_ext.pytest_plugin`) and `benchmarks/` use them;
nothing here imports pytest.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def status_bytes(pid: int, field: str) -> int:
    """A memory figure of a process from /proc/<pid>/status (`VmRSS`, `VmHWM`…), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/status has no {field}")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SSEParser:
    """Server-Sent Events from bytes as they arrive: events end at a blank line, `:` lines are
    comments (keep-alives), several `data:` lines join with newlines, other fields are ignored.

    `strict` also requires this API's own framing, one `data: {json}` line per event, which is
    all the official client's parser handles."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The JSON payloads of the events completed by `chunk`."""
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *blocks, self._buffer = self._buffer.split(b"\n\n")
        return [event for block in blocks if (event := self._event(block)) is not None]

    @property
    def pending(self) -> bytes:
        """Bytes of an event not finished yet."""
        return self._buffer

    def _event(self, block: bytes) -> dict[str, Any] | None:
        data: list[str] = []
        for line in block.decode("utf-8").split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
            elif self.strict:
                raise ValueError(f"unexpected SSE line {line!r}")
        if not data:
            return None
        if self.strict and (len(data) > 1 or not block.startswith(b"data: ")):
            raise ValueError(f"an event must be one 'data: ' line: {block!r}")
        return json.loads("\n".join(data))


def parse_sse(raw: bytes, *, strict: bool = True) -> list[dict[str, Any]]:
    """Every event of a finished stream (which must end at an event's end)."""
    parser = SSEParser(strict=strict)
    events = parser.feed(raw)
    if parser.pending:
        raise ValueError(f"the stream ends inside an event: {parser.pending[-200:]!r}")
    return events


class ServerProcess:
    """A real `jupyter server` with the extension, talked to over keep-alive HTTP."""

    def __init__(
        self,
        root: Path,
        runtime: Path,
        *extra_args: str,
        launcher: Sequence[str] = (sys.executable, "-m", "jupyter_server"),
    ) -> None:
        """`launcher` starts the server (a profiler can wrap it); `extra_args` follow ours."""
        self.root = root
        self.token = secrets.token_hex(16)
        self.port = free_port()
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
        self.process = subprocess.Popen(
            [
                *launcher,
                "--allow-root",
                "--no-browser",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.log_level=WARN",
                *extra_args,
            ],
            env=env,
            stdin=subprocess.DEVNULL,  # no terminal, as under a supervisor or in a container
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.runtime = runtime
        self.local = threading.local()
        for _ in range(300):
            try:
                self.request("GET", "/api/ping")
                return
            except (OSError, http.client.HTTPException, RuntimeError):
                self.local.__dict__.pop("conn", None)
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("jupyter server did not start")

    @classmethod
    def in_folder(cls, folder: Path, *extra_args: str, **options: Any) -> ServerProcess:
        """A server serving `folder/root`, with its runtime files in `folder/runtime` (both
        made here)."""
        root, runtime = folder / "root", folder / "runtime"
        root.mkdir(parents=True)
        runtime.mkdir()
        return cls(root, runtime, *extra_args, **options)

    def connection(self) -> http.client.HTTPConnection:
        if not hasattr(self.local, "conn"):
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self.local.conn.connect()
            self.local.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.local.conn

    def request(self, method: str, path: str, body: Any = None, prefix: str = "/sandbox") -> bytes:
        conn = self.connection()
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        conn.request(method, prefix + path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data

    def create(self, language: str = "python") -> str:
        return json.loads(self.request("POST", "/api/contexts", {"language": language}))[
            "contextId"
        ]

    def run(self, context_id: str, code: str) -> bytes:
        body = self.request("POST", "/api/execute/code", {"context_id": context_id, "code": code})
        if b'"execution_complete"' not in body[-200:]:
            raise RuntimeError(f"run failed: {body[-300:]!r}")
        return body

    def pool_ready(self) -> dict[str, int]:
        return json.loads(self.request("GET", "/api/interpreter/health"))["pool"]

    def wait_for_pool(self) -> None:
        for _ in range(1200):
            pool = self.pool_ready()
            if pool.get("python", 0) >= 2:
                return
            time.sleep(0.05)
        raise RuntimeError("the kernel pool did not fill")

    def usage(self) -> tuple[int, int]:
        """Server RSS (bytes) and open file descriptors; kernels are separate processes."""
        pid = self.process.pid
        return status_bytes(pid, "VmRSS"), len(os.listdir(f"/proc/{pid}/fd"))

    def peak_rss(self) -> int:
        """The server process's peak resident bytes since it started or `reset_peak`."""
        return status_bytes(self.process.pid, "VmHWM")

    def reset_peak(self) -> None:
        """Start measuring the peak anew (Linux: writing 5 to clear_refs resets VmHWM)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
