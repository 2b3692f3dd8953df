"""However a real server process is stopped, nothing it started outlives it.

Each signal an operator, a supervisor or `docker run -i` may send: SIGINT with no terminal,
SIGTERM, SIGHUP, and a second SIGINT while the server is already stopping. Before the stop the
server has Python and Deno contexts, a shell, a background process listening on a port, and a
run streaming to a client.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_interp_ext.protocol.events import ends_run
from jupyter_interp_ext.shells.process_tree import alive, descendants
from jupyter_interp_ext.testing import ServerProcess, bound_port, parse_sse, wait_for

pytestmark = pytest.mark.slow  # every test here takes seconds


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def open_run(server: ServerProcess, context_id: str) -> tuple[socket.socket, bytes]:
    """A client streaming an endless run, once the run printed its first line; and what it
    received so far."""
    body = json.dumps(
        {
            "context_id": context_id,
            "code": "import time\nprint('go', flush=True)\nwhile True: time.sleep(0.05)",
        }
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"POST /sandbox/api/execute/code HTTP/1.0\r\nHost: localhost\r\n"
        f"Authorization: token {server.token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while b'"go\\n"' not in received:
        received += sock.recv(65536)
    return sock, received


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGHUP], [signal.SIGINT, signal.SIGINT]],
    ids=["SIGINT-no-terminal", "SIGTERM", "SIGHUP", "SIGINT-twice"],
)
def test_a_stop_signal_leaves_nothing_behind(tmp_path, signals):
    server = ServerProcess.in_folder(tmp_path / "server")
    root, runtime = server.root, server.runtime
    try:
        python = server.create("python")
        server.create("javascript")
        web = server.request(
            "POST",
            "/api/process/start",
            {"command": f"{sys.executable} -m http.server 0 --bind 127.0.0.1"},
        )
        port = bound_port(json.loads(web)["pid"], "the background server")
        server.request("POST", "/api/execute", {"command": "sleep 300 &", "sessionId": "s"})
        stream, received = open_run(server, python)
        started = set(descendants(server.process.pid))
        shells_dir = Path("/tmp") / f"sandbox-shells-{server.process.pid}"
        assert shells_dir.exists() and list(runtime.glob("kernel-*.json"))

        server.process.send_signal(signals[0])
        if len(signals) > 1:  # once it stops listening, it is stopping: signal it again
            wait_for(lambda: not accepts(server.port), "the server began stopping")
            server.process.send_signal(signals[1])
        assert server.process.wait(60) is not None
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.stop()  # closes the connections (the process has ended)

    with stream:
        stream.settimeout(10)
        while chunk := stream.recv(65536):
            received += chunk
    _, _, body = received.partition(b"\r\n\r\n")  # HTTP/1.0: the body is the bare stream
    terminal = [e for e in parse_sse(body) if ends_run(e)]
    assert [e.get("ename") for e in terminal] == ["KernelShutDown"]
    assert [pid for pid in started if alive(pid)] == []
    assert not accepts(port)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again
    assert list(runtime.glob("kernel-*.json")) == []
    assert not shells_dir.exists()
    # Both contexts' notebooks say how they ended; the run cut short says so in its cell.
    notebooks = {p.name.split("-")[0]: nbformat.read(p, 4) for p in root.glob("sandbox/*.ipynb")}
    assert sorted(notebooks) == ["javascript", "python"]
    assert all("the server stopped" in nb.cells[-1].source for nb in notebooks.values())
    assert notebooks["python"].cells[-2].outputs[-1].ename == "KernelShutDown"
