"""A sandbox per id on a real JupyterHub (pip `jupyterhub`, npm `configurable-http-proxy`,
loopback), configured by the reference deployment in deploy/: each id its own named server
with its own files, kernels and processes; the same id the same state; pause, resume, kill;
and what other users, narrower tokens and the server's own Hub token cannot reach."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_conformance import run_official_client

from jupyter_interp_ext.client import (
    AsyncSandbox,
    HubProgress,
    NotFoundException,
    PermissionDeniedError,
    Sandbox,
    SandboxError,
    get_sandbox,
)
from jupyter_interp_ext.testing import HubProcess, wait_for

pytestmark = pytest.mark.slow  # each server takes seconds to start

TESTS = Path(__file__).parent
PROXY_BIN = TESTS / "hub" / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    assert (PROXY_BIN / "configurable-http-proxy").exists(), "run `npm ci` in tests/hub first"
    running = HubProcess(
        TESTS / "hub" / "jupyterhub_config.py", tmp_path_factory.mktemp("hub"), PROXY_BIN
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> str:
    return hub.user_token("alice")


@pytest.fixture(scope="module")
def two_sandboxes(hub: HubProcess, alice: str) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Two sandboxes of alice's, running for the module's tests (made by `create`)."""
    steps: list[HubProgress] = []
    first = Sandbox.create(hub_url=hub.url, token=alice, on_progress=steps.append)
    second = Sandbox.create(hub_url=hub.url, token=alice)
    assert steps and steps[-1].ready and steps[-1].progress == 100
    yield first, second
    first.kill()
    second.kill()


def test_each_id_is_a_server_of_its_own_and_the_same_id_the_same_state(
    hub: HubProcess, alice: str, two_sandboxes: tuple[Sandbox, Sandbox]
) -> None:
    first, second = two_sandboxes
    assert first.sandbox_id != second.sandbox_id
    first.files.write("mine.txt", "first's")
    assert first.run_code("import os; state = 41; os.getcwd()").text == str(
        hub.root / "alice" / first.sandbox_id
    )
    background = first.commands.run("sleep 300", background=True)

    assert "mine.txt" not in [entry.name for entry in second.files.list(".")]
    assert background.pid not in [p.pid for p in second.commands.list()]
    second_contexts = {c.id for c in second.list_code_contexts()}
    assert second_contexts.isdisjoint(c.id for c in first.list_code_contexts())

    again = Sandbox.connect(first.sandbox_id, hub_url=hub.url, token=alice)
    assert again.run_code("state + 1").text == "42"  # the same default context
    assert background.pid in [p.pid for p in again.commands.list()]
    assert again.files.read("mine.txt") == "first's"
    again.close()

    listed = {info.sandbox_id: info.state for info in Sandbox.list(hub_url=hub.url, token=alice)}
    assert listed[first.sandbox_id] == listed[second.sandbox_id] == "running"


def test_a_paused_sandbox_comes_back_with_its_files_and_a_killed_one_is_gone(
    hub: HubProcess, alice: str
) -> None:
    sandbox = get_sandbox(hub.url, "paused-one", token=alice)  # made: there was none
    sandbox.files.write("kept.txt", "still here")
    sandbox.run_code("lost = 1")
    assert sandbox.pause() is True
    listed = {info.sandbox_id: info.state for info in Sandbox.list(hub_url=hub.url, token=alice)}
    assert listed["paused-one"] == "paused"
    # Raw HTTP meets the Hub, not the server; the client starts it again, once, by itself.
    raw = httpx.get(
        f"{hub.url}user/alice/paused-one/sandbox/api/ping",
        headers={"Authorization": f"token {alice}"},
    )
    assert raw.status_code == 302
    assert sandbox.files.read("kept.txt") == "still here"
    error = sandbox.run_code("lost").error
    assert error is not None and error.name == "NameError"  # its kernels are new

    assert sandbox.pause() is True and sandbox.pause() is False  # paused already
    back = Sandbox.connect("paused-one", hub_url=hub.url, token=alice)
    assert back.files.read("kept.txt") == "still here"
    back.kill()
    with pytest.raises(NotFoundException):  # a killed sandbox is not started again
        sandbox.files.read("kept.txt")
    sandbox.close()
    assert "paused-one" not in [i.sandbox_id for i in Sandbox.list(hub_url=hub.url, token=alice)]
    with pytest.raises(NotFoundException):
        Sandbox.connect("paused-one", hub_url=hub.url, token=alice)


def test_other_users_and_narrower_tokens_cannot_reach_a_sandbox(
    hub: HubProcess, alice: str, two_sandboxes: tuple[Sandbox, Sandbox]
) -> None:
    first, second = two_sandboxes
    bob = hub.user_token("bob")
    with pytest.raises(NotFoundException):  # bob's sandboxes are bob's servers
        Sandbox.connect(first.sandbox_id, hub_url=hub.url, token=bob)
    as_bob = Sandbox(f"{hub.url}user/alice/{first.sandbox_id}/", token=bob)
    with pytest.raises(PermissionDeniedError):
        as_bob.files.read("mine.txt")
    as_bob.close()
    for method in ("GET", "POST"):
        raw = httpx.request(
            method,
            f"{hub.url}user/alice/{first.sandbox_id}/sandbox/api/contexts",
            headers={"Authorization": f"token {bob}"},
            json={},
        )
        assert raw.status_code == 403, method

    # A token for one sandbox, as docs/deployment.md makes it: it drives that one, no other.
    server = f"alice/{first.sandbox_id}"
    only_first = hub.user_token(
        "alice", [f"access:servers!server={server}", f"servers!server={server}"]
    )
    scoped = Sandbox.connect(first.sandbox_id, hub_url=hub.url, token=only_first)
    assert scoped.run_code("1 + 1").text == "2"
    scoped.close()
    with pytest.raises(PermissionDeniedError, match="no rights on this sandbox"):
        Sandbox.connect(second.sandbox_id, hub_url=hub.url, token=only_first)
    with pytest.raises(PermissionDeniedError):
        Sandbox.create(hub_url=hub.url, token=only_first)
    other = Sandbox(f"{hub.url}user/alice/{second.sandbox_id}/", token=only_first)
    with pytest.raises(PermissionDeniedError):
        other.list_code_contexts()
    other.close()


def test_the_servers_own_hub_token_reaches_nothing_else(
    hub: HubProcess, two_sandboxes: tuple[Sandbox, Sandbox]
) -> None:
    """Kernels and shells never see the token the sandbox's server holds. A process of the
    same OS user can still read it from /proc (the deployment's separate users or containers
    close that); even then it cannot start servers or reach another sandbox."""
    first, second = two_sandboxes
    server_pid = int(first.run_code("import os; os.getppid()").text or "0")
    environ = Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
    [token] = [
        v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"JUPYTERHUB_API_TOKEN=")
    ]
    kernel_env = first.run_code("import os; '\\n'.join(f'{k}={v}' for k, v in os.environ.items())")
    for seen in (kernel_env.results[0].text or "", first.commands.run("env").stdout):
        assert "JUPYTERHUB_USER=alice" in seen  # what the Hub tells a server reaches its kernels
        assert (
            token not in seen and "JUPYTERHUB_API_TOKEN" not in seen and "JPY_API_TOKEN" not in seen
        )

    status, _ = hub.api("POST", "users/alice/servers/stolen", {}, token=token)
    assert status == 403
    status, _ = hub.api("DELETE", f"users/alice/servers/{second.sandbox_id}", token=token)
    assert status == 403
    reach = httpx.get(
        f"{hub.url}user/alice/{second.sandbox_id}/sandbox/api/contexts",
        headers={"Authorization": f"token {token}"},
    )
    assert reach.status_code == 403


def test_a_failed_start_says_why(hub: HubProcess, alice: str) -> None:
    before = Sandbox.list(hub_url=hub.url, token=alice)
    with pytest.raises(SandboxError, match="no template 'nope' here"):
        Sandbox.create(template="nope", hub_url=hub.url, token=alice)
    assert Sandbox.list(hub_url=hub.url, token=alice) == before  # nothing left behind


async def test_the_official_javascript_client_runs_in_a_hub_sandbox(
    hub: HubProcess, alice: str, two_sandboxes: tuple[Sandbox, Sandbox]
) -> None:
    first, _ = two_sandboxes
    base = f"{hub.url}user/alice/{first.sandbox_id}/sandbox"
    report = await run_official_client(base, alice, "hub.mjs")
    assert report["ping"] == "pong"
    assert report["run"]["results"] == [{"text": "42"}] and report["streamed"] == ["from the hub\n"]
    assert report["read"] == "written by node"
    assert await asyncio.to_thread(first.files.read, "hub.txt") == "written by node"


@pytest.mark.parametrize("script", ["e2b_agent.py", "e2b_lifecycle.py"])
def test_e2b_scripts_run_unchanged_against_a_hub(hub: HubProcess, alice: str, script: str) -> None:
    """Given only JUPYTERHUB_URL and JUPYTERHUB_API_TOKEN: the agent script (code with
    callbacks and envs, a chart, a DataFrame, files, a failing command) and the life-cycle one
    (create, run, files, pause, connect, kill)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTERHUB_URL=hub.url, JUPYTERHUB_API_TOKEN=alice)
    done = subprocess.run(
        [sys.executable, str(TESTS.parent / "examples" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    if script == "e2b_agent.py":
        assert "result: 42" in done.stdout and "command failed: 2" in done.stdout
    else:
        assert "result: 45" in done.stdout and "paused: True" in done.stdout
        assert "file after resume: survives a pause" in done.stdout
        assert "result after resume: 42" in done.stdout and "killed: True" in done.stdout
        created = done.stdout.split("created: ", 1)[1].split()[0]
        assert created not in [i.sandbox_id for i in Sandbox.list(hub_url=hub.url, token=alice)]


def test_the_cli_creates_acts_in_pauses_and_kills_sandboxes(hub: HubProcess, alice: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTERHUB_URL=hub.url, JUPYTERHUB_API_TOKEN=alice)

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jupyter_interp_ext.client.cli", *args]
        return subprocess.run(
            command, input=stdin, env=env, capture_output=True, text=True, timeout=300
        )

    made = cli("create")
    assert made.returncode == 0, made.stderr
    sandbox_id = made.stdout.strip()
    assert "100%" in made.stderr  # the start's progress
    assert cli("--sandbox", sandbox_id, "run", "-", stdin="kept = 20").returncode == 0
    again = cli("--sandbox", sandbox_id, "run", "-", stdin="kept * 2 + 2")
    assert again.stdout.strip() == "42"  # the sandbox's own context, across invocations
    assert cli("--sandbox", sandbox_id, "exec", "exit 3").returncode == 3
    listed = cli("list").stdout
    assert f"{sandbox_id}\trunning" in listed
    assert cli("pause", sandbox_id).returncode == 0
    assert f"{sandbox_id}\tpaused" in cli("list").stdout
    assert cli("kill", sandbox_id).returncode == 0
    assert sandbox_id not in cli("list").stdout
    refused = cli("exec", "true")  # a Hub needs a sandbox named
    assert refused.returncode == 2 and "--sandbox ID" in refused.stderr


def test_a_culled_sandbox_comes_back_with_its_files(hub: HubProcess, alice: str) -> None:
    """jupyterhub-idle-culler (as deploy/ runs it, here with a timeout of a second) stops an
    idle sandbox's server; `connect` starts it again with its files."""
    sandbox = Sandbox.create(hub_url=hub.url, token=alice)
    sandbox.files.write("survives.txt", "culled but kept")
    sandbox.close()
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": f"{hub.url}hub/api",
        "JUPYTERHUB_API_TOKEN": hub.admin_token,
    }
    culler = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=1", "--cull-every=1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                {i.sandbox_id: i.state for i in Sandbox.list(hub_url=hub.url, token=alice)}[
                    sandbox.sandbox_id
                ]
                == "paused"
            ),
            "the culler stopped the sandbox",
            interval=0.5,
        )
    finally:
        culler.terminate()
        culler.wait(30)
    back = Sandbox.connect(sandbox.sandbox_id, hub_url=hub.url, token=alice)
    assert back.files.read("survives.txt") == "culled but kept"
    back.kill()


async def test_the_async_client_on_a_hub(hub: HubProcess, alice: str) -> None:
    steps: list[HubProgress] = []

    async def progress(step: HubProgress) -> None:  # a coroutine callback is awaited
        steps.append(step)

    sandbox = await AsyncSandbox.create(hub_url=hub.url, token=alice, on_progress=progress)
    assert steps[-1].ready
    await sandbox.files.write("async.txt", "kept")
    await sandbox.run_code("value = 7")
    assert await sandbox.pause() is True
    listed = {i.sandbox_id: i.state for i in await AsyncSandbox.list(hub_url=hub.url, token=alice)}
    assert listed[sandbox.sandbox_id] == "paused"
    assert await sandbox.files.read("async.txt") == "kept"  # started again, once, by itself
    again = await AsyncSandbox.connect(sandbox.sandbox_id, hub_url=hub.url, token=alice)
    await again.run_code("value = 8")
    # Both objects are the one sandbox: the first finds the default context the second made.
    assert (await sandbox.run_code("value")).text == "8"
    assert await again.kill() is True
    await sandbox.close()
    with pytest.raises(NotFoundException):
        await AsyncSandbox.connect(sandbox.sandbox_id, hub_url=hub.url, token=alice)
