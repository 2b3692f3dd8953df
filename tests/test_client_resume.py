"""The Python client through connections that break: a run (or a process's output) is picked up
where it broke, with nothing lost and nothing twice; detached runs; runs by their id.

Connections are broken for real by a TCP proxy between client and server (`CuttingProxy`),
which cuts the answers to run requests after a number of bytes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from jupyter_interp_ext.client import AsyncSandbox, NotFoundError, Sandbox
from jupyter_interp_ext.pytest_plugin import wait_until
from jupyter_interp_ext.testing import CuttingProxy, server_config

STDOUT_RUN = (
    "import sys, time\n"
    "for i in range(30):\n"
    "    print(i, flush=True); print('e', i, file=sys.stderr, flush=True); time.sleep(0.01)\n"
    "'end'"
)


@pytest.fixture
def through(server, jp_http_port, jp_base_url, jp_asyncio_loop):
    """Make a proxy cutting run answers after these numbers of bytes; the client's address."""
    proxies = []

    async def make(cuts: list[int], matching: bytes = b"/api/execute/code") -> dict[str, str]:
        proxy = CuttingProxy(jp_http_port, cuts, matching)
        proxies.append(proxy)
        port = await proxy.start()
        return {**server, "server_url": f"http://127.0.0.1:{port}{jp_base_url}"}

    yield make
    for proxy in proxies:
        proxy.close()
    assert all(not proxy.cuts for proxy in proxies), "every cut was made"


def store_of(jp_serverapp):
    return jp_serverapp.web_app.settings["interp_execution_manager"].executions


async def test_a_run_whose_connection_breaks_three_times_arrives_whole(through):
    address = await through([250, 700, 90])

    def work():
        seen = []
        with Sandbox(**address) as sandbox:
            execution = sandbox.run_code(STDOUT_RUN, on_stdout=lambda m: seen.append(m.line))
        return execution, seen

    execution, seen = await asyncio.to_thread(work)
    # Joined: a kernel under load may flush one print as two chunks ("29", "\n").
    assert "".join(execution.logs.stdout) == "".join(f"{i}\n" for i in range(30))
    assert "".join(execution.logs.stderr) == "".join(f"e {i}\n" for i in range(30))
    assert seen == execution.logs.stdout
    assert execution.text == "end"


async def test_the_async_client_resumes_the_same_way(through):
    address = await through([400, 10, 1200])
    async with AsyncSandbox(**address) as sandbox:
        streamed = [item async for item in sandbox.run_code_stream(STDOUT_RUN)]
        execution = await sandbox.run_code("print('after')")
    lines = [item.line for item in streamed if getattr(item, "error", True) is False]
    assert "".join(lines) == "".join(f"{i}\n" for i in range(30))
    assert execution.logs.stdout == ["after\n"]


async def test_a_post_cut_before_its_answer_runs_the_code_once(through):
    address = await through([0])

    def work():
        with Sandbox(**address) as sandbox:
            first = sandbox.run_code("n = globals().get('n', 0) + 1\nn")
            return first, sandbox.run_code("n")

    first, again = await asyncio.to_thread(work)
    assert (first.text, again.text) == ("1", "1")


async def test_a_detached_run_is_followed_later_by_its_id(server, jp_serverapp, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, time\nprint('before', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\nprint('after')\n6 * 7"
    )

    def start():  # then close the client, keeping what it started (`with` would kill it)
        sandbox = Sandbox(**server)
        try:
            return sandbox.run_code(code, detach=True)
        finally:
            sandbox.close()

    execution_id = await asyncio.to_thread(start)
    execution = store_of(jp_serverapp).get(execution_id)
    await wait_until(lambda: execution.last_id >= 1, "it printed")
    await asyncio.sleep(0.1)  # nobody reads: a run that is not detached would now be stopping
    go.touch()

    def follow():
        sandbox = Sandbox(**server)
        try:
            items = list(sandbox.executions.stream(execution_id))
            info = sandbox.executions.get(execution_id)
            tail = list(sandbox.executions.stream(execution_id, after=info.events - 1))
            return items, info, tail
        finally:
            sandbox.close()

    items, info, tail = await asyncio.to_thread(follow)
    assert [getattr(i, "line", None) for i in items[:2]] == ["before\n", "after\n"]
    assert items[2].text == "42"
    assert (info.status, info.detached, info.context_id) == (
        "completed",
        True,
        execution.context_id,
    )
    assert len(tail) == 1 and tail[0].execution_count == items[-1].execution_count


async def test_leaving_a_run_early_stops_it_at_once(server, jp_serverapp, tmp_path):
    marker = tmp_path / "started"
    code = (
        f"import time\nopen({str(marker)!r}, 'w').close()\nprint('go', flush=True)\ntime.sleep(600)"
    )

    async with AsyncSandbox(**server) as sandbox:
        async with contextlib.aclosing(sandbox.run_code_stream(code)) as items:
            async for _ in items:
                break
        (execution,) = store_of(jp_serverapp).executions.values()
        assert execution.status == "interrupted"  # not left for the reconnect grace
        assert (await sandbox.run_code("1 + 1")).text == "2"


@pytest.mark.parametrize(
    "jp_server_config", [server_config(ExecutionManager={"retain_seconds": 0})]
)
async def test_a_run_no_longer_kept_is_not_found(server, jp_serverapp):
    async with AsyncSandbox(**server) as sandbox:
        execution_id = await sandbox.run_code("1", detach=True)
        store = store_of(jp_serverapp)
        await wait_until(lambda: execution_id not in store.executions, "it was forgotten")
        with pytest.raises(NotFoundError, match="not found"):
            await sandbox.executions.get(execution_id)
        with pytest.raises(NotFoundError):
            [item async for item in sandbox.executions.stream(execution_id)]


async def test_a_process_stream_is_resumed_too(through):
    address = await through([300, 300], matching=b"/stream")
    command = "for i in $(seq 1 40); do echo line $i; sleep 0.005; done"

    def work():
        with Sandbox(**address) as sandbox:
            handle = sandbox.commands.run(command, background=True)
            return handle.wait()

    result = await asyncio.to_thread(work)
    assert result.stdout == "".join(f"line {i}\n" for i in range(1, 41))
