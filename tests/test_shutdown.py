"""Stopping the server stops everything the extension started, and ends streams cleanly."""

from __future__ import annotations

import asyncio
import os


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_server_stop_leaves_no_orphans(api, jp_serverapp, jp_root_dir):
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
    pids = {
        "kernel": kernel_pid,
        "shell": int((jp_root_dir / "shell.pid").read_text()),
        "shell job": int((jp_root_dir / "job.pid").read_text()),
        "process": proc["pid"],
    }
    assert all(running(pid) for pid in pids.values()), pids
    run = asyncio.ensure_future(api.run(context, "import time\nwhile True: time.sleep(0.05)"))
    for _ in range(400):  # wait until the kernel is busy with the run
        if jp_serverapp.kernel_manager.get_kernel(context).execution_state == "busy":
            break
        await asyncio.sleep(0.025)

    await jp_serverapp._cleanup()

    events = await run
    assert events[-1]["type"] == "error"
    assert events[-1]["ename"] == "KernelShutDown"
    for _ in range(100):
        if not any(running(pid) for pid in pids.values()):
            break
        await asyncio.sleep(0.05)
    assert {name: pid for name, pid in pids.items() if running(pid)} == {}
    assert os.path.exists(jp_root_dir)
