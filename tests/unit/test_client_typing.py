"""The client's types, as a user's type checker sees them: every public call of both clients
has a concrete return type (a user's file passes `mypy --strict`), and each async method has
the same parameters as its sync twin."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy

from jupyter_interp_ext import client

USER_FILE = """
from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import Any, assert_type

from jupyter_interp_ext.client import (
    AsyncCommandHandle, AsyncSandbox, AsyncWatchHandle, CodeContext, CommandHandle,
    CommandResult, EntryInfo, Execution, ExecutionInfo, FilesystemEvent, OutputMessage,
    ProcessInfo, Sandbox, SandboxInfo, SessionInfo, StreamItem, WatchHandle, WriteEntry,
    WriteInfo, get_sandbox,
)
from jupyter_interp_ext.client.charts import Chart


def sync(sandbox: Sandbox) -> None:
    assert_type(Sandbox.create(envs={"A": "1"}), Sandbox)
    assert_type(Sandbox.connect(sandbox.sandbox_id), Sandbox)
    execution = sandbox.run_code("1 + 1", on_stdout=lambda m: print(m.line), envs={"A": "1"})
    assert_type(execution, Execution)
    assert_type(sandbox.run_code("1 + 1", detach=True), str)
    assert_type(sandbox.executions.get("e"), ExecutionInfo)
    assert_type(sandbox.executions.stream("e", after=3), Iterator[StreamItem])
    assert_type(sandbox.executions.cancel("e"), ExecutionInfo)
    assert_type(execution.text, str | None)
    assert_type(execution.results[0].chart, Chart | None)
    assert_type(execution.results[0].data, dict[str, list[Any]] | None)
    context = sandbox.create_code_context(language="python")
    assert_type(context, CodeContext)
    assert_type(sandbox.list_code_contexts(), list[CodeContext])
    sandbox.restart_code_context(context)
    sandbox.remove_code_context(context)
    assert_type(sandbox.commands.run("ls"), CommandResult)
    handle = sandbox.commands.run("sleep 1", background=True)
    assert_type(handle, CommandHandle)
    assert_type(handle.wait(), CommandResult)
    assert_type(sandbox.commands.list(), list[ProcessInfo])
    assert_type(sandbox.commands.kill(1), bool)
    assert_type(sandbox.files.read("a"), str)
    assert_type(sandbox.files.read("a", format="bytes"), bytearray)
    assert_type(sandbox.files.read("a", format="stream"), Iterator[bytes])
    assert_type(sandbox.files.write("a", b"x"), WriteInfo)
    assert_type(sandbox.files.write_files([WriteEntry("a", "x")]), list[WriteInfo])
    assert_type(sandbox.files.list("."), list[EntryInfo])
    assert_type(sandbox.files.get_info("a"), EntryInfo)
    assert_type(sandbox.files.rename("a", "b"), EntryInfo)
    assert_type(sandbox.files.exists("a"), bool)
    assert_type(sandbox.files.make_dir("d"), bool)
    watch = sandbox.files.watch_dir(".")
    assert_type(watch, WatchHandle)
    assert_type(watch.get_new_events(), list[FilesystemEvent])
    assert_type(sandbox.sessions.create(), SessionInfo)
    assert_type(sandbox.processes.start("sleep 1"), ProcessInfo)
    assert_type(sandbox.processes.logs("p"), tuple[str, str])
    assert_type(sandbox.processes.stream("p"), Iterator[OutputMessage])
    assert_type(Sandbox.list(hub_url="http://hub/"), list[SandboxInfo])
    assert_type(get_sandbox("http://hub/", "sandbox-1"), Sandbox)
    assert_type(sandbox.pause(), bool)
    assert_type(sandbox.kill(), bool)


async def use_async(sandbox: AsyncSandbox) -> None:
    assert_type(await AsyncSandbox.create(), AsyncSandbox)
    assert_type(await AsyncSandbox.connect(sandbox.sandbox_id), AsyncSandbox)
    assert_type(await sandbox.run_code("1 + 1", language="python"), Execution)
    assert_type(await sandbox.run_code("1 + 1", detach=True), str)
    assert_type(await sandbox.executions.get("e"), ExecutionInfo)
    assert_type(sandbox.executions.stream("e"), AsyncGenerator[StreamItem, None])
    assert_type(await sandbox.create_code_context(), CodeContext)
    assert_type(await sandbox.list_code_contexts(), list[CodeContext])
    assert_type(await sandbox.commands.run("ls"), CommandResult)
    handle = await sandbox.commands.run("sleep 1", background=True)
    assert_type(handle, AsyncCommandHandle)
    assert_type(await handle.wait(), CommandResult)
    assert_type(await sandbox.files.read("a"), str)
    assert_type(await sandbox.files.read("a", format="bytes"), bytearray)
    assert_type(
        await sandbox.files.read("a", format="stream"), AsyncGenerator[bytes, None]
    )
    assert_type(await sandbox.files.list("."), list[EntryInfo])
    assert_type(await sandbox.files.rename("a", "b"), EntryInfo)
    watch = await sandbox.files.watch_dir(".", on_event=lambda e: print(e.name, e.type))
    assert_type(watch, AsyncWatchHandle)
    assert_type(await sandbox.processes.list(), list[ProcessInfo])
    assert_type(await AsyncSandbox.list(), list[SandboxInfo])
    assert_type(await sandbox.pause(), bool)
    assert_type(await sandbox.kill(), bool)


asyncio.run(use_async(AsyncSandbox("http://127.0.0.1:1/")))
"""

PAIRS = [
    (client.Sandbox, client.AsyncSandbox),
    (client.Files, client.AsyncFiles),
    (client.Commands, client.AsyncCommands),
    (client.Sessions, client.AsyncSessions),
    (client.Processes, client.AsyncProcesses),
    (client.Executions, client.AsyncExecutions),
    (client.CommandHandle, client.AsyncCommandHandle),
    (client.WatchHandle, client.AsyncWatchHandle),
]
ASYNC_ONLY = {"aclose", "__aenter__", "__aexit__", "__aiter__"}
SYNC_ONLY = {"__enter__", "__exit__", "__iter__", "get_new_events"}
# E2B's async watch calls back (on_event, on_exit, timeout); its sync one is polled.
DIFFERENT = {("watch_dir", "AsyncFiles"), ("stop", "AsyncWatchHandle")}


@pytest.mark.slow
def test_a_users_file_passes_mypy_strict(tmp_path: Path) -> None:
    user_file = tmp_path / "agent.py"
    user_file.write_text(textwrap.dedent(USER_FILE))
    config = tmp_path / "mypy.ini"  # the user's own settings, not this repository's
    config.write_text("[mypy]\n")
    report, errors, status = mypy.run(
        [
            "--strict",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user_file),
        ]
    )
    assert status == 0, report + errors


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name in ASYNC_ONLY | SYNC_ONLY
    } | {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if isinstance(member, classmethod)
        for member in [member.__func__]
    }


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=[s.__name__ for s, _ in PAIRS])
def test_each_async_method_has_its_sync_twins_parameters(sync: type, async_: type) -> None:
    sync_methods, async_methods = public_methods(sync), public_methods(async_)
    assert set(sync_methods) - SYNC_ONLY == set(async_methods) - ASYNC_ONLY
    for name, signature in sync_methods.items():
        if name in SYNC_ONLY or (name, async_.__name__) in DIFFERENT:
            continue
        twin = async_methods[name]
        assert list(signature.parameters.values()) == list(twin.parameters.values()), name
        assert inspect.iscoroutinefunction(getattr(async_, name)) or name in {
            "run_code_stream",
            "stream",
        }, name
