"""Creating, listing and deleting contexts: kernels of the server's own kernel manager."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, results, start_endless_run, wait_until


@pytest.mark.slow
async def test_context_is_a_server_kernel_with_a_session_row(api, jp_fetch):
    created = await api.create("python")
    kernels = json.loads((await jp_fetch("api", "kernels")).body)
    assert created["contextId"] in [k["id"] for k in kernels]
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    row = next(s for s in sessions if s["kernel"]["id"] == created["contextId"])
    assert (row["type"], row["path"]) == ("notebook", created["notebook"])
    assert row["kernel"]["name"] == "python3"

    status, listed = await api.call("GET", "api/contexts")
    assert status == 200 and listed["success"] is True
    assert {
        "id": created["contextId"],
        "language": "python",
        "cwd": created["cwd"],
        "notebook": created["notebook"],
    } in listed["contexts"]

    status, deleted = await api.call("DELETE", f"api/contexts/{created['contextId']}")
    assert (status, deleted["contextId"]) == (200, created["contextId"])
    kernels = json.loads((await jp_fetch("api", "kernels")).body)
    assert created["contextId"] not in [k["id"] for k in kernels]
    status, listed = await api.call("GET", "api/contexts")
    assert listed["contexts"] == []


@pytest.mark.slow
async def test_cwd_and_env_vars_are_honoured(api, jp_root_dir):
    (jp_root_dir / "work").mkdir()
    created = await api.create("python", cwd="work", env_vars={"GREETING": "hé llo"})
    assert created["cwd"] == str((jp_root_dir / "work").resolve())
    events = await api.run(
        created["contextId"], "import os; print(os.getcwd()); print(os.environ['GREETING'])"
    )
    assert outputs(events, "stdout") == f"{created['cwd']}\nhé llo\n"


@pytest.mark.slow
async def test_missing_cwd_means_the_server_root(api, jp_root_dir):
    created = await api.create("python", cwd="/workspace")
    assert created["cwd"] == str(jp_root_dir.resolve())
    events = await api.run(created["contextId"], "import os; print(os.getcwd())")
    assert outputs(events, "stdout").strip() == created["cwd"]


async def test_cwd_outside_the_root_is_refused(api, tmp_path):
    status, body = await api.call("POST", "api/contexts", {"cwd": str(tmp_path)})
    assert status == 403
    assert body["code"] == "PERMISSION_DENIED" and str(tmp_path) in body["message"]
    status, body = await api.call("POST", "api/contexts", {"cwd": "../"})
    assert (status, body["code"]) == (403, "PERMISSION_DENIED")


@pytest.mark.slow
async def test_secrets_never_reach_the_kernel(api, jp_serverapp, monkeypatch):
    token = jp_serverapp.identity_provider.token
    monkeypatch.setenv("JUPYTER_TOKEN", "from-env")
    monkeypatch.setenv("MY_COPY_OF_THE_TOKEN", token)
    monkeypatch.setenv("HARMLESS", "yes")
    created = await api.create("python")
    code = (
        "import os\n"
        f"print(sorted(k for k, v in os.environ.items() if v in ({token!r}, 'from-env')))\n"
        "print(os.environ['HARMLESS'])"
    )
    events = await api.run(created["contextId"], code)
    assert outputs(events, "stdout") == "[]\nyes\n"


@pytest.mark.slow
async def test_contexts_are_isolated(api):
    first = (await api.create("python"))["contextId"]
    second = (await api.create("python"))["contextId"]
    await api.run(first, "secret = 42")
    events = await api.run(second, "secret")
    assert events[-1]["type"] == "error" and events[-1]["ename"] == "NameError"
    assert results(await api.run(first, "secret"))[0]["text"] == "42"


async def test_bad_requests_name_the_field(api):
    cases = [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"language": 3}).encode(), "language"),
        (json.dumps({"env_vars": {"A": 1}}).encode(), "env_vars.A"),
        (json.dumps({"env_vars": {"BAD NAME": "x"}}).encode(), "env_vars.BAD NAME"),
        (json.dumps({"cwd": ["x"]}).encode(), "cwd"),
    ]
    for raw, field in cases:
        status, body = await api.call("POST", "api/contexts", raw=raw)
        assert status == 400, (raw, body)
        assert body["code"] == "VALIDATION_FAILED"
        assert body["context"]["validationErrors"][0]["field"] == field
        assert body["httpStatus"] == 400 and body["timestamp"].endswith("Z")


async def test_unknown_language_names_the_available_ones(api):
    status, body = await api.call("POST", "api/contexts", {"language": "cobol"})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    for name in ("python", "javascript", "typescript", "js", "ts"):
        assert name in body["message"]


@pytest.mark.slow
async def test_aliases_and_kernelspec_names(api):
    assert (await api.create("PY"))["language"] == "python"
    assert (await api.create("python3"))["language"] == "python"
    assert (await api.create("deno-typescript"))["language"] == "typescript"


@pytest.mark.slow
async def test_parallel_creation_does_not_serialise(api):
    languages = ["javascript", "python", "typescript", "javascript", "python", "python"]
    created = await asyncio.gather(*(api.create(language) for language in languages))
    assert [c["language"] for c in created] == languages
    assert len({c["contextId"] for c in created}) == len(languages)
    ran = await asyncio.gather(*(api.run(c["contextId"], "6 * 7") for c in created))
    assert all(results(events)[0]["text"] == "42" for events in ran)


@pytest.mark.slow
async def test_deleted_contexts_leave_no_open_files(api):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    context_id = (await api.create("python"))["contextId"]  # warm up imports and sockets
    await api.call("DELETE", f"api/contexts/{context_id}")
    before = open_fds()
    for _ in range(5):
        context_id = (await api.create("python"))["contextId"]
        await api.run(context_id, "1")
        await api.call("DELETE", f"api/contexts/{context_id}")
    assert open_fds() <= before + 2


async def test_unknown_context_is_404(api):
    status, body = await api.call("DELETE", "api/contexts/nope")
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")
    assert body["message"] == "Code context 'nope' not found"


@pytest.mark.slow
async def test_kernel_shut_down_elsewhere_is_404(api, jp_fetch):
    context_id = (await api.create("python"))["contextId"]
    await jp_fetch("api", "kernels", context_id, method="DELETE")
    status, body = await api.call(
        "POST", "api/execute/code", {"context_id": context_id, "code": "1"}
    )
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")
    assert "shut down" in body["message"] and body["error"] == body["message"]
    status, listed = await api.call("GET", "api/contexts")
    assert listed["contexts"] == []


@pytest.mark.slow
async def test_dead_kernel_answers_410_not_a_hang(api, jp_serverapp):
    context_id = (await api.create("python"))["contextId"]
    kernel = jp_serverapp.kernel_manager.get_kernel(context_id)
    kernel.stop_restarter()
    os.kill(kernel.provisioner.pid, signal.SIGKILL)
    await kernel.provisioner.wait()
    status, body = await api.call(
        "POST", "api/execute/code", {"context_id": context_id, "code": "1"}
    )
    assert (status, body["code"]) == (410, "CONTEXT_TERMINATED")


@pytest.mark.slow
async def test_culled_context_answers_404(api, jp_serverapp):
    manager = jp_serverapp.kernel_manager
    manager.cull_idle_timeout, manager.cull_interval, manager.cull_connected = 1, 1, True
    manager.initialize_culler()
    context_id = (await api.create("python"))["contextId"]
    # The culler runs every second and reaps kernels idle for one.
    await wait_until(lambda: context_id not in manager, "the kernel was culled")
    status, body = await api.call(
        "POST", "api/execute/code", {"context_id": context_id, "code": "1"}
    )
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")


@pytest.mark.slow
async def test_a_context_is_interrupted_and_restarted_on_request(api, tmp_path):
    context_id = (await api.create("python", cwd=".", env_vars={"KEPT": "yes"}))["contextId"]
    await api.run(context_id, "state = 'before'")
    running = await start_endless_run(api, context_id, tmp_path)
    status, answer = await api.call("POST", f"api/contexts/{context_id}/interrupt")
    assert (status, answer["contextId"]) == (200, context_id)
    assert (await running)[-1]["ename"] == "KeyboardInterrupt"
    assert results(await api.run(context_id, "state"))[0]["text"] == "'before'"  # kept

    running = await start_endless_run(api, context_id, tmp_path)
    status, answer = await api.call("POST", f"api/contexts/{context_id}/restart")
    assert status == 200
    assert (await running)[-1]["ename"] == "KernelRestarted"
    assert (await api.run(context_id, "state"))[-1]["ename"] == "NameError"  # gone
    probe = await api.run(context_id, "import os; os.environ['KEPT']")
    assert results(probe)[0]["text"] == "'yes'"  # the environment stays
    for action in ("restart", "interrupt"):
        status, answer = await api.call("POST", f"api/contexts/nope/{action}")
        assert (status, answer["code"]) == (404, "CONTEXT_NOT_FOUND")
