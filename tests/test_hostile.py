"""Hostile clients and hostile files: each test replays an attack from a security review.

Slow and silent readers, a symlink swapped under a walk, FIFOs, children that escape with
`setsid`, a single enormous print, and the smaller findings. Each failed before the fix.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import threading
import tracemalloc
from functools import partial

import pytest

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.limits import utf8_prefix
from jupyter_interp_ext.pytest_plugin import (
    alive,
    outputs,
    start_endless_run,
    wait_until,
)
from jupyter_interp_ext.testing import server_config


async def ended(api, process_id: str) -> dict | None:
    """The process's answer once it is no longer running (else None)."""
    status, info = await api.call("GET", f"api/process/{process_id}")
    return info if info["process"]["status"] != "running" else None


def active_streams() -> float:
    return metrics.ACTIVE_STREAMS._value.get()


def raw_post(
    port: int, path: str, headers: dict[str, str], body: dict, *, rcvbuf: int
) -> socket.socket:
    """A client that sends a request and then reads nothing, through a tiny receive window."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    payload = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\n{head}"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


# Keep-alives race the stalled data flush.
@pytest.mark.slow
@pytest.mark.parametrize(
    "jp_server_config",
    [
        server_config(
            InterpreterApp={"keepalive_seconds": 0.05, "write_timeout_seconds": 1.0},
            ExecutionManager={"retain_bytes_per_run": 1024 * 1024, "reconnect_grace": 0},
        )
    ],
)
async def test_a_client_that_stops_reading_cannot_wedge_its_context(
    api, python_context, jp_http_port, jp_base_url, jp_serverapp
):
    settings = jp_serverapp.web_app.settings
    context = settings["interp_context_registry"].get(python_context)
    before = active_streams()
    disconnected = metrics.EXECUTIONS.labels("python", "disconnected")
    disconnects_before = disconnected._value.get()
    sock = raw_post(
        jp_http_port,
        f"{jp_base_url}sandbox/api/execute/code",
        {"Authorization": api.headers["Authorization"]},
        {"context_id": python_context, "code": "for i in range(30000):\n    print('x' * 2048)"},
        rcvbuf=4096,
    )
    try:
        await wait_until(context.lock.locked, "the run started")
        # The server cuts the silent client off and the run stops, releasing the context.
        await wait_until(lambda: not context.lock.locked(), "the run ended", seconds=60)
        await wait_until(lambda: active_streams() == before, "the stream was closed")
    finally:
        sock.close()
    # The run waited for its silent reader once it held its budget of events (not 60 MB), and
    # was stopped when the reader was cut off and did not come back.
    assert disconnected._value.get() == disconnects_before + 1
    events = await api.run(python_context, "'still usable'", timeout_ms=10_000)
    assert events[-1]["type"] == "execution_complete"


@pytest.mark.slow
async def test_a_timeout_covers_the_wait_for_a_busy_context(api, python_context, tmp_path):
    first = await start_endless_run(api, python_context, tmp_path, timeout_ms=4000)
    waited = await api.run(python_context, "1", timeout_ms=300)
    assert waited[-1]["ename"] == "TimeoutError"
    assert "waiting for the context" in waited[-1]["evalue"]
    assert (await first)[-1]["ename"] == "TimeoutError"
    assert (await api.run(python_context, "2"))[-1]["type"] == "execution_complete"


# The follower stays attached while the output flows.
@pytest.mark.slow
@pytest.mark.parametrize(
    "jp_server_config", [server_config(InterpreterApp={"write_timeout_seconds": 600.0})]
)
async def test_a_silent_follower_of_a_fast_process_holds_bounded_memory(
    api, jp_http_port, jp_base_url, jp_serverapp
):
    status, proc = await api.call(
        "POST",
        "api/process/start",
        {"command": "head -c 200000000 /dev/zero | tr '\\0' x; echo; echo done"},
    )
    before = active_streams()
    tracemalloc.start()
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", jp_http_port))
        sock.sendall(
            f"GET {jp_base_url}sandbox/api/process/{proc['processId']}/stream HTTP/1.1\r\n"
            f"Host: localhost\r\nAuthorization: {api.headers['Authorization']}\r\n\r\n".encode()
        )
        await wait_until(lambda: active_streams() > before, "the follower attached")
        info = await wait_until(
            partial(ended, api, proc["processId"]), "the process ended", seconds=60
        )
        assert info["process"]["status"] == "completed"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 200 MB went past a follower that read nothing: the server kept the process's bounded
    # buffers (1 Mi characters a stream) and one response buffer, not the output.
    assert peak < 48 * 1024 * 1024, peak
    sock.close()
    await wait_until(lambda: active_streams() == before, "the stream ended with its client")
    status, logs = await api.call("GET", f"api/process/{proc['processId']}/logs")
    assert logs["stdout"].endswith("x\ndone\n")


async def test_a_follower_that_falls_behind_is_told_what_it_missed(api, jp_serverapp, tmp_path):
    jp_serverapp.web_app.settings["interp_process_manager"].buffer_chars = 1000
    go = tmp_path / "go"  # the output starts once the follower follows
    flood = "head -c 50000 /dev/zero | tr '\\0' y; echo"
    command = f"while [ ! -e {go} ]; do sleep 0.01; done; {flood}"
    status, proc = await api.call("POST", "api/process/start", {"command": command})
    manager = jp_serverapp.web_app.settings["interp_process_manager"]
    process = manager.get(proc["processId"])
    follower = process.follow()
    first = asyncio.ensure_future(anext(follower))
    go.touch()
    await process.done.wait()
    _, kind, text = await first
    rest = [text async for _, _, text in follower]
    received = text + "".join(rest)
    assert "characters of stdout dropped" in received
    assert received.endswith("y" * 500 + "\n")


def renameat2_exchange() -> callable:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2

    def swap(a: str, b: str) -> None:
        fn(at_fdcwd, a.encode(), at_fdcwd, b.encode(), rename_exchange)

    return swap


@pytest.mark.slow
async def test_a_symlink_swapped_in_during_a_walk_never_leads_outside(api, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("outside")
    inside = jp_root_dir / "d"
    inside.mkdir()
    (inside / "f.txt").write_text("inside")
    link = jp_root_dir / "swap"
    link.symlink_to(outside)
    swap, stop = renameat2_exchange(), threading.Event()

    def keep_swapping() -> None:
        while not stop.is_set():
            swap(str(inside), str(link))

    swapper = threading.Thread(target=keep_swapping)
    swapper.start()
    try:
        answers = []
        for i in range(200):
            answers.append(await api.call("POST", "api/read", {"path": "d/f.txt"}))
            answers.append(
                await api.call("POST", "api/write", {"path": f"d/new{i}.txt", "content": "x"})
            )
            answers.append(await api.call("POST", "api/list-files", {"path": "d"}))
    finally:
        stop.set()
        swapper.join()
    # A path that changes under the request may be refused or found missing or not to be a
    # directory at that moment; it never fails the server and never reaches outside.
    statuses = {status for status, _ in answers}
    odd = [b for s, b in answers if s not in (200, 403, 404)]
    assert all(b["code"] == "NOT_DIRECTORY" for b in odd), odd
    contents = {body["content"] for status, body in answers if status == 200 and "content" in body}
    assert contents <= {"inside"}, contents
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt"]
    assert (outside / "f.txt").read_text() == "outside"
    assert 403 in statuses  # the swap was seen and refused, not missed


async def test_fifos_are_refused_without_blocking_anything(api, jp_root_dir):
    os.mkfifo(jp_root_dir / "pipe")
    (jp_root_dir / "plain.txt").write_text("plain")
    no_writer = [api.call("POST", "api/read", {"path": "pipe"}) for _ in range(12)]
    answers = await asyncio.gather(*no_writer, api.call("POST", "api/read", {"path": "plain.txt"}))
    for status, body in answers[:-1]:
        assert (status, body["code"]) == (400, "VALIDATION_FAILED")
        assert "Not a regular file" in body["message"]
    assert answers[-1][1]["content"] == "plain"
    writer_started = threading.Event()

    def write_forever() -> None:
        with open(jp_root_dir / "pipe", "wb") as pipe:
            writer_started.set()
            try:
                for _ in range(400):
                    pipe.write(b"z" * 1024 * 1024)
            except BrokenPipeError:
                pass

    # With a writer waiting: still refused, and nothing is read from it.
    writer = threading.Thread(target=write_forever, daemon=True)
    writer.start()
    status, body = await api.call("POST", "api/read", {"path": "pipe"})
    assert status == 400
    status, events = await api.call("POST", "api/read/stream", {"path": "pipe"})
    assert events == [{**events[0], "type": "error", "code": "VALIDATION_FAILED"}]
    with open(jp_root_dir / "pipe", "rb"):  # let the writer finish: it then gets EPIPE
        pass
    writer.join(10)


@pytest.mark.slow
async def test_sessionless_timeout_kills_children_that_escaped_with_setsid(api, tmp_path):
    pidfile = tmp_path / "orphan.pid"
    command = f"(setsid sh -c 'echo $$ > {pidfile}; exec sleep 1000' &); sleep 1000"
    status, result = await api.call(
        "POST",
        "api/execute",
        {"command": command, "sessionId": "__DISABLE_SESSION__", "timeoutMs": 1000},
    )
    assert result["exitCode"] == 124
    orphan = int(pidfile.read_text())
    await wait_until(lambda: not alive(orphan), "the escaped child is gone")


async def test_a_command_is_done_when_its_own_process_exits(api, tmp_path):
    pidfile = tmp_path / "left.pid"
    command = f"sh -c 'echo $$ > {pidfile}; exec sleep 1000' & echo started"
    status, result = await api.call(
        "POST", "api/execute", {"command": command, "sessionId": "__DISABLE_SESSION__"}
    )
    assert (result["exitCode"], result["stdout"]) == (0, "started\n")
    os.kill(int(pidfile.read_text()), 9)
    status, proc = await api.call("POST", "api/process/start", {"command": command})
    info = await wait_until(partial(ended, api, proc["processId"]), "the process ended")
    assert info["process"]["status"] == "completed"
    assert alive(int(pidfile.read_text()))  # what it left behind still runs
    os.kill(int(pidfile.read_text()), 9)


async def test_deleting_a_process_kills_what_escaped_from_it(api, tmp_path):
    pidfile = tmp_path / "escaped.pid"
    command = f"(setsid sh -c 'echo $$ > {pidfile}; exec sleep 1000' &); sleep 1000"
    status, proc = await api.call("POST", "api/process/start", {"command": command})
    await wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), "it escaped")
    orphan = int(pidfile.read_text())
    status, deleted = await api.call("DELETE", f"api/process/{proc['processId']}")
    assert status == 200
    assert orphan in deleted["killedPids"] and proc["pid"] in deleted["killedPids"]
    await wait_until(lambda: not alive(orphan), "the escaped child is gone")


@pytest.mark.slow
async def test_session_timeout_and_deletion_kill_what_escaped(api, tmp_path):
    timed, kept = tmp_path / "timed.pid", tmp_path / "kept.pid"
    status, body = await api.call(
        "POST",
        "api/execute",
        {
            "command": f"(setsid sh -c 'echo $$ > {timed}; exec sleep 1000' &); sleep 1000",
            "sessionId": "s",
            "timeoutMs": 1000,
        },
    )
    assert (status, body["code"]) == (500, "COMMAND_EXECUTION_ERROR")
    await wait_until(lambda: not alive(int(timed.read_text())), "it was killed")
    status, body = await api.call(
        "POST",
        "api/execute",
        {"command": f"(setsid sh -c 'echo $$ > {kept}; exec sleep 1000' &)", "sessionId": "s"},
    )
    assert body["exitCode"] == 0
    await wait_until(lambda: kept.exists() and kept.read_text().strip(), "it escaped")
    assert alive(int(kept.read_text()))
    await api.call("POST", "api/session/delete", {"sessionId": "s"})
    await wait_until(lambda: not alive(int(kept.read_text())), "it was killed")


@pytest.mark.slow
async def test_one_enormous_print_delivers_what_fits_then_the_notice(
    api, python_context, jp_serverapp
):
    limit = 1024 * 1024 + 3
    jp_serverapp.web_app.settings["interp_execution_manager"].max_output_bytes = limit
    events = await api.run(python_context, "print('z' * 300_000_000)")
    assert outputs(events, "stdout") == "z" * limit
    notice = outputs(events, "stderr")
    assert f"{300_000_001 - limit} bytes dropped after the {limit}-byte limit" in notice
    assert events[-1]["type"] == "execution_complete"


def test_output_is_cut_on_whole_characters():
    assert utf8_prefix("aé€𝄞", 1) == "a"
    assert utf8_prefix("aé€𝄞", 2) == "a"
    assert utf8_prefix("aé€𝄞", 3) == "aé"
    assert utf8_prefix("aé€𝄞", 6) == "aé€"
    assert utf8_prefix("aé€𝄞", 10) == "aé€𝄞"


@pytest.mark.slow
async def test_a_killed_idle_kernel_is_waited_for_not_refused(api, python_context, jp_serverapp):
    await api.run(python_context, "before = 1")
    kernel = jp_serverapp.kernel_manager.get_kernel(python_context)
    os.kill(kernel.provisioner.process.pid, 9)
    await wait_until(lambda: kernel.provisioner.process.poll() is not None, "the kernel died")
    events = await api.run(python_context, "before")
    assert events[-1]["ename"] == "NameError"  # a new kernel ran it; its state was lost
    assert (await api.run(python_context, "1 + 1"))[-1]["type"] == "execution_complete"


@pytest.mark.slow
async def test_file_calls_never_create_or_wait_for_a_shell(api, jp_root_dir):
    status, _ = await api.call(
        "POST", "api/write", {"path": "a.txt", "content": "a", "sessionId": "ghost"}
    )
    assert status == 200 and (jp_root_dir / "a.txt").exists()
    status, listed = await api.call("GET", "api/session/list")
    assert "ghost" not in listed["data"]
    await api.call("POST", "api/execute", {"command": "mkdir -p w && cd w", "sessionId": "s"})
    busy = asyncio.ensure_future(
        api.call("POST", "api/execute", {"command": "sleep 5", "sessionId": "s"})
    )
    await asyncio.sleep(0)  # let the command reach the shell
    status, _ = await api.call(
        "POST", "api/write", {"path": "b.txt", "content": "b", "sessionId": "s"}
    )
    assert status == 200 and not busy.done()  # answered while the shell was busy
    assert (jp_root_dir / "w" / "b.txt").read_text() == "b"
    await busy


async def test_bodies_and_ids_that_could_hurt_are_400(api, jp_root_dir):
    deep = b'{"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, body = await api.call("POST", "api/read", raw=deep)
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    assert "nests deeper" in body["message"]
    status, body = await api.call(
        "POST", "api/process/start", {"command": "true", "processId": "a/b"}
    )
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "processId")
    status, body = await api.call(
        "POST", "api/execute", {"command": "true", "sessionId": "s" * 129}
    )
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "sessionId")
    status, body = await api.call("POST", "api/session/create", {"id": "x y"})
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "id")


async def test_file_errors_name_the_client_path_never_the_server_path(api, jp_root_dir):
    (jp_root_dir / "file.txt").write_text("x")
    (jp_root_dir / "dir").mkdir()
    (jp_root_dir / "dir" / "inner").write_text("x")
    for route, body in [
        ("write", {"path": "file.txt/below", "content": "x"}),
        ("read", {"path": "file.txt/below"}),
        ("mkdir", {"path": "file.txt/below"}),
        ("rename", {"oldPath": "dir", "newPath": "dir/inner/deeper"}),
    ]:
        status, error = await api.call("POST", f"api/{route}", body)
        assert 400 <= status < 600 and status != 500, (route, error)
        assert str(jp_root_dir) not in json.dumps(error), error
