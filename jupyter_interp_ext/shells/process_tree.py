"""Starting commands, knowing when they end, and ending every process they started.

A command is over when its own process exits, not when the last copy of its pipes closes: a
child it left behind (`sleep 60 &`, `setsid …`) may hold them open for as long as it lives.

Every process we start carries a marker in its environment (`SANDBOX_TASK_ID`), inherited by
everything it starts. Killing a command's tree signals its process group, the descendants found
through parent links, and every process whose environment carries the marker, which also finds
those that called `setsid` and were re-parented away from the tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from jupyter_interp_ext.protocol.limits import CappedBytes

MARKER_VAR = "SANDBOX_TASK_ID"
# After a command's process exits, how long its output pipes may still deliver what was written
# before the exit (a descendant holding them open does not delay the answer longer than this).
OUTPUT_GRACE = 0.1
# How long processes get to exit after SIGTERM before they are sent SIGKILL.
KILL_GRACE = 2.0


def new_marker() -> str:
    """A fresh marker value (`marked` finds processes by a marker's prefix)."""
    return secrets.token_hex(8)


OutputSink = Callable[[str, bytes], None]


class _ChildProtocol(asyncio.SubprocessProtocol):
    def __init__(self, on_output: OutputSink | None) -> None:
        loop = asyncio.get_running_loop()
        self.on_output = on_output
        self.early: list[tuple[str, bytes]] = []  # output that came before anyone listened
        self.exited = loop.create_future()
        self.closed = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        kind = "stdout" if fd == 1 else "stderr"
        if self.on_output is None:
            self.early.append((kind, data))
        else:
            self.on_output(kind, data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class Child:
    """A `bash -c` command we started: its output is handed to `on_output` as it comes."""

    def __init__(
        self, transport: asyncio.SubprocessTransport, protocol: _ChildProtocol, marker: str
    ) -> None:
        self.transport = transport
        self.protocol = protocol
        self.marker = marker
        self.pid: int = transport.get_pid()

    @property
    def returncode(self) -> int | None:
        return self.transport.get_returncode()

    def listen(self, on_output: OutputSink) -> None:
        """Hand output to `on_output` from now on, starting with what already came."""
        early, self.protocol.early = self.protocol.early, []
        for kind, data in early:
            on_output(kind, data)
        self.protocol.on_output = on_output

    async def wait(self) -> int:
        """The exit status, as soon as the process itself has exited."""
        await asyncio.shield(self.protocol.exited)
        code = self.transport.get_returncode()
        return code if code is not None else -1

    async def finish_output(self) -> None:
        """After the exit: take what is still in the pipes, then stop reading them."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.protocol.closed), OUTPUT_GRACE)
        self.transport.close()

    async def kill_tree(self) -> list[int]:
        """End the command and everything it started; the pids that were signalled."""
        return await end_processes(lambda: tree(self.pid, self.marker))


async def spawn_bash(
    command: str, cwd: str, env: dict[str, str], on_output: OutputSink | None = None
) -> Child:
    """`bash -c command` with stdin from /dev/null and piped output, leading its own process
    group, marked so that everything it starts can be found and ended with it. Output goes to
    `on_output`, or is held until `Child.listen` says where."""
    loop = asyncio.get_running_loop()
    marker = new_marker()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ChildProtocol(on_output),
        "bash",
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env={**env, MARKER_VAR: marker},
        start_new_session=True,
    )
    return Child(transport, protocol, marker)


@dataclass
class Finished:
    """A command run to its end: its exit code, capped output, and the pids killed if it ran
    past its time limit (then `exit_code` is the killed shell's)."""

    exit_code: int
    stdout: str
    stderr: str
    killed: list[int]

    @property
    def timed_out(self) -> bool:
        return bool(self.killed)


async def run_to_end(
    command: str, cwd: str, env: dict[str, str], timeout: float | None, output_limit: int
) -> Finished:
    """Run `bash -c command` until it exits, or kill it and all it started after `timeout`
    seconds. Done when bash exits, even if something it left behind still holds its output."""
    output = {"stdout": CappedBytes(output_limit), "stderr": CappedBytes(output_limit)}
    child = await spawn_bash(command, cwd, env, lambda kind, data: output[kind].add(data))
    killed: list[int] = []
    try:
        code = await asyncio.wait_for(child.wait(), timeout)
    except asyncio.TimeoutError:
        killed = await child.kill_tree()
        code = await child.wait()
    await child.finish_output()
    return Finished(code, output["stdout"].text(), output["stderr"].text(), killed)


def _parents() -> dict[int, int]:
    """pid → parent pid for every process we can see (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(*pids: int) -> list[int]:
    """Every process below `pids` through parent links, whatever group it moved to."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [child for pid in pids for child in children.get(pid, [])]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def marked(prefix: str) -> list[int]:
    """Every live process whose environment carries a marker starting with `prefix`."""
    needle = f"\0{MARKER_VAR}={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in b"\0" + environ and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def tree(pid: int, marker: str, *, include_root: bool = True) -> list[int]:
    """A command's process, its descendants and every process carrying its marker."""
    found = set(descendants(pid)) | set(marked(marker))
    if include_root:
        found.add(pid)
    else:
        found.discard(pid)
    return sorted(found)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def send_signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def end_processes(find: Callable[[], list[int]], grace: float = KILL_GRACE) -> list[int]:
    """SIGTERM what `find` returns, give it `grace` seconds, then SIGKILL whatever `find` still
    returns (a process may have started more while dying). The pids that were signalled."""
    targets = find()
    signalled = set(targets)
    send_signal(targets, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    end = loop.time() + grace
    # Processes that are not our children cannot be waited for: poll their state.
    while any(alive(pid) for pid in targets) and loop.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    survivors = [pid for pid in find() if alive(pid)]
    signalled.update(survivors)
    send_signal(survivors, signal.SIGKILL)
    return sorted(signalled)


_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listening_sockets() -> dict[str, int]:
    """Listening TCP sockets (any address, IPv4 or IPv6), as `socket:[inode]` → port."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == _LISTEN:
                        sockets[f"socket:[{inode}]"] = int(local.rsplit(":", 1)[1], 16)
        except OSError:
            continue
    return sockets


def ports_held(pids: Iterable[int], sockets: dict[str, int]) -> set[int]:
    """The ports of those of `sockets` that the processes `pids` hold open."""
    ports = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                port = sockets.get(os.readlink(f"/proc/{pid}/fd/{fd}"))
                if port is not None:
                    ports.add(port)
    return ports
