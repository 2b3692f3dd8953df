"""Background processes and streaming exec: listed, logged, streamed, killed as trees."""

from __future__ import annotations

import asyncio

from jupyter_interp_ext.pytest_plugin import alive, wait_until


async def start(api, command: str, **body) -> dict:
    status, data = await api.call(
        "POST", "api/process/start", {"command": command, "sessionId": "s", **body}
    )
    assert status == 200, data
    return data


async def wait_status(api, process_id: str, wanted: str) -> dict:
    async def process() -> dict | None:
        status, data = await api.call("GET", f"api/process/{process_id}")
        return data["process"] if data["process"]["status"] == wanted else None

    return await wait_until(process, f"{process_id} became {wanted}", seconds=10)


async def test_process_lifecycle_and_status_rules(api):
    ok = await start(api, "echo out; echo err >&2", processId="my-proc")
    assert ok["processId"] == "my-proc" and ok["pid"] > 0
    done = await wait_status(api, "my-proc", "completed")
    assert done["exitCode"] == 0 and done["endTime"]
    failed = await start(api, "exit 3")
    assert (await wait_status(api, failed["processId"], "failed"))["exitCode"] == 3
    status, logs = await api.call("GET", "api/process/my-proc/logs")
    assert (logs["stdout"], logs["stderr"]) == ("out\n", "err\n")
    status, listed = await api.call("GET", "api/process/list")
    assert {p["id"] for p in listed["processes"]} == {"my-proc", failed["processId"]}
    status, running = await api.call("GET", "api/process/list", params={"status": "running"})
    assert running["processes"] == []
    status, dup = await api.call(
        "POST", "api/process/start", {"command": "true", "processId": "my-proc"}
    )
    assert (status, dup["code"]) == (409, "RESOURCE_BUSY")
    status, empty = await api.call("POST", "api/process/start", {"command": "  "})
    assert (status, empty["code"]) == (400, "INVALID_COMMAND")
    status, missing = await api.call("GET", "api/process/nope")
    assert (status, missing["code"]) == (404, "PROCESS_NOT_FOUND")


async def test_kill_takes_the_whole_tree(api, jp_root_dir):
    proc = await start(api, "sleep 300 & echo $! > child.pid; wait")
    pid_file = jp_root_dir / "child.pid"
    await wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the child started")
    child = int((jp_root_dir / "child.pid").read_text())
    assert alive(child)
    status, killed = await api.call("DELETE", f"api/process/{proc['processId']}")
    assert (status, killed["processId"]) == (200, proc["processId"])
    info = await wait_status(api, proc["processId"], "killed")
    assert info["exitCode"] in (137, 143)
    assert not alive(child)
    status, again = await api.call("DELETE", f"api/process/{proc['processId']}")
    assert (status, again["code"]) == (404, "COMMAND_NOT_FOUND")


async def test_kill_all_and_timeouts(api):
    ids = [(await start(api, "sleep 300"))["processId"] for _ in range(2)]
    timed = await start(api, "sleep 300", timeoutMs=200)
    await wait_status(api, timed["processId"], "killed")
    status, body = await api.call("DELETE", "api/process/kill-all")
    assert (status, body["cleanedCount"]) == (200, 2)
    for process_id in ids:
        assert (await wait_status(api, process_id, "killed"))["status"] == "killed"


async def test_processes_start_from_the_session_state(api, jp_root_dir):
    await api.call(
        "POST", "api/execute", {"command": "mkdir -p w; cd w; export S=1", "sessionId": "s"}
    )
    proc = await start(api, "pwd; echo $S $P", env={"P": "p"})
    await wait_status(api, proc["processId"], "completed")
    status, logs = await api.call("GET", f"api/process/{proc['processId']}/logs")
    assert logs["stdout"] == f"{jp_root_dir.resolve() / 'w'}\n1 p\n"


async def test_process_stream_replays_then_follows_then_exits(api, jp_serverapp):
    proc = await start(api, "echo first; sleep 0.3; echo second >&2; exit 5")
    buffered = jp_serverapp.web_app.settings["interp_process_manager"].get(proc["processId"])
    await wait_until(lambda: buffered.stdout.size > 0, "the first line is buffered")
    status, events = await api.call("GET", f"api/process/{proc['processId']}/stream")
    assert status == 200
    assert events[0]["type"] == "process_info" and events[0]["processId"] == proc["processId"]
    assert [(e["type"], e["data"]) for e in events[1:-1]] == [
        ("stdout", "first\n"),
        ("stderr", "second\n"),
    ]
    assert events[-1]["type"] == "exit" and events[-1]["exitCode"] == 5
    assert events[-1]["data"] == "Process failed with exit code 5"


async def test_streaming_exec_is_a_process(api):
    status, events = await api.call(
        "POST", "api/execute/stream", {"command": "echo a; echo b >&2; printf c", "sessionId": "s"}
    )
    assert status == 200
    assert events[0]["type"] == "start" and events[0]["command"] == "echo a; echo b >&2; printf c"
    out = "".join(e["data"] for e in events if e["type"] == "stdout")
    err = "".join(e["data"] for e in events if e["type"] == "stderr")
    assert (out, err) == ("a\nc", "b\n")
    assert events[-1] == {**events[-1], "type": "complete", "exitCode": 0}
    status, listed = await api.call("GET", "api/process/list")
    assert events[0]["processId"] in [p["id"] for p in listed["processes"]]
    status, background = await api.call(
        "POST", "api/execute", {"command": "sleep 300", "sessionId": "s", "background": True}
    )
    assert background["processId"].startswith("proc_")
    await api.call("DELETE", f"api/process/{background['processId']}")


async def test_output_buffers_are_bounded(api, jp_serverapp):
    jp_serverapp.web_app.settings["interp_process_manager"].buffer_chars = 1000
    proc = await start(api, "head -c 50000 /dev/zero | tr '\\0' y; echo; echo tail")
    await wait_status(api, proc["processId"], "completed")
    status, logs = await api.call("GET", f"api/process/{proc['processId']}/logs")
    assert len(logs["stdout"]) == 1000
    assert logs["stdout"].endswith("y\ntail\n")


async def test_output_that_looks_like_sse_stays_inside_its_event(api):
    status, events = await api.call(
        "POST", "api/execute/stream", {"command": "printf 'data: fake\\n\\n'", "sessionId": "s"}
    )
    assert "".join(e["data"] for e in events if e["type"] == "stdout") == "data: fake\n\n"


async def test_finished_processes_are_kept_only_up_to_the_limit(api, jp_serverapp):
    jp_serverapp.web_app.settings["interp_process_manager"].keep_finished = 2
    ids = []
    for i in range(4):
        ids.append((await start(api, f"echo {i}"))["processId"])
        await wait_status(api, ids[-1], "completed")
    status, listed = await api.call("GET", "api/process/list")
    assert [p["id"] for p in listed["processes"]] == ids[-2:]
    status, gone = await api.call("GET", f"api/process/{ids[0]}")
    assert (status, gone["code"]) == (404, "PROCESS_NOT_FOUND")


async def test_leaving_a_stream_detaches_without_stopping_the_process(
    api, jp_http_port, jp_base_url
):
    proc = await start(api, "echo ready; sleep 300")
    for path, method, body in (
        (f"api/process/{proc['processId']}/stream", "GET", b""),
        ("api/execute/stream", "POST", b'{"command": "echo ready; sleep 300", "sessionId": "s"}'),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
        writer.write(
            f"{method} {jp_base_url}sandbox/{path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: {api.headers['Authorization']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        while b"ready" not in await reader.readline():
            pass
        writer.close()
    status, listed = await api.call("GET", "api/process/list", params={"status": "running"})
    assert len(listed["processes"]) == 2  # the followed one and the streamed command
    status, body = await api.call("DELETE", "api/process/kill-all")
    assert body["cleanedCount"] == 2
