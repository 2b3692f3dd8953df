"""The Python client (jupyter_interp_ext.client), sync and async, against a live server.

The server runs in the test's event loop, so the synchronous client is driven from a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import sys
import time
import tracemalloc
from asyncio.subprocess import PIPE
from pathlib import Path

import httpx
import pytest

from jupyter_interp_ext.client import (
    AsyncSandbox,
    CodeContext,
    CommandExitException,
    Completed,
    ExecutionError,
    FilesystemEvent,
    FilesystemEventType,
    FileType,
    InvalidArgumentException,
    NotFoundError,
    NotFoundException,
    OutputMessage,
    PermissionDeniedError,
    Result,
    Sandbox,
    SandboxException,
    SandboxTimeoutError,
    TimeoutException,
    TransportError,
    ValidationError,
    calls,
)
from jupyter_interp_ext.client.charts import (
    BarChart,
    ChartType,
    LineChart,
    PieChart,
    ScaleType,
    SuperChart,
)
from jupyter_interp_ext.testing import free_port


def recent(nanoseconds: int) -> bool:
    """Whether a timestamp is E2B's kind (integer nanoseconds since the epoch) and recent."""
    return isinstance(nanoseconds, int) and abs(time.time_ns() - nanoseconds) < 60 * 10**9


def in_thread(work):
    return asyncio.to_thread(work)


@pytest.mark.slow
async def test_three_lines_and_a_default_context_per_language(server):
    def work():
        with Sandbox(**server) as sandbox:
            first = sandbox.run_code("x = 20\nx * 2 + 2")
            second = sandbox.run_code("x + 1")
            script = sandbox.run_code("const n: number = 6; n * 7", language="typescript")
            return first, second, script, sandbox.list_code_contexts()

    first, second, script, contexts = await in_thread(work)
    assert (first.text, first.execution_count, first.error) == ("42", 1, None)
    assert second.text == "21"  # the same default context
    assert script.text == "42"
    assert sorted(c.language for c in contexts) == ["python", "typescript"]


@pytest.mark.slow
async def test_streaming_order_and_callbacks(server):
    code = (
        "import sys\nfrom IPython.display import display, HTML\n"
        "print('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\n"
        "display(HTML('<b>3</b>'))\n4"
    )

    def work():
        seen = []
        with Sandbox(**server) as sandbox:
            execution = sandbox.run_code(
                code,
                on_stdout=lambda m: seen.append(("stdout", m.line, recent(m.timestamp))),
                on_stderr=lambda m: seen.append(("stderr", m.line, recent(m.timestamp))),
                on_result=lambda r: seen.append(("result", r.formats())),
            )
            streamed = list(sandbox.run_code_stream(code))
        return seen, execution, streamed

    seen, execution, streamed = await in_thread(work)
    assert seen == [
        ("stdout", "one\n", True),
        ("stderr", "two\n", True),
        ("result", ["text", "html"]),
        ("result", ["text"]),
    ]
    assert (execution.logs.stdout, execution.logs.stderr) == (["one\n"], ["two\n"])
    assert [r.is_main_result for r in execution.results] == [False, True]
    assert [type(item) for item in streamed] == [
        OutputMessage,
        OutputMessage,
        Result,
        Result,
        Completed,
    ]
    assert streamed[-1].execution_count == 2


@pytest.mark.slow
async def test_async_client_with_coroutine_callbacks_and_contexts(server):
    async with AsyncSandbox(**server) as sandbox:
        context = await sandbox.create_code_context(language="python", envs={"GREETING": "hi"})
        assert isinstance(context, CodeContext) and context.language == "python"
        heard = []

        async def on_stdout(message):
            await asyncio.sleep(0)
            heard.append(message.line)

        execution = await sandbox.run_code(
            "import os; print(os.environ['GREETING'])\n6 * 7", context=context, on_stdout=on_stdout
        )
        assert (heard, execution.text) == (["hi\n"], "42")
        items = []
        async with contextlib.aclosing(sandbox.run_code_stream("print(1)", context=context)) as s:
            async for item in s:
                items.append(type(item).__name__)
        assert items == ["OutputMessage", "Completed"]
        assert [c.id for c in await sandbox.list_code_contexts()] == [context.id]
        await sandbox.remove_code_context(context)
        assert await sandbox.list_code_contexts() == []
        with pytest.raises(NotFoundError) as missing:
            await sandbox.run_code("1", context=context.id)
        assert (missing.value.code, missing.value.status) == ("CONTEXT_NOT_FOUND", 404)


@pytest.mark.slow
async def test_errors_timeouts_and_validation(server):
    async with AsyncSandbox(**server) as sandbox:
        failed = await sandbox.run_code("def f():\n    raise ValueError('bad')\nf()")
        assert isinstance(failed.error, ExecutionError)
        assert (failed.error.name, failed.error.value) == ("ValueError", "bad")
        assert "raise ValueError('bad')" in failed.error.traceback
        with pytest.raises(TimeoutException):  # as E2B's client raises it
            await sandbox.run_code("import time\nwhile True: time.sleep(0.05)", timeout=0.5)
        assert (await sandbox.run_code("2 + 2")).text == "4"  # the context is still usable
        with pytest.raises(ValidationError) as bad:
            await sandbox.create_code_context(language="cobol")
        assert bad.value.code == "VALIDATION_FAILED" and "python" in bad.value.message
        with pytest.raises(SandboxTimeoutError):
            await sandbox.commands.run("sleep 5", session_id="s", timeout=0.3)
        with pytest.raises(TimeoutException):  # a fresh shell's command, killed at its limit
            await sandbox.commands.run("sleep 5", timeout=0.3)


@pytest.mark.slow
async def test_leaving_a_stream_early_interrupts_the_run(server):
    def work():
        with Sandbox(**server) as sandbox:
            sandbox.run_code("kept = 1")
            stream = sandbox.run_code_stream(
                "import time\nprint('go', flush=True)\nwhile True: time.sleep(0.05)"
            )
            first = next(stream)
            stream.close()  # what leaving a `for` loop does
            return first, sandbox.run_code("kept + 1").text

    first, after = await in_thread(work)
    assert first.line == "go\n"
    assert after == "2"  # without the interrupt this would wait for the server's 300 s limit


@pytest.mark.slow
async def test_bad_credentials_and_no_server_are_clear_errors(server):
    def work():
        wrong = Sandbox(server["server_url"], token="wrong")
        with wrong, pytest.raises(PermissionDeniedError) as denied:
            wrong.ping()
        nowhere = Sandbox(f"http://127.0.0.1:{free_port()}/", token="x")
        with nowhere, pytest.raises(TransportError) as unreachable:
            nowhere.ping()
        return denied.value, unreachable.value

    denied, unreachable = await in_thread(work)
    assert denied.status == 403 and "token" in denied.message
    assert "cannot talk to" in str(unreachable) and unreachable.__cause__ is not None


async def test_commands_sessions_and_processes(server, jp_root_dir):
    async with AsyncSandbox(**server) as sandbox:
        with pytest.raises(CommandExitException) as failed:  # E2B's: a non-zero exit raises
            await sandbox.commands.run("echo out; echo err >&2; sh -c 'exit 3'")
        assert (failed.value.stdout, failed.value.stderr, failed.value.exit_code) == (
            "out\n",
            "err\n",
            3,
        )
        fresh = await sandbox.commands.run("cd /; export GONE=1")  # each run a fresh shell
        assert (await sandbox.commands.run("pwd; echo ${GONE:-unset}")).stdout.endswith("unset\n")
        assert fresh.exit_code == 0
        session = await sandbox.sessions.create("dev", envs={"A": "b"})
        assert session.id == "dev" and session.cwd == str(jp_root_dir.resolve())
        await sandbox.commands.run("mkdir -p w && cd w", session_id="dev")
        here = await sandbox.commands.run("pwd; echo $A", session_id="dev")
        assert here.stdout == f"{jp_root_dir.resolve() / 'w'}\nb"
        chunks = []
        streamed = await sandbox.commands.run(
            "echo 1; echo 2 >&2; echo 3", session_id="dev", on_stdout=chunks.append
        )
        assert ("".join(m.line for m in chunks), streamed.stderr) == ("1\n3\n", "2")
        assert streamed.exit_code == 0
        assert sorted(s.id for s in await sandbox.sessions.list()) == ["dev"]

        handle = await sandbox.commands.run("echo started; sleep 0.3", background=True)
        assert [triple async for triple in handle] == [("started\n", None, None)]
        assert (await handle.wait()).stdout == "started\n"
        finished = await sandbox.processes.get(handle.info.id)
        assert (finished.status, finished.exit_code) == ("completed", 0)
        assert await sandbox.processes.logs(handle.info.id) == ("started\n", "")
        sleeping = await sandbox.commands.run("sleep 300", background=True)
        assert sleeping.pid in [p.pid for p in await sandbox.commands.list()]
        assert await sleeping.kill() is True
        assert await sandbox.commands.kill(sleeping.pid) is False  # nothing left to kill
        with pytest.raises(CommandExitException):
            await (await sandbox.commands.run("exit 4", background=True)).wait()
        sleeper = await sandbox.processes.start("sleep 300", process_id="sleeper")
        assert sleeper.id == "sleeper"
        running = await sandbox.processes.list(status="running")
        assert [p.id for p in running] == ["sleeper"]
        assert sleeper.pid in await sandbox.processes.kill("sleeper")
        await sandbox.sessions.delete("dev")
        # processes.start (ours) starts from a session's state: the default one, made for it.
        assert [s.id for s in await sandbox.sessions.list()] == ["default"]


async def test_files_text_binary_and_listing(server, jp_root_dir):
    payload = bytes(range(256)) * 4

    def work():
        with Sandbox(**server) as sandbox:
            sandbox.files.write("notes/a.txt", "héllo ✓")
            sandbox.files.write("notes/blob.bin", payload)
            text = sandbox.files.read("notes/a.txt")
            blob = sandbox.files.read("notes/blob.bin", format="bytes")
            listed = [(e.relative_path, e.type) for e in sandbox.files.list("notes")]
            info = sandbox.files.get_info("notes/a.txt")
            with pytest.raises(NotFoundException):
                sandbox.files.get_info("notes/none.txt")
            written = sandbox.files.write_files(
                [{"path": "w/1.txt", "data": "one"}, {"path": "w/2.bin", "data": io.BytesIO(b"2")}]
            )
            deep = [
                e.relative_path
                for e in sandbox.files.list("w/..", depth=2)
                if "/" in e.relative_path
            ]
            made, again = sandbox.files.make_dir("x/y"), sandbox.files.make_dir("x/y")
            moved = sandbox.files.rename("notes/a.txt", "x/y")
            exists = sandbox.files.exists(moved.path), sandbox.files.exists("notes/a.txt")
            sandbox.files.remove(moved.path)
            with pytest.raises(NotFoundError):
                sandbox.files.read("notes/a.txt")
            with pytest.raises(PermissionDeniedError):
                sandbox.files.read("/etc/passwd")
            return text, blob, listed, (made, again), moved, exists, info, written, deep

    text, blob, listed, made, moved, exists, info, written, deep = await in_thread(work)
    assert text == "héllo ✓" and blob == payload and isinstance(blob, bytearray)
    assert listed == [("a.txt", FileType.FILE), ("blob.bin", FileType.FILE)]
    assert (info.name, info.type, info.size, info.permissions[:2]) == (
        "a.txt",
        FileType.FILE,
        len("héllo ✓".encode()),
        "rw",
    )
    assert abs(info.modified_time.timestamp() - time.time()) < 60 and info.mode & 0o400
    assert [(w.name, w.path) for w in written] == [("1.txt", "w/1.txt"), ("2.bin", "w/2.bin")]
    assert "w/1.txt" in deep
    assert made == (True, False) and exists == (True, False)
    assert (moved.name, moved.path, moved.type) == ("a.txt", "x/y/a.txt", FileType.FILE)
    assert not (jp_root_dir / "x" / "y" / "a.txt").exists()


@pytest.mark.slow
async def test_a_large_file_streams_without_being_held(server, jp_root_dir):
    size = 50 * 1024 * 1024
    digest = hashlib.sha256()
    with (jp_root_dir / "big.bin").open("wb") as file:
        for _ in range(size // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            file.write(chunk)
    received = hashlib.sha256()
    total = 0
    tracemalloc.start()
    try:
        async with AsyncSandbox(**server) as sandbox:
            async for chunk in await sandbox.files.read("big.bin", format="stream"):
                received.update(chunk)
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (total, received.hexdigest()) == (size, digest.hexdigest())
    # Client and server share this process; holding the file would take 50 MiB (67 as base64).
    assert peak < 24 * 1024 * 1024


@pytest.mark.slow
async def test_results_render_in_a_notebook(server):
    code = (
        "import matplotlib.pyplot as plt, pandas as pd\n"
        "print('hello')\nplt.plot([1, 2]); plt.show()\npd.DataFrame({'a': [1]})"
    )
    async with AsyncSandbox(**server) as sandbox:
        execution = await sandbox.run_code(code)
    figure, frame = execution.results
    bundle = figure._repr_mimebundle_()
    assert bundle["image/png"] == figure.png and bundle["text/plain"].startswith("<Figure")
    assert bundle["application/vnd.jupyter-interp-ext.chart+json"]["type"] == "line"
    table = frame._repr_mimebundle_()
    assert "<table" in table["text/html"]
    assert table["application/vnd.dataresource+json"]["data"] == [{"index": 0, "a": 1}]
    assert frame.data == {"a": [1]}  # E2B's shape for a DataFrame: its columns
    assert "application/vnd.dataresource+json" in frame.extra and frame["html"] == frame.html
    rendered = execution._repr_mimebundle_()
    assert rendered["text/html"].startswith("<pre>hello\n</pre>")
    assert f'<img src="data:image/png;base64,{figure.png}">' in rendered["text/html"]
    assert "<table" in rendered["text/html"]


async def test_the_sync_client_streams_commands_processes_and_files(server):
    def work():
        with Sandbox(**server) as sandbox:
            heard = []
            result = sandbox.commands.run(
                "echo a; echo b >&2", on_stdout=heard.append, on_stderr=heard.append
            )
            process = sandbox.processes.start("echo p1; echo p2 >&2")
            followed = [(m.error, m.line) for m in sandbox.processes.stream(process.id)]
            sandbox.files.write("s.bin", bytes(range(256)) * 1000)
            streamed = b"".join(sandbox.files.read("s.bin", format="stream"))
            with pytest.raises(NotFoundError):  # reported inside the stream, typed as anywhere
                b"".join(sandbox.files.read("missing.bin", format="stream"))
            async_created = sandbox.sessions.create("sync-session")
            return heard, result, followed, streamed, async_created

    heard, result, followed, streamed, session = await in_thread(work)
    assert sorted(m.line for m in heard) == ["a\n", "b\n"]
    assert (result.stdout, result.stderr, result.exit_code) == ("a\n", "b\n", 0)  # as unstreamed
    assert sorted(followed) == [(False, "p1\n"), (True, "p2\n")]
    assert streamed == bytes(range(256)) * 1000
    assert session.id == "sync-session"


async def test_the_async_client_handles_files_and_bad_credentials(server):
    async with AsyncSandbox(server["server_url"], token="wrong") as wrong:
        with pytest.raises(PermissionDeniedError):
            await wrong.files.read("x")
    async with AsyncSandbox(**server) as sandbox:
        assert (await sandbox.files.write("a/b.txt", "é")).path == "a/b.txt"
        assert await sandbox.files.read("a/b.txt") == "é"
        assert await sandbox.files.read("a/b.txt", format="bytes") == "é".encode()
        assert [e.name for e in await sandbox.files.list("a")] == ["b.txt"]
        assert await sandbox.files.make_dir("a") is False
        moved = await sandbox.files.rename("a/b.txt", "a/c.txt")
        assert (moved.name, moved.path, moved.size) == ("c.txt", "a/c.txt", 2)
        assert (await sandbox.files.get_info("a/c.txt")).type == FileType.FILE
        await sandbox.files.remove("a/c.txt")
        assert await sandbox.files.exists("a/c.txt") is False


def test_only_requests_that_change_nothing_are_sent_again_and_only_if_never_received():
    sandbox = Sandbox("http://127.0.0.1:1/", token="x")
    refused, broken = httpx.ConnectError("refused"), httpx.ReadError("reset")
    assert sandbox._retry_pause(calls.ping(), 0, refused) > 0  # safe, never got through
    assert sandbox._retry_pause(calls.ping(), 1, refused) > 0
    for call, attempt, error in [
        (calls.ping(), 2, refused),  # out of attempts
        (calls.ping(), 0, broken),  # it may have been received
        (calls.execute({"command": "rm x"}), 0, refused),  # it would change something
    ]:
        with pytest.raises(TransportError):
            sandbox._retry_pause(call, attempt, error)
    sandbox.close()


@pytest.mark.slow
async def test_run_code_behaves_as_e2bs(server):
    async with AsyncSandbox(**server) as sandbox:
        context = await sandbox.create_code_context(language="python")
        with pytest.raises(InvalidArgumentException):
            await sandbox.run_code("1", language="python", context=context)
        probe = "import os; str(os.environ.get('ONLY_NOW'))"
        once = await sandbox.run_code(probe, context=context, envs={"ONLY_NOW": "yes"})
        assert once.text == "yes"
        assert (await sandbox.run_code(probe, context=context)).text == "None"
        unlimited = await sandbox.run_code("import time; time.sleep(0.2); 5", timeout=0)
        assert unlimited.text == "5"
        raised = await sandbox.run_code("raise TimeoutError('mine')", context=context)
        assert raised.error.name == "TimeoutError"  # the code's own: an error, not raised
        await sandbox.run_code("state = 1", context=context)
        await sandbox.restart_code_context(context)
        assert (await sandbox.run_code("state", context=context)).error.name == "NameError"
        await sandbox.remove_code_context(context)
        ids = [c.id for c in await sandbox.list_code_contexts()]
        assert context.id not in ids

    def work():
        with Sandbox(**server) as sandbox:
            with pytest.raises(TimeoutException):
                sandbox.run_code("import time; time.sleep(5)", timeout=0.3)
            return sandbox.run_code("import os; os.environ['E']", envs={"E": "sync"}).text

    assert await in_thread(work) == "sync"


@pytest.mark.slow
async def test_results_read_as_e2bs(server):
    async with AsyncSandbox(**server) as sandbox:
        assert (await sandbox.run_code("'it''s'")).text == "its"  # the string, not its repr
        assert (await sandbox.run_code("'a\\nb'")).text == "a\nb"
        assert (await sandbox.run_code("['x']")).text == "['x']"  # other values: their repr
        frame = await sandbox.run_code(
            "import pandas as pd\npd.DataFrame({'n': [1, 2], 's': ['a', 'b']}, index=[5, 6])"
        )
        [result] = frame.results
        assert result.data == {"n": [1, 2], "s": ["a", "b"]}
        assert result.formats()[:2] == ["text", "html"] and "data" in result.formats()


@pytest.mark.slow
async def test_a_sandbox_deletes_what_it_started_unless_closed(server, api):
    async def kernels() -> set[str]:
        status, contexts = await api.call("GET", "api/contexts")
        return {c["id"] for c in contexts["contexts"]}

    async with await AsyncSandbox.create(envs={"FROM_SANDBOX": "yes"}, **server) as sandbox:
        assert sandbox.sandbox_id and sandbox.envs == {"FROM_SANDBOX": "yes"}
        execution = await sandbox.run_code("import os; os.environ['FROM_SANDBOX']")
        assert execution.text == "yes"
        [context_id] = sandbox._default_contexts.values()
        await sandbox.sessions.create("owned")
        handle = await sandbox.commands.run("sleep 300", background=True)
        assert context_id in await kernels()
    assert context_id not in await kernels()  # the with block killed it
    status, sessions = await api.call("GET", "api/session/list")
    assert "owned" not in sessions["data"]
    status, process = await api.call("GET", f"api/process/{handle.info.id}")
    assert process["process"]["status"] == "killed"

    kept = await AsyncSandbox.create(**server)
    context = await kept.create_code_context()
    await kept.close()  # closing keeps what it started
    assert context.id in await kernels()

    def work() -> str:
        with Sandbox.create(**server) as sandbox:
            made = sandbox.create_code_context()
            assert sandbox.kill() is True
            return made.id

    assert await in_thread(work) not in await kernels()


@pytest.mark.slow
async def test_charts_are_typed_as_e2bs(server):
    code = (
        "import matplotlib.pyplot as plt\n"
        "fig, (a, b) = plt.subplots(1, 2)\n"
        "a.bar(['x', 'y'], [3, 5]); b.plot([1, 2], [4, 6], label='up'); plt.show()"
    )
    async with AsyncSandbox(**server) as sandbox:
        [result] = (await sandbox.run_code(code)).results
        pie = (await sandbox.run_code("plt.pie([1, 3], labels=['c', 'd']); plt.show()")).results[0]
    chart = result.chart
    assert isinstance(chart, SuperChart) and chart.type is ChartType.SUPERCHART
    bars, lines = chart.elements
    assert isinstance(bars, BarChart) and [(e.label, e.value) for e in bars.elements] == [
        ("x", 3),
        ("y", 5),
    ]
    assert isinstance(lines, LineChart) and lines.elements[0].label == "up"
    assert lines.elements[0].points == [(1, 4), (2, 6)]
    assert lines.x_scale is ScaleType.LINEAR
    assert isinstance(pie.chart, PieChart) and [s.label for s in pie.chart.elements] == ["c", "d"]
    assert result.mime_bundle()["application/vnd.jupyter-interp-ext.chart+json"] == chart.to_dict()


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "e2b_agent.py"


@pytest.mark.slow
async def test_an_e2b_script_runs_with_only_its_import_changed(server, api):
    source = EXAMPLE.read_text()
    ours = [line for line in source.splitlines() if "jupyter_interp_ext" in line]
    assert ours == ["from jupyter_interp_ext.client import CommandExitException, Sandbox"]
    env = {
        **os.environ,
        "JUPYTER_SERVER_URL": server["server_url"],
        "JUPYTER_TOKEN": server["token"],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "stdout: demo first",
        "result: 42",
        "chart: bar fruit [3, 5]",
        "dataframe: {'n': [1, 2], 's': ['a', 'b']}",
        "file: written by the agent",
        "listed: True",
        "command failed: 2",
    ]
    status, contexts = await api.call("GET", "api/contexts")
    assert contexts["contexts"] == []  # kill() deleted what it made


@pytest.mark.slow
async def test_connect_finds_a_sandbox_by_its_id(server, api):
    """The same id gives the same state: a second client object (as another process would
    make) finds the sandbox's default context with its variables, its session and its running
    process; `kill()` through it deletes them; another sandbox's things are left alone."""
    first = await AsyncSandbox.create(**server)
    await first.run_code("shared = 41")
    await first.sessions.create(f"s-{first.sandbox_id}")
    handle = await first.commands.run("sleep 300", background=True)
    other = await AsyncSandbox.create(**server)
    theirs = await other.create_code_context()
    await first.close()

    def work():
        again = Sandbox.connect(first.sandbox_id, **server)
        answer = again.run_code("shared + 1").text
        running = [p.id for p in again.commands.list()]
        again.kill()
        return answer, running

    answer, running = await in_thread(work)
    assert answer == "42" and handle.info.id in running
    status, contexts = await api.call("GET", "api/contexts")
    labelled = [c for c in contexts["contexts"] if c.get("labels", {}).get("sandbox")]
    assert [c["id"] for c in labelled] == [theirs.id]  # the first sandbox's context is gone
    status, sessions = await api.call("GET", "api/session/list")
    assert f"s-{first.sandbox_id}" not in sessions["data"]
    status, process = await api.call("GET", f"api/process/{handle.info.id}")
    assert process["process"]["status"] == "killed"

    connected = await AsyncSandbox.connect(other.sandbox_id, **server)
    assert (await connected.run_code("1 + 1", context=theirs)).text == "2"
    await connected.kill()
    assert theirs.id not in {c.id for c in await other.list_code_contexts()}
    await other.close()
    with pytest.raises(InvalidArgumentException):
        Sandbox.connect("no spaces/or slashes", **server)


async def test_labels_are_checked_and_kept(api):
    for labels in ({"bad name": "x"}, {"n": 1}, {"n": "x" * 257}, {str(i): "" for i in range(17)}):
        status, answer = await api.call("POST", "api/session/create", {"labels": labels})
        assert (status, answer["code"]) == (400, "VALIDATION_FAILED"), labels
    status, answer = await api.call("POST", "api/session/create", {"labels": {"team": "a b"}})
    assert status == 200
    status, listed = await api.call("GET", "api/session/list")
    assert [s["labels"] for s in listed["sessions"]] == [{"team": "a b"}]


@pytest.mark.slow
async def test_watch_dir_as_e2bs(server, jp_root_dir):
    """Sync: changes made after `watch_dir` returns are polled with `get_new_events()`;
    async: `on_event` is called for each, `on_exit` once `stop()` ends it."""
    (jp_root_dir / "watched").mkdir()

    def work():
        with Sandbox(**server) as sandbox:
            handle = sandbox.files.watch_dir("watched", recursive=True)
            sandbox.files.write("watched/a.txt", "one")
            seen = []
            while not any(e.type == FilesystemEventType.CREATE for e in seen):
                seen += handle.get_new_events()
                time.sleep(0.01)  # polled, as E2B's sync handle is; the server runs meanwhile
            handle.stop()
            with pytest.raises(SandboxException):
                handle.get_new_events()
            return seen

    seen = await in_thread(work)
    assert ("a.txt", FilesystemEventType.CREATE) in [(e.name, e.type) for e in seen]

    async with AsyncSandbox(**server) as sandbox:
        events: asyncio.Queue[FilesystemEvent] = asyncio.Queue()
        exits: list[Exception | None] = []
        handle = await sandbox.files.watch_dir(
            "watched", on_event=events.put, on_exit=exits.append, recursive=True
        )
        await sandbox.files.make_dir("watched/sub")
        await sandbox.files.write("watched/sub/b.txt", "two")
        names = set()
        while ("sub/b.txt", FilesystemEventType.CREATE) not in names:
            event = await events.get()
            names.add((event.name, event.type))
        await handle.stop()
        assert exits == [None]
        with pytest.raises(NotFoundException):
            await sandbox.files.watch_dir("missing", on_event=events.put)
