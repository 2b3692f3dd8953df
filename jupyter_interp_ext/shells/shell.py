"""A persistent bash whose directory, variables and functions carry from one command to the next.

Each command's text is written to a file and `source`d by the shell, with stdout and stderr
redirected to files of its own and stdin from /dev/null. Completion is reported on a private pipe
the command cannot write to (the descriptor is closed around it), tagged with a random token, so
no output, however odd, can end a command early or mix with the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_interp_ext.launch import cd_failed
from jupyter_interp_ext.protocol.limits import read_capped

from .process_tree import MARKER_VAR, end_processes, new_marker, tree


@dataclass
class CommandOutcome:
    """How one command in a shell ended (the client's `CommandResult` is what it receives)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False  # killed at its time limit


class ShellExited(Exception):
    """The command ended the shell itself (`exit N`, or the shell was killed)."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"the shell exited with code {exit_code}")
        self.exit_code = exit_code


class CommandTimedOut(Exception):
    """The command ran past its time limit and was killed."""


class Shell:
    """One `bash --norc` process and the plumbing to run commands in it, one at a time."""

    def __init__(self, cwd: str, env: dict[str, str], output_limit: int, files_dir: Path) -> None:
        self.cwd = cwd
        self.env = env
        self.output_limit = output_limit
        self.workdir = Path(tempfile.mkdtemp(prefix="shell-", dir=files_dir))
        # Everything the shell starts carries this marker; a command's own processes carry
        # `<marker>.<n>`, so a timeout finds them even after `setsid`.
        self.marker = new_marker()
        self.process: asyncio.subprocess.Process | None = None
        self._control: asyncio.StreamReader | None = None
        self._control_fd = -1
        self._count = 0
        self._current_marker = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                "bash",
                "--norc",
                "--noprofile",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=self.cwd,
                env={**self.env, MARKER_VAR: self.marker},
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._control_fd = write_fd
        self._control = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(self._control)
        await loop.connect_read_pipe(lambda: protocol, open(read_fd, "rb", buffering=0))  # noqa: SIM115
        self._send("shopt -s expand_aliases\n")

    def _send(self, line: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(line.encode())

    async def run(
        self,
        command: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> CommandOutcome:
        """Run `command` in the shell itself; `env` and `cwd` apply to this command only."""
        if not self.alive:
            raise ShellExited(self.process.returncode if self.process else None)
        self._count += 1
        base = self.workdir / str(self._count)
        token = secrets.token_hex(16)
        base.with_suffix(".cmd").write_text(command, encoding="utf-8")
        base.with_suffix(".sh").write_text(
            self._wrapper(base, token, env or {}, cwd), encoding="utf-8"
        )
        started = time.monotonic()
        self._current_marker = f"{self.marker}.{self._count}"
        self._send(f"builtin source -- {shlex.quote(str(base.with_suffix('.sh')))}\n")
        try:
            exit_code = await self._wait_for(token, timeout)
        finally:
            with contextlib.suppress(OSError):
                base.with_suffix(".cmd").unlink()
                base.with_suffix(".sh").unlink()
        stdout = read_capped(base.with_suffix(".out"), self.output_limit)
        stderr = read_capped(base.with_suffix(".err"), self.output_limit)
        for suffix in (".out", ".err"):
            base.with_suffix(suffix).unlink(missing_ok=True)
        return CommandOutcome(exit_code, stdout, stderr, round((time.monotonic() - started) * 1000))

    def _wrapper(self, base: Path, token: str, env: dict[str, str], cwd: str | None) -> str:
        """The script that runs one command with its redirections, overrides and restores."""
        q = shlex.quote
        ctl = self._control_fd
        setup = [f"builtin export {MARKER_VAR}={self.marker}.{self._count}"]
        restore = [f"builtin export {MARKER_VAR}={self.marker}"]
        body = f"builtin source -- {q(str(base.with_suffix('.cmd')))}"
        for i, (name, value) in enumerate(env.items()):
            saved, was_set = f"__sbx_val{i}", f"__sbx_set{i}"
            setup.append(
                f"{was_set}=${{{name}+x}}; {saved}=${{{name}-}}; builtin export {name}={q(value)}"
            )
            restore.append(
                f'if [ -n "${was_set}" ]; then builtin export {name}="${saved}"; '
                f"else builtin unset {name}; fi; builtin unset {was_set} {saved}"
            )
        if cwd is not None:
            setup.append('__sbx_pwd="$PWD"')
            body = (
                f"if builtin cd -- {q(cwd)} 2>/dev/null; then {body}; else "
                f"builtin echo {q(cd_failed(cwd))} >&2; false; fi"
            )
            restore.append('builtin cd -- "$__sbx_pwd" 2>/dev/null; builtin unset __sbx_pwd')
        return "\n".join(
            [
                *setup,
                f"{{ {body}\n}} </dev/null >{q(str(base.with_suffix('.out')))} "
                f"2>{q(str(base.with_suffix('.err')))} {ctl}>&-",
                "__sbx_rc=$?",
                *restore,
                f'builtin printf "%s %s\\n" {token} "$__sbx_rc" >&{ctl}',
                "builtin unset __sbx_rc",
                "",
            ]
        )

    async def _wait_for(self, token: str, timeout: float | None) -> int:
        assert self.process is not None and self._control is not None
        done = asyncio.ensure_future(self._read_token(token))
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({done, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                return done.result()
            if exited.done():
                raise ShellExited(exited.result())
            # Timed out: kill what the command started; if the shell itself is busy, kill it.
            pid, marker = self.process.pid, self._current_marker
            await end_processes(lambda: tree(pid, marker, include_root=False))
            await asyncio.wait({done, exited}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                await self.kill()
            raise CommandTimedOut()
        finally:
            done.cancel()
            exited.cancel()

    async def _read_token(self, token: str) -> int:
        assert self._control is not None
        while True:
            line = await self._control.readline()
            if not line:  # the shell is gone (`exit`): report how it ended
                assert self.process is not None
                raise ShellExited(await self.process.wait())
            tag, _, code = line.decode().strip().partition(" ")
            if tag == token:
                return int(code)

    def current_dir(self) -> str:
        """The shell's working directory as the kernel knows it (after `cd`)."""
        try:
            return os.readlink(f"/proc/{self.pid}/cwd")
        except OSError:
            return self.cwd

    async def snapshot(self) -> tuple[str, dict[str, str]]:
        """The shell's current directory and exported environment, as a child would see them."""
        result = await self.run("builtin pwd -P; command -p env -0", timeout=10)
        cwd, _, env_text = result.stdout.partition("\n")
        env = dict(item.split("=", 1) for item in env_text.split("\0") if "=" in item)
        env.pop(MARKER_VAR, None)  # what starts from this state is not the shell's to end
        return cwd, env

    async def kill(self) -> None:
        """Kill the shell and everything it started; remove its files."""
        if self.process is not None:
            pid, marker = self.process.pid, self.marker
            await end_processes(lambda: tree(pid, marker))
            with contextlib.suppress(ProcessLookupError, asyncio.TimeoutError):
                await asyncio.wait_for(self.process.wait(), 1.0)
        shutil.rmtree(self.workdir, ignore_errors=True)
