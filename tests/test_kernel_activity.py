"""A context's kernel is read once: this extension's channel records the kernel's activity in
place of Jupyter Server's own watcher, so what Jupyter shows and culls by stays true."""

from __future__ import annotations

import json

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, start_endless_run, wait_until


async def kernel_model(jp_fetch, kernel_id: str) -> dict:
    response = await jp_fetch("api", "kernels", kernel_id)
    return json.loads(response.body)


async def a_person_runs(kernel, code: str) -> None:
    """Code run on the kernel by another client, as JupyterLab runs a person's cell."""
    client = kernel.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute(code, reply=True, timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()


@pytest.mark.slow
async def test_runs_through_the_api_are_the_kernel_s_activity(
    api, jp_fetch, jp_serverapp, tmp_path
):
    context_id = (await api.create("python"))["contextId"]
    kernel = jp_serverapp.kernel_manager.get_kernel(context_id)
    assert kernel._activity_stream is None  # Jupyter's watcher is closed: one reader
    before = (await kernel_model(jp_fetch, context_id))["last_activity"]
    running = await start_endless_run(api, context_id, tmp_path)
    model = await kernel_model(jp_fetch, context_id)
    assert model["execution_state"] == "busy"
    assert model["last_activity"] > before
    await api.call("POST", f"api/contexts/{context_id}/interrupt")
    await running
    await wait_until(lambda: kernel.execution_state == "idle", "the kernel is idle again")


@pytest.mark.slow
async def test_a_person_s_cell_on_the_agent_s_kernel_is_activity(api, jp_fetch, jp_serverapp):
    context_id = (await api.create("python"))["contextId"]
    kernel = jp_serverapp.kernel_manager.get_kernel(context_id)
    before = (await kernel_model(jp_fetch, context_id))["last_activity"]
    await a_person_runs(kernel, "import time; time.sleep(0.1)")
    await wait_until(lambda: kernel.execution_state == "idle", "the kernel is idle")
    assert (await kernel_model(jp_fetch, context_id))["last_activity"] > before
    # After a restart (a new channel of ours) it is still recorded, by one reader.
    status, _ = await api.call("POST", f"api/contexts/{context_id}/restart")
    assert status == 200
    assert (await api.run(context_id, "1 + 1"))[-1]["type"] == "execution_complete"
    assert kernel._activity_stream is None
    before = (await kernel_model(jp_fetch, context_id))["last_activity"]
    await a_person_runs(kernel, "x = 1")
    await wait_until(lambda: kernel.execution_state == "idle", "the kernel is idle")
    assert (await kernel_model(jp_fetch, context_id))["last_activity"] > before


@pytest.mark.slow
async def test_output_nobody_reads_is_held_no_more_than_the_socket_held(
    api, jp_serverapp, python_context
):
    kernel = jp_serverapp.kernel_manager.get_kernel(python_context)
    await a_person_runs(kernel, "for i in range(3000): print(i, flush=True)")
    context = jp_serverapp.web_app.settings["interp_context_registry"].get(python_context)
    channel = context.client.iopub_channel
    assert len(channel._messages) <= channel.socket.rcvhwm
    events = await api.run(python_context, "print('mine')")
    assert outputs(events, "stdout") == "mine\n"  # none of the person's output


@pytest.mark.slow
async def test_a_deleted_context_s_kernel_leaves_no_reader(api, jp_serverapp):
    context_id = (await api.create("python"))["contextId"]
    kernel = jp_serverapp.kernel_manager.get_kernel(context_id)
    status, _ = await api.call("DELETE", f"api/contexts/{context_id}")
    assert status == 200
    assert context_id not in jp_serverapp.kernel_manager
    assert kernel._activity_stream is None  # Jupyter's, handed back, closed at shutdown
