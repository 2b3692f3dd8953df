"""Stopping the server stops everything the extension started, and ends streams cleanly."""

from __future__ import annotations

import json
import os

import pytest
import websockets

from jupyter_interp_ext.pytest_plugin import alive, start_endless_run, wait_until

pytestmark = pytest.mark.slow  # every test here takes seconds


async def test_server_stop_leaves_no_orphans(api, jp_serverapp, jp_root_dir, tmp_path):
    context = (await api.create("python"))["contextId"]
    kernel_pid = jp_serverapp.kernel_manager.get_kernel(context).provisioner.pid
    await api.call(
        "POST",
        "api/execute",
        {"command": "sleep 300 & echo $! > job.pid; echo $$ > shell.pid", "sessionId": "s"},
    )
    status, proc = await api.call(
        "POST", "api/process/start", {"command": "sleep 300", "sessionId": "s"}
    )
    url = api.url.replace("http://", "ws://") + "/ws/pty?sessionId=s"
    async with websockets.connect(url, additional_headers=api.headers) as terminal:
        while (ready := json.loads(await terminal.recv()))["type"] != "ready":
            pass
        await terminal.send(b"sleep 300 & echo $! > terminal_job.pid\r")
        job = jp_root_dir / "terminal_job.pid"
        await wait_until(lambda: job.exists() and job.read_text().strip(), "the job's pid", 10)
    pids = {
        "kernel": kernel_pid,
        "shell": int((jp_root_dir / "shell.pid").read_text()),
        "shell job": int((jp_root_dir / "job.pid").read_text()),
        "process": proc["pid"],
        "terminal": ready["pid"],
        "terminal job": int((jp_root_dir / "terminal_job.pid").read_text()),
    }
    assert all(alive(pid) for pid in pids.values()), pids
    run = await start_endless_run(api, context, tmp_path)

    await jp_serverapp._cleanup()

    events = await run
    assert events[-1]["type"] == "error"
    assert events[-1]["ename"] == "KernelShutDown"
    await wait_until(lambda: not any(alive(pid) for pid in pids.values()), "everything stopped", 5)
    assert {name: pid for name, pid in pids.items() if alive(pid)} == {}
    assert os.path.exists(jp_root_dir)
