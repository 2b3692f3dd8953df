"""Finding and killing every process a shell or command started, not just the first one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path


async def spawn_bash(command: str, cwd: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`bash -c command` with stdin from /dev/null, piped output, leading its own process group
    (so it and everything it starts can be killed together)."""
    return await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


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


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first found, whatever group they moved to."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def signal_tree(pid: int, sig: int = signal.SIGKILL, *, include_root: bool = True) -> None:
    """Send `sig` to a process's group (it leads one) and to all its descendants."""
    targets = descendants(pid) + ([pid] if include_root else [])
    if include_root:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    for target in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)
