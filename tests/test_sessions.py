"""Execution sessions and shell commands: persistent state, isolation, robust capture."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.pytest_plugin import alive, outputs, results, wait_until


async def execute(api, command: str, session: str = "s", **body) -> dict:
    status, data = await api.call(
        "POST", "api/execute", {"command": command, "sessionId": session, **body}
    )
    assert status == 200, data
    return data


async def test_create_list_delete_and_duplicates(api, jp_root_dir):
    status, created = await api.call(
        "POST", "api/session/create", {"id": "s1", "env": {"A": "b"}, "cwd": "/workspace"}
    )
    assert status == 200
    assert (created["id"], created["containerPlacementId"]) == ("s1", None)
    assert created["data"]["cwd"] == str(jp_root_dir.resolve())
    status, again = await api.call("POST", "api/session/create", {"id": "s1"})
    assert (status, again["code"]) == (409, "SESSION_ALREADY_EXISTS")
    assert again["context"] == {"sessionId": "s1", "containerPlacementId": None}
    status, listed = await api.call("GET", "api/session/list")
    assert listed["data"] == ["s1"]
    status, deleted = await api.call("POST", "api/session/delete", {"sessionId": "s1"})
    assert (status, deleted["sessionId"]) == (200, "s1")
    status, missing = await api.call("POST", "api/session/delete", {"sessionId": "s1"})
    assert (status, missing["code"]) == (404, "SESSION_NOT_FOUND")
    status, invalid = await api.call("POST", "api/session/delete", {})
    assert (status, invalid["code"]) == (400, "VALIDATION_FAILED")


async def test_session_env_cwd_and_generated_id(api, jp_root_dir):
    (jp_root_dir / "w").mkdir()
    status, created = await api.call("POST", "api/session/create", {"env": {"A": "b"}, "cwd": "w"})
    session = created["id"]
    assert session.startswith("session_")
    result = await execute(api, "echo $A; pwd; echo $SANDBOX_VERSION $LANG $LC_ALL", session)
    assert result["stdout"] == f"b\n{jp_root_dir.resolve() / 'w'}\n{__version__} C.UTF-8 C.UTF-8"
    assert result["success"] is True
    assert (result["exitCode"], result["sessionId"]) == (0, session)


async def test_session_cwd_outside_the_root_is_refused(api, tmp_path):
    status, body = await api.call("POST", "api/session/create", {"cwd": str(tmp_path)})
    assert (status, body["code"]) == (403, "PERMISSION_DENIED")


async def test_state_persists_within_and_is_isolated_between_sessions(api, jp_root_dir):
    await execute(api, "mkdir -p d && cd d && export V=one && greet() { echo hello $1; }", "a")
    await execute(api, "export V=two", "b")
    assert (await execute(api, "pwd; echo $V; greet you", "a"))["stdout"] == (
        f"{jp_root_dir.resolve() / 'd'}\none\nhello you"
    )
    other = await execute(api, "pwd; echo $V; greet you", "b")
    assert other["stdout"] == f"{jp_root_dir.resolve()}\ntwo"
    assert "greet: command not found" in other["stderr"]
    assert other["exitCode"] == 127


async def test_unknown_and_missing_ids_are_created_implicitly(api):
    assert (await execute(api, "echo implicit", "brand-new"))["stdout"] == "implicit"
    status, data = await api.call("POST", "api/execute", {"command": "export D=1"})
    assert data["sessionId"] == "default"
    status, data = await api.call(
        "POST", "api/execute", {"command": "echo $D"}, headers={"X-Session-Id": "default"}
    )
    assert data["stdout"] == "1"
    status, data = await api.call("POST", "api/execute", {"command": "echo x", "sessionId": "  "})
    assert (status, data["code"]) == (400, "VALIDATION_FAILED")


async def test_output_rules(api):
    result = await execute(api, "printf 'a\\n\\n'; echo err >&2; cat; read x; echo $?")
    assert result["stdout"] == "a\n\n1"  # one trailing newline stripped; stdin is /dev/null
    assert result["stderr"] == "err"
    assert (await execute(api, "printf hi"))["stdout"] == "hi"
    failed = await execute(api, "echo out; echo oops >&2; false")
    assert (failed["exitCode"], failed["success"], failed["stderr"]) == (1, False, "oops")


async def test_output_that_looks_like_markers_or_binary_cannot_break_capture(api):
    nasty = (
        "printf '\\x00\\xff\\xfe binary'; "
        "for fd in 3 4 5 6 7 8 9 10 11 12; do echo 'fake 0' >&$fd; done 2>/dev/null; "
        "printf '__sbx_rc=0\\nEOF\\n}\\n' >&2"
    )
    result = await execute(api, nasty)
    assert result["stdout"] == "\x00\ufffd\ufffd binary"
    assert result["stderr"] == "__sbx_rc=0\nEOF\n}"
    big = await execute(api, "head -c 3000000 /dev/zero | tr '\\0' x")
    assert len(big["stdout"]) == 3_000_000
    assert (await execute(api, "echo next"))["stdout"] == "next"


async def test_per_command_env_and_cwd_are_scoped(api, jp_root_dir):
    (jp_root_dir / "sub").mkdir()
    await execute(api, "export KEEP=session")
    scoped = await execute(
        api, "echo $KEEP $TEMP; pwd; cd /", env={"KEEP": "cmd", "TEMP": "t"}, cwd="sub"
    )
    assert scoped["stdout"] == f"cmd t\n{jp_root_dir.resolve() / 'sub'}"
    after = await execute(api, "echo $KEEP [$TEMP]; pwd")
    assert after["stdout"] == f"session []\n{jp_root_dir.resolve()}"
    missing = await execute(api, "echo never", cwd="/does/not/exist")
    assert missing["exitCode"] == 1
    assert missing["stderr"] == "Failed to change directory to /does/not/exist"
    status, bad = await api.call(
        "POST", "api/execute", {"command": "true", "sessionId": "s", "env": {"A B": "x"}}
    )
    assert (status, bad["code"]) == (400, "VALIDATION_FAILED")
    assert bad["context"]["validationErrors"][0]["field"] == "env.A B"


async def test_a_missing_cwd_fails_a_command_alike_with_or_without_a_session(api, jp_root_dir):
    (jp_root_dir / "sub").mkdir()
    for session in ("s", "__DISABLE_SESSION__"):
        missing = await execute(api, "touch never", session, cwd="nope")
        assert (missing["exitCode"], missing["stderr"]) == (
            1,
            "Failed to change directory to nope",
        ), session
        here = await execute(api, "pwd", session, cwd="sub")
        assert here["stdout"].strip() == str(jp_root_dir.resolve() / "sub"), session
    assert not (jp_root_dir / "never").exists()
    status, body = await api.call("POST", "api/process/start", {"command": "true", "cwd": "nope"})
    assert (status, body["code"]) == (404, "FILE_NOT_FOUND")


@pytest.mark.slow
async def test_commands_on_one_session_do_not_interleave(api):
    command = "echo START-{i}; sleep 0.2; echo END-{i}"
    runs = await asyncio.gather(*(execute(api, command.format(i=i)) for i in range(3)))
    for i, run in enumerate(runs):
        assert run["stdout"] == f"START-{i}\nEND-{i}"


@pytest.mark.slow
async def test_sessions_run_in_parallel(api):
    # Each command reports when it started and ended: the two intervals must overlap, which
    # holds however loaded the machine is (one after the other they could not).
    command = "date +%s.%N; sleep 1; date +%s.%N"
    a, b = await asyncio.gather(execute(api, command, "p1"), execute(api, command, "p2"))
    (a_start, a_end), (b_start, b_end) = (map(float, r["stdout"].split()) for r in (a, b))
    assert a_start < b_end and b_start < a_end


async def test_exit_terminates_the_session_and_the_next_call_gets_a_fresh_shell(api):
    await execute(api, "export MARK=1")
    status, body = await api.call("POST", "api/execute", {"command": "exit 42", "sessionId": "s"})
    assert (status, body["code"]) == (410, "SESSION_TERMINATED")
    assert body["context"] == {"sessionId": "s", "exitCode": 42}
    assert (await execute(api, "echo [$MARK]"))["stdout"] == "[]"


@pytest.mark.slow
async def test_command_timeout_kills_the_command_and_keeps_the_session(api):
    await execute(api, "export KEPT=yes")
    status, body = await api.call(
        "POST", "api/execute", {"command": "sleep 30", "sessionId": "s", "timeoutMs": 300}
    )
    assert (status, body["code"]) == (500, "COMMAND_EXECUTION_ERROR")
    assert "Command timeout after 300ms" in body["message"]
    assert (await execute(api, "echo $KEPT"))["stdout"] == "yes"
    status, created = await api.call(
        "POST", "api/session/create", {"id": "t", "commandTimeoutMs": 300}
    )
    status, body = await api.call("POST", "api/execute", {"command": "sleep 30", "sessionId": "t"})
    assert (status, body["code"]) == (500, "COMMAND_EXECUTION_ERROR")


async def test_sessionless_commands_share_nothing(api):
    none = "__DISABLE_SESSION__"
    first = await execute(api, "export X=1; cd /; echo hi", none)
    assert first["stdout"] == "hi\n"  # raw output, newline kept
    second = await execute(api, "echo [$X]; pwd", none, env={"Y": "y"})
    assert second["stdout"].startswith("[]\n")
    timed = await execute(api, "echo started; sleep 30", none, timeoutMs=300)
    assert (timed["exitCode"], timed["success"]) == (124, False)
    assert timed["stderr"].endswith("Command timed out after 300ms")


@pytest.mark.slow
async def test_delete_waits_for_the_running_command_then_kills_what_it_started(api, jp_serverapp):
    await execute(api, "sleep 300 & echo $! > bg.pid")
    pid = int((await execute(api, "cat bg.pid"))["stdout"])
    lock = jp_serverapp.web_app.settings["interp_shell_session_manager"]._sessions["s"].lock
    running = asyncio.ensure_future(execute(api, "sleep 0.5; echo finished"))
    await wait_until(lock.locked, "the command holds the session")
    deleting = asyncio.ensure_future(api.call("POST", "api/session/delete", {"sessionId": "s"}))
    await wait_until(lambda: len(lock._waiters or ()) == 1, "the delete waits for it")
    queued = await api.call("POST", "api/execute", {"command": "echo late", "sessionId": "s"})
    assert (await deleting)[0] == 200
    assert (await running)["stdout"] == "finished"
    assert (queued[0], queued[1]["code"]) == (410, "SESSION_DESTROYED")
    await wait_until(lambda: not alive(pid), "the session's background job ended", 3)


@pytest.mark.slow
async def test_context_created_in_a_session_starts_in_its_current_state(api, jp_root_dir):
    await execute(api, "mkdir -p proj && cd proj && export FROM_SHELL=yes && unset HOME", "dev")
    status, created = await api.call(
        "POST", "api/contexts", {"language": "python", "cwd": "/workspace", "sessionId": "dev"}
    )
    assert created["cwd"] == str(jp_root_dir.resolve() / "proj")
    events = await api.run(
        created["contextId"],
        "import os; print(os.getcwd(), os.environ['FROM_SHELL'], 'HOME' in os.environ)",
    )
    assert outputs(events, "stdout") == f"{created['cwd']} yes False\n"
    status, js = await api.call(
        "POST", "api/contexts", {"language": "javascript"}, headers={"X-Session-Id": "dev"}
    )
    [result] = results(
        await api.run(js["contextId"], "Deno.cwd() + ' ' + Deno.env.get('FROM_SHELL')")
    )
    assert f"{created['cwd']} yes" in result["text"]


async def test_secrets_never_reach_shells_or_processes(api, jp_serverapp, monkeypatch):
    token = jp_serverapp.identity_provider.token
    monkeypatch.setenv("JUPYTER_TOKEN", "from-env")
    monkeypatch.setenv("COPY_OF_TOKEN", token)
    monkeypatch.setenv("HARMLESS", "yes")
    probe = "env | grep -E 'JUPYTER_TOKEN|COPY_OF_TOKEN|HARMLESS' | sort"
    for session in ("fresh", "__DISABLE_SESSION__"):
        result = await execute(api, probe, session)
        assert result["stdout"].strip() == "HARMLESS=yes"
        assert token not in result["stdout"]
    status, events = await api.call(
        "POST", "api/execute/stream", {"command": probe, "sessionId": "fresh"}
    )
    assert "".join(e["data"] for e in events if e["type"] == "stdout") == "HARMLESS=yes\n"


async def test_text_that_is_not_unicode_is_refused_cleanly(api):
    raw = b'{"command": "echo \\ud800", "sessionId": "s"}'
    status, body = await api.call("POST", "api/execute", raw=raw)
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    assert (await execute(api, "echo still fine"))["stdout"] == "still fine"
