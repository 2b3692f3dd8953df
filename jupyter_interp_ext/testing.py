"""Helpers to test and measure a server with this extension, outside the server itself.

`ServerProcess` runs a real `jupyter server` with the extension in a child process (as an
operator would: no terminal, its own port and token); `SSEParser` reads event streams the way an
EventSource does. Tests (through `jupyter_interp_ext.pytest_plugin`) and `benchmarks/` use them;
nothing here imports pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jupyter_interp_ext.shells.process_tree import (
    alive,
    descendants,
    listening_sockets,
    ports_held,
)


def status_bytes(pid: int, field: str) -> int:
    """A memory figure of a process from /proc/<pid>/status (`VmRSS`, `VmHWM`…), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/status has no {field}")


def resident_bytes(pids: Sequence[int]) -> int:
    """Resident bytes of these processes together (those that are gone count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += status_bytes(pid, "VmRSS")
    return total


def wait_for(
    condition: Callable[[], Any], what: str, seconds: float = 60.0, interval: float = 0.05
) -> Any:
    """Poll `condition` until it returns something true, and return that (blocking: for code
    outside an event loop; tests in one use `pytest_plugin.wait_until`)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting until {what}")
        time.sleep(interval)


def bound_port(pid: int, what: str, *, children: bool = True, seconds: float = 120.0) -> int:
    """The TCP port the process `pid` (or, with `children`, one it started) listens on, once it
    does. Children are started on port 0 and bind a free port themselves: a port picked here
    and released could be taken by another process before the child binds it."""

    def port() -> int | None:
        if not alive(pid):
            raise RuntimeError(f"{what} exited before it listened")
        ports = ports_held({pid, *descendants(pid)} if children else {pid}, listening_sockets())
        return min(ports) if ports else None

    return int(wait_for(port, f"{what} listens", seconds))


def server_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """A test server's configuration: the extension on, and `sections` (by class name) on
    top. A test that needs other settings parametrizes `jp_server_config` with one of these."""
    extensions = {"jupyter_interp_ext": True, "jupyter_server_terminals": True}
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": extensions},
        # The test runner's process starts hundreds of servers: its heap is not theirs to keep.
        "InterpreterApp": {"freeze_long_lived_objects": False},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def free_port() -> int:
    """A loopback TCP port nobody listens on right now: only for a port a test must name
    before anything listens on it (watching for a server to come up, or one that never does).
    A child that serves should bind port 0 itself (`bound_port`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_http_server(
    handler: type[http.server.BaseHTTPRequestHandler],
) -> Iterator[http.server.ThreadingHTTPServer]:
    """An HTTP server on a free loopback port, serving `handler` on a thread until the block
    ends (then shut down and its socket closed)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class SSEParser:
    """Server-Sent Events from bytes as they arrive: events end at a blank line, `:` lines are
    comments (keep-alives), several `data:` lines join with newlines, `id:` is the event's id,
    other fields are ignored.

    `strict` also requires this API's own framing, one `data: {json}` line per event (after
    an `id: n` line, for events that have an id), which is all the official client's parser
    handles (it skips lines that do not start with `data: `)."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The JSON payloads of the events completed by `chunk`."""
        return [event for _, event in self.feed_numbered(chunk)]

    def feed_numbered(self, chunk: bytes) -> list[tuple[int | None, dict[str, Any]]]:
        """(id, JSON payload) of the events completed by `chunk` (None: an event without id)."""
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *blocks, self._buffer = self._buffer.split(b"\n\n")
        return [event for block in blocks if (event := self._event(block)) is not None]

    @property
    def pending(self) -> bytes:
        """Bytes of an event not finished yet."""
        return self._buffer

    def _event(self, block: bytes) -> tuple[int | None, dict[str, Any]] | None:
        data: list[str] = []
        event_id: int | None = None
        for line in block.decode("utf-8").split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = int(value)
            elif self.strict:
                raise ValueError(f"unexpected SSE line {line!r}")
        if not data:
            return None
        framing = block.split(b"\n", 1)[1] if block.startswith(b"id: ") else block
        if self.strict and (len(data) > 1 or not framing.startswith(b"data: ")):
            raise ValueError(f"an event must be one 'data: ' line: {block!r}")
        return event_id, json.loads("\n".join(data))


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
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
        self.process = subprocess.Popen(
            [
                *launcher,
                "--allow-root",
                "--no-browser",
                "--port=0",  # the server binds a free port itself
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
        self.connections: list[http.client.HTTPConnection] = []  # every thread's
        try:
            self.port = bound_port(self.process.pid, "jupyter server", children=False)
        except RuntimeError:
            self.process.kill()
            raise
        try:
            wait_for(self._answers, "jupyter server answers", seconds=60)
        except TimeoutError:
            self.process.kill()
            raise

    def _answers(self) -> bool:
        try:
            self.request("GET", "/api/ping")
            return True
        except (OSError, http.client.HTTPException, RuntimeError):
            conn = self.local.__dict__.pop("conn", None)
            if conn is not None:
                conn.close()
            return False

    @classmethod
    def in_folder(cls, folder: Path, *extra_args: str, **options: Any) -> ServerProcess:
        """A server serving `folder/root`, with its runtime files in `folder/runtime` (both
        made here)."""
        root, runtime = folder / "root", folder / "runtime"
        root.mkdir(parents=True)
        runtime.mkdir()
        return cls(root, runtime, *extra_args, **options)

    def connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection to the server."""
        if not hasattr(self.local, "conn"):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self.connections.append(conn)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = conn
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
        wait_for(lambda: self.pool_ready().get("python", 0) >= 2, "the pool filled", 60)

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
        """Stop the server and close every connection to it."""
        for conn in self.connections:
            conn.close()
        self.process.terminate()
        self.process.wait(30)


# What a soak allows the server to grow by (first runs allocate caches that are not leaks).
SOAK_MAX_FD_GROWTH = 10
SOAK_MAX_RSS_GROWTH = 32 * 1024 * 1024


def _context_worker(server: ServerProcess, index: int, runs: int, problems: list[str]) -> None:
    context = server.create()
    for i in range(runs):
        got = parse_sse(server.run(context, f"print({index}, {i})\n{index} * 1000 + {i}"))
        stdout = "".join(e["text"] for e in got if e["type"] == "stdout")
        result = [e["text"] for e in got if e["type"] == "result"]
        if stdout != f"{index} {i}\n" or result != [str(index * 1000 + i)]:
            problems.append(f"context {index} run {i}: stdout={stdout!r} results={result!r}")
    server.request("DELETE", f"/api/contexts/{context}")


def _session_worker(server: ServerProcess, index: int, commands: int, problems: list[str]) -> None:
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


def soak(
    server: ServerProcess,
    *,
    contexts: int,
    runs: int,
    sessions: int,
    commands: int,
    sequential: int,
) -> dict[str, Any]:
    """Many clients at once with every result checked, then a long sequential run: what was
    lost, mixed up or duplicated, and whether the server's descriptors or memory grew."""
    problems: list[str] = []
    threads = [
        threading.Thread(target=_context_worker, args=(server, c, runs, problems))
        for c in range(contexts)
    ]
    threads += [
        threading.Thread(target=_session_worker, args=(server, s, commands, problems))
        for s in range(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    context = server.create()
    for _ in range(50):  # warm up: first runs allocate caches that are not leaks
        server.run(context, "1 + 1")
    rss_before, fds_before = server.usage()
    for i in range(sequential):
        got = parse_sse(server.run(context, f"{i} + 1"))
        if [e.get("text") for e in got if e["type"] == "result"] != [str(i + 1)]:
            problems.append(f"sequential run {i}: {got!r}")
    rss_after, fds_after = server.usage()
    fd_growth = fds_after - fds_before
    if fd_growth > SOAK_MAX_FD_GROWTH:
        problems.append(f"open file descriptors grew by {fd_growth}")
    if rss_after - rss_before > SOAK_MAX_RSS_GROWTH:
        problems.append(f"server memory grew by {(rss_after - rss_before) // 1024} KiB")
    return {
        "concurrent_runs": contexts * runs,
        "concurrent_commands": sessions * commands,
        "sequential_runs": sequential,
        "problems": problems,
        "fd_growth": fd_growth,
        "rss_growth_kib": (rss_after - rss_before) // 1024,
    }


class HubProcess:
    """A real JupyterHub, with configurable-http-proxy, on loopback: `config` is a JupyterHub
    config file that reads its ports and folders from the SANDBOX_* variables set here (as
    tests/hub/jupyterhub_config.py does), `folder` holds its state and the sandboxes' files,
    `proxy_bin` the folder with the `configurable-http-proxy` command. An admin service's
    token (`admin_token`) makes users and their tokens."""

    def __init__(self, config: Path, folder: Path, proxy_bin: Path) -> None:
        self.folder = folder
        self.state, self.root = folder / "state", folder / "sandboxes"
        self.state.mkdir(parents=True)
        self.root.mkdir()
        self.admin_token = secrets.token_hex(16)
        self.port = free_port()  # JupyterHub takes its three ports from its configuration
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTERHUB_", "JUPYTER_SERVER_URL", "JUPYTER_TOKEN"))
        }
        env.update(
            SANDBOX_HUB_STATE=str(self.state),
            SANDBOX_ROOT=str(self.root),
            SANDBOX_SPAWNER="simple",
            SANDBOX_IDLE_TIMEOUT="0",
            SANDBOX_HUB_PORT=str(self.port),
            SANDBOX_HUB_API_PORT=str(free_port()),
            SANDBOX_PROXY_API_PORT=str(free_port()),
            SANDBOX_HUB_ADMIN_TOKEN=self.admin_token,
            SANDBOX_CHP_PATH=str(proxy_bin),
        )
        self.log = open(self.state / "hub.log", "wb")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.state,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its proxy and servers are ended with it
        )
        try:
            wait_for(self._answers, "the Hub answers", seconds=120)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the Hub exited: see {self.state / 'hub.log'}")
        try:
            return self.api("GET", "")[0] == 200
        except OSError:
            return False

    def api(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """(status, JSON answer) of one request to the Hub's REST API, as the admin service
        unless `token` is given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Authorization": f"token {token or self.admin_token}"}
            conn.request(method, f"/hub/api/{path}", json.dumps(body) if body else None, headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data.decode(errors="replace")

    def user_token(self, user: str, scopes: list[str] | None = None) -> str:
        """A token of `user` (made if new): with all its rights, or only `scopes`."""
        self.api("POST", f"users/{user}")
        body: dict[str, Any] = {"note": "tests"}
        if scopes is not None:
            body["scopes"] = scopes
        status, answer = self.api("POST", f"users/{user}/tokens", body)
        if status != 201:
            raise RuntimeError(f"no token for {user}: {status} {answer}")
        return str(answer["token"])

    def stop(self) -> None:
        """Stop the Hub; it stops its proxy and the servers it started. Whatever of them is
        left after that (in its session, which is ours) is killed."""
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        self.log.close()


class CuttingProxy:
    """A TCP proxy in front of a server that breaks connections mid-response, as a proxy's
    idle limit or a network that drops does: the answer to each request whose path contains
    `matching` is cut after the next number of bytes in `cuts` (while any are left)."""

    def __init__(self, port: int, cuts: list[int], matching: bytes) -> None:
        self.port = port
        self.cuts = list(cuts)
        self.matching = matching
        self.cuts_made = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on loopback; the proxy's port."""
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        limit: list[int | None] = [None]  # bytes the current answer may still send
        writers = (writer, upstream_writer)

        async def requests() -> None:
            while data := await reader.read(65536):
                method, _, rest = data.partition(b" ")
                if (
                    method in (b"GET", b"POST", b"DELETE")
                    and rest.split(b" ", 1)[0].find(self.matching) >= 0
                ):
                    limit[0] = self.cuts.pop(0) if self.cuts else None
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def answers() -> None:
            while data := await upstream_reader.read(65536):
                room = limit[0]
                if room is not None and len(data) >= room:
                    writer.write(data[:room])
                    await writer.drain()
                    self.cuts_made += 1
                    for side in writers:
                        side.transport.abort()
                    return
                if room is not None:
                    limit[0] = room - len(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.gather(requests(), answers())
        for side in writers:
            side.transport.abort()
