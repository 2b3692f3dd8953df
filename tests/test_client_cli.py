"""`jupyter sandbox`, run as a user runs it: a subprocess with the server in the environment."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import struct
import sys
import termios

import pytest

from jupyter_interp_ext.pytest_plugin import SHELL_PROMPT


@pytest.fixture
def cli(api, jp_serverapp, jp_http_port, jp_base_url, tmp_path):
    env = {
        **os.environ,
        "JUPYTER_SERVER_URL": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "JUPYTER_TOKEN": jp_serverapp.identity_provider.token,
    }

    async def start(*args: str, token: str | None = None) -> asyncio.subprocess.Process:
        environment = env if token is None else {**env, "JUPYTER_TOKEN": token}
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jupyter_interp_ext.client.cli",
            *args,
            cwd=tmp_path,
            env=environment,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(*args: str, stdin: bytes = b"", token: str | None = None):
        process = await start(*args, token=token)
        out, err = await asyncio.wait_for(process.communicate(stdin), 120)
        return process.returncode, out, err.decode()

    run.start = start  # type: ignore[attr-defined]
    return run


@pytest.mark.slow
async def test_run_streams_output_saves_images_and_fails_on_an_error(cli, api, tmp_path):
    script = tmp_path / "analysis.py"
    script.write_text(
        "import matplotlib.pyplot as plt\nprint('working')\nplt.plot([1, 2]); plt.show()\n"
        "display(6 * 7)\nraise ValueError('bad input')\n"
    )
    code, out, err = await cli("run", str(script), "--images", "plots")
    assert code == 1
    lines = out.decode().splitlines()
    assert lines[0] == "working"
    assert lines[1] == f"[png saved to plots{os.sep}result-1.png]"
    assert lines[2] == "42"
    assert (tmp_path / "plots" / "result-1.png").read_bytes().startswith(b"\x89PNG")
    assert "ValueError: bad input" in err
    status, listed = await api.call("GET", "api/contexts")
    assert listed["contexts"] == []  # the run's own context is deleted


@pytest.mark.slow
async def test_run_from_stdin_in_another_language(cli):
    code, out, err = await cli("run", "-", "--language", "javascript", stdin=b"console.log(6 * 7)")
    assert (code, out, err) == (0, b"42\n", "")


@pytest.mark.slow
async def test_exec_files_and_contexts(cli, api, tmp_path):
    code, out, err = await cli("exec", "echo hi; echo oops >&2; sh -c 'exit 3'")
    assert (code, out, err) == (3, b"hi\n", "oops\n")
    payload = bytes(range(256))
    (tmp_path / "local.bin").write_bytes(payload)
    assert (await cli("put", "local.bin", "remote/data.bin"))[:2] == (0, b"remote/data.bin\n")
    code, out, _ = await cli("cat", "remote/data.bin")
    assert (code, out) == (0, payload)
    code, out, _ = await cli("ls", "remote")
    assert code == 0 and out.decode().split("\t")[1:] == ["256", "data.bin\n"]
    context = (await api.create("python"))["contextId"]
    code, out, _ = await cli("contexts")
    assert out.decode().split("\t")[:2] == [context, "python"]


@pytest.mark.slow
async def test_refusals_are_one_clear_line(cli):
    code, out, err = await cli("contexts", token="wrong")
    assert (code, out) == (2, b"")
    assert (
        err.startswith("jupyter sandbox: PERMISSION_DENIED: Forbidden") and "Traceback" not in err
    )
    code, _, err = await cli("cat", "missing.txt")
    assert code == 2 and "FILE_NOT_FOUND" in err


@pytest.mark.slow
async def test_control_sequences_from_the_sandbox_are_neutralised(cli):
    """A title change and a clipboard write (OSC 0 and OSC 52) in agent output reach the
    terminal as visible text, unless --raw asks for them."""
    code = "print('\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07done')"
    status, out, _ = await cli("run", "-", stdin=code.encode())
    assert status == 0
    assert b"\x1b" not in out and b"\x07" not in out
    assert out == b"\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07done\n"
    status, out, _ = await cli("--raw", "exec", "printf '\\033]0;t\\007x'")
    assert (status, out) == (0, b"\x1b]0;t\x07x")


@pytest.mark.slow
async def test_timeouts_interrupts_deaths_and_deletions_are_said_plainly(cli, api):
    code, out, err = await cli("run", "-", "--timeout", "0.5", stdin=b"import time\ntime.sleep(30)")
    assert code == 2 and "timed out" in err and "Traceback" not in err
    dying = b"import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    code, out, err = await cli("run", "-", stdin=dying)
    assert code == 1 and err.startswith("KernelDied: ")  # why it ended, not an empty line
    # Ctrl-C: the remote run is interrupted, the CLI exits 130 without a traceback.
    process = await cli.start("run", "-")
    process.stdin.write(b"import time\nprint('go', flush=True)\ntime.sleep(300)")
    process.stdin.close()
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"go\n"
    process.send_signal(signal.SIGINT)
    err = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
    assert (await process.wait(), err) == (130, "jupyter sandbox: interrupted\n")
    status, contexts = await api.call("GET", "api/contexts")
    assert contexts["contexts"] == []  # the run's context went with it
    kept = (await api.create("python"))["contextId"]
    code, out, _ = await cli("contexts", "--delete", kept)
    assert (code, out) == (0, f"deleted {kept}\n".encode())
    assert (await cli("contexts"))[1] == b""


@pytest.mark.slow
async def test_a_detached_run_is_attached_to_and_left_running(cli, api, jp_serverapp, tmp_path):
    context = (await api.create("python"))["contextId"]
    go = tmp_path / "go"
    code = (
        f"import os, time\nprint('begun', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\nprint('ended')"
    )
    status, out, err = await cli("run", "-", "--detach", stdin=code.encode())
    assert status == 2 and "--detach needs a context" in err
    status, out, _ = await cli("run", "-", "--detach", "--context", context, stdin=code.encode())
    execution_id = out.decode().strip()
    assert status == 0 and execution_id
    # Attached, then Ctrl-C: the CLI leaves, the run goes on.
    process = await cli.start("attach", execution_id)
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"begun\n"
    process.send_signal(signal.SIGINT)
    err = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
    assert (await process.wait(), err) == (130, "jupyter sandbox: interrupted\n")
    state = (await api.call("GET", f"api/execute/code/{execution_id}"))[1]
    assert state["status"] == "running"
    go.touch()
    status, out, _ = await cli("attach", execution_id)
    assert (status, out) == (0, b"begun\nended\n")
    status, out, _ = await cli("attach", execution_id, "--after", "1")
    assert (status, out) == (0, b"ended\n")


async def test_shell_is_the_sessions_terminal_on_this_one(
    api, jp_serverapp, jp_http_port, jp_base_url, tmp_path
):
    """`jupyter sandbox shell` under a terminal of the test's own: typed keys reach the
    session's shell, its size is this terminal's, and its exit status is the command's."""
    status, _ = await api.call(
        "POST", "api/execute", {"command": "export MARK=session-env", "sessionId": "default"}
    )
    assert status == 200
    controller, terminal = os.openpty()
    termios.tcsetattr(terminal, termios.TCSANOW, termios.tcgetattr(terminal))
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    env = {
        **os.environ,
        "JUPYTER_SERVER_URL": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "JUPYTER_TOKEN": jp_serverapp.identity_provider.token,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyter_interp_ext.client.cli",
        "shell",
        cwd=tmp_path,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    os.set_blocking(controller, False)
    shown = b""
    arrived = asyncio.Event()

    def read() -> None:
        nonlocal shown
        with contextlib.suppress(OSError):
            shown += os.read(controller, 65536)
        arrived.set()

    async def until(text: bytes) -> None:
        while re.search(text, shown) is None:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), 30)
            except TimeoutError:
                raise AssertionError(f"{text!r} not in {shown[-400:]!r}") from None

    asyncio.get_running_loop().add_reader(controller, read)
    try:
        await until(SHELL_PROMPT.encode())  # the command is connected
        os.write(controller, b"echo $MARK; stty size\r")
        await until(rb"session-env\r\n33 111\r\n")
        os.write(controller, b"exit 5\r")
        assert await asyncio.wait_for(process.wait(), 30) == 5
    finally:
        asyncio.get_running_loop().remove_reader(controller)
        os.close(controller)
