"""Contexts on a Jupyter Kernel Gateway: the same API when the server's kernels are remote."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from jupyter_server.gateway.managers import GatewayMappingKernelManager

from jupyter_interp_ext.pytest_plugin import outputs, results, wait_until
from jupyter_interp_ext.testing import bound_port, wait_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A real `jupyter kernelgateway` on loopback, with the project's kernelspecs."""
    token = secrets.token_hex(16)
    workdir = tmp_path_factory.mktemp("gateway")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.port=0",  # it binds a free port itself
            "--JupyterWebsocketPersonality.list_kernels=True",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.auth_token={token}",
        ],
        cwd=workdir,
        env={**os.environ, "JUPYTER_PATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{bound_port(process.pid, 'the kernel gateway', children=False)}"
    request = urllib.request.Request(
        f"{url}/api/kernelspecs", headers={"Authorization": f"token {token}"}
    )

    def kernelspecs() -> dict | None:
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return json.load(answer)["kernelspecs"]
        except OSError:
            return None

    try:
        specs = wait_for(kernelspecs, "the kernel gateway answers", seconds=30)
    except TimeoutError:
        process.kill()
        raise
    assert {"python3", "deno-javascript"} <= set(specs)
    yield {"url": url, "token": token}
    process.terminate()
    process.wait(30)


@pytest.fixture
def jp_server_config(gateway):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "GatewayClient": {
            "url": gateway["url"],
            "auth_token": gateway["token"],
            "request_timeout": 60.0,
        },
    }


def gateway_kernels(gateway) -> set[str]:
    request = urllib.request.Request(
        f"{gateway['url']}/api/kernels", headers={"Authorization": f"token {gateway['token']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return {k["id"] for k in json.load(answer)}


@pytest.mark.slow
async def test_python_contexts_run_on_the_gateway(api, jp_serverapp, gateway, jp_root_dir):
    assert isinstance(jp_serverapp.kernel_manager, GatewayMappingKernelManager)
    (jp_root_dir / "work").mkdir()
    created = await api.create("python", cwd="work", env_vars={"VIA": "gateway"})
    context = created["contextId"]
    assert context in gateway_kernels(gateway)

    events = await api.run(context, "import os\nprint(os.getcwd(), os.environ['VIA'])\n{'a': 1}")
    assert outputs(events, "stdout") == f"{jp_root_dir.resolve() / 'work'} gateway\n"
    assert results(events)[0]["json"] == {"a": 1}
    assert events[-1]["type"] == "execution_complete"

    timed = await api.run(
        context, "x = 1\nimport time\nwhile True: time.sleep(0.05)", timeout_ms=500
    )
    assert timed[-1]["ename"] == "TimeoutError"
    assert results(await api.run(context, "x"))[0]["text"] == "1"
    assert (await api.run(context, "1/0"))[-1]["ename"] == "ZeroDivisionError"

    status, _ = await api.call("DELETE", f"api/contexts/{context}")
    assert status == 200
    assert context not in gateway_kernels(gateway)
    status, body = await api.call("POST", "api/execute/code", {"context_id": context, "code": "1"})
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")


@pytest.mark.slow
async def test_javascript_contexts_run_on_the_gateway(api, gateway):
    created = await api.create("javascript", env_vars={"VIA": "gateway"})
    events = await api.run(
        created["contextId"],
        "console.log(Deno.env.get('VIA')); ({ ok: typeof require('fs').readFileSync })",
    )
    assert outputs(events, "stdout") == "gateway\n"
    assert results(events)[0]["json"] == {"ok": "function"}


@pytest.mark.slow
async def test_the_pool_works_through_the_gateway(api, jp_serverapp, gateway):
    pool = jp_serverapp.web_app.settings["interp_kernel_pool"]
    pool.enabled, pool.sizes, pool.prestart = True, {"python": 1}, ["python"]
    pool.fill()
    await wait_until(lambda: pool.ready_count("python") == 1, "the pool filled", seconds=60)
    pooled = pool.kernel_ids()
    assert pooled <= gateway_kernels(gateway)
    created = await api.create("python", env_vars={"FROM_POOL": "yes"})
    assert created["contextId"] in pooled
    events = await api.run(created["contextId"], "import os; print(os.environ['FROM_POOL'])")
    assert outputs(events, "stdout") == "yes\n"


@pytest.mark.slow
async def test_a_stuck_run_is_restarted_through_the_gateway(api, gateway):
    created = await api.create("javascript", env_vars={"KEPT": "after-restart"})
    events = await api.run(created["contextId"], "await new Promise(() => {})", timeout_ms=500)
    assert events[-1]["ename"] == "TimeoutError"
    assert "restarted" in events[-1]["evalue"]
    [result] = results(await api.run(created["contextId"], "Deno.env.get('KEPT')"))
    assert "after-restart" in result["text"]


@pytest.mark.slow
async def test_files_are_refused_unless_the_kernels_share_the_disk(
    api, jp_serverapp, gateway, jp_root_dir
):
    """A file written through the API behind a Gateway would land on this server's disk, not
    the kernels': refused, unless the operator says the kernels mount the same files."""
    status, body = await api.call("POST", "api/write", {"path": "note.txt", "content": "x"})
    assert (status, body["code"]) == (409, "FILES_NOT_SHARED")
    assert "kernels_share_disk" in body["message"] and not (jp_root_dir / "note.txt").exists()
    status, body = await api.call("POST", "api/list-files", {"path": "."})
    assert (status, body["code"]) == (409, "FILES_NOT_SHARED")

    # This test's Gateway runs on this machine: its kernels do see these files.
    jp_serverapp.web_app.settings["interp_file_manager"].kernels_share_disk = True
    status, _ = await api.call("POST", "api/write", {"path": "note.txt", "content": "shared"})
    assert status == 200
    context = (await api.create("python"))["contextId"]
    events = await api.run(context, "open('note.txt').read()")
    assert results(events)[0]["text"] == "'shared'"
