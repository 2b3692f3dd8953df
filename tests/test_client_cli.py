"""`jupyter sandbox`, run as a user runs it: a subprocess with the server in the environment."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest


@pytest.fixture
def cli(api, jp_serverapp, jp_http_port, jp_base_url, tmp_path):
    env = {
        **os.environ,
        "JUPYTER_SERVER_URL": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "JUPYTER_TOKEN": jp_serverapp.identity_provider.token,
    }

    async def run(*args: str, stdin: bytes = b"", token: str | None = None):
        environment = env if token is None else {**env, "JUPYTER_TOKEN": token}
        process = await asyncio.create_subprocess_exec(
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
        out, err = await asyncio.wait_for(process.communicate(stdin), 120)
        return process.returncode, out, err.decode()

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
