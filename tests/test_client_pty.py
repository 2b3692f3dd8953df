"""The Python client's terminals, as E2B's `sandbox.pty`: create with a size, a directory and
variables, type, resize, wait, kill, time out; sync and asyncio."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from jupyter_interp_ext.client import (
    AsyncSandbox,
    CommandExitException,
    PtySize,
    Sandbox,
    TimeoutException,
)
from jupyter_interp_ext.pytest_plugin import wait_until
from jupyter_interp_ext.testing import wait_for


class Shown:
    """What a terminal printed, collected by its on_data callback (on the client's thread)."""

    def __init__(self) -> None:
        self.data = b""
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self.lock:
            self.data += data

    def wait(self, text: str) -> None:
        wait_for(lambda: text.encode() in self.data, f"{text!r} on the terminal", 30)


async def test_a_terminal_in_a_directory_with_variables_typed_resized_and_exited(
    server, jp_root_dir
):
    (jp_root_dir / "w").mkdir()

    def work() -> None:
        with Sandbox(**server) as sandbox:
            shown = Shown()
            terminal = sandbox.pty.create(
                PtySize(rows=24, cols=80), on_data=shown, cwd="w", envs={"GREETING": "hi"}
            )
            sandbox.pty.send_stdin(terminal.pid, b"echo $GREETING from $(pwd); stty size\r")
            shown.wait(f"hi from {jp_root_dir.resolve() / 'w'}\r\n24 80\r\n")
            sandbox.pty.resize(terminal.pid, PtySize(rows=10, cols=40))
            terminal.send_stdin("stty size\r")
            shown.wait("10 40\r\n")
            terminal.send_stdin("exit 3\r")
            with pytest.raises(CommandExitException) as exited:
                terminal.wait()
            assert exited.value.exit_code == 3
            assert sandbox.pty.kill(terminal.pid) is True  # its session was still there
            assert sandbox.pty.kill(terminal.pid) is False

    await asyncio.to_thread(work)


async def test_iterating_a_terminal_and_killing_it(server):
    def work() -> None:
        with Sandbox(**server) as sandbox:
            terminal = sandbox.pty.create(PtySize(24, 80))
            terminal.send_stdin("echo mark-$((6*7))\r")
            shown = b""
            for _, _, data in terminal:
                shown += data
                if b"mark-42\r\n" in shown:
                    break
            assert sandbox.pty.kill(terminal.pid) is True
            with pytest.raises(CommandExitException):  # (ended by a hangup)
                terminal.wait()

    await asyncio.to_thread(work)


async def test_a_session_terminal_opened_again_shows_what_it_showed(server):
    def work() -> None:
        with Sandbox(**server) as sandbox:
            first = Shown()
            terminal = sandbox.pty.create(PtySize(24, 80), on_data=first, session="kept")
            terminal.send_stdin("echo mark-$((40+2))\r")
            first.wait("mark-42\r\n")
            terminal.disconnect()
            again = Shown()  # nothing typed: the screen so far comes first
            terminal = sandbox.pty.create(PtySize(24, 80), on_data=again, session="kept")
            again.wait("mark-42\r\n")
            terminal.disconnect()

    await asyncio.to_thread(work)
    async with AsyncSandbox(**server) as sandbox:
        shown: list[bytes] = []
        terminal = await sandbox.pty.create(PtySize(24, 80), on_data=shown.append, session="kept")
        await wait_until(lambda: b"mark-42\r\n" in b"".join(shown), "the screen so far")
        await terminal.disconnect()


async def test_a_sandboxs_terminals_end_with_it(server, api):
    def work() -> None:
        with Sandbox(**server) as sandbox:
            terminal = sandbox.pty.create(PtySize(24, 80), on_data=Shown(), timeout=0)
            assert terminal.session_id.startswith("pty_")
        with pytest.raises(CommandExitException):  # (ended by a hangup)
            terminal.wait()

    await asyncio.to_thread(work)
    response = await api._fetch("api", "terminals", method="GET")
    assert json.loads(response.body) == []


async def test_a_terminal_is_killed_at_its_timeout(server):
    def work() -> None:
        with Sandbox(**server) as sandbox:
            terminal = sandbox.pty.create(PtySize(24, 80), on_data=Shown(), timeout=0.5)
            with pytest.raises(TimeoutException):
                terminal.wait()

    await asyncio.to_thread(work)


async def test_the_async_client_terminal_with_a_coroutine_callback(server):
    async with AsyncSandbox(**server) as sandbox:
        shown = []

        async def on_data(data: bytes) -> None:
            await asyncio.sleep(0)
            shown.append(data)

        terminal = await sandbox.pty.create(PtySize(24, 80), on_data=on_data)
        await sandbox.pty.send_stdin(terminal.pid, "echo async-$((2+3))\r")
        await wait_until(lambda: b"async-5\r\n" in b"".join(shown), "the echo")
        await terminal.send_stdin("exit\r")
        result = await terminal.wait()
        assert result.exit_code == 0
        assert await sandbox.pty.kill(terminal.pid) is True
