"""Terminals from the client, as E2B's `sandbox.pty`: `create(size, on_data, cwd=, envs=,
timeout=)` opens one (a fresh execution session's terminal, over `/ws/pty`), and the handle it
returns or its `pid` types into it, resizes it, waits for it and kills it.

Each terminal is a session of its own (`pty_…`), so `cwd` and `envs` are the session's (with
the sandbox's `envs`); killing the terminal, or the sandbox, deletes the session, which ends
the terminal and everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_sync

from . import calls
from .errors import CommandExitException, NotFoundException, SandboxException, TimeoutException
from .models import CommandResult

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox, Sandbox, _Common

DataCallback = Callable[[bytes], Any]


@dataclass(frozen=True)
class PtySize:
    """A terminal's size in character cells (E2B's `PtySize`)."""

    rows: int
    cols: int


class _Ending:
    """How a terminal ended: its exit code (None: the connection ended without one)."""

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.timed_out = False

    def take(self, message: str | bytes) -> bool:
        """Note a control message; whether it says the terminal exited."""
        if isinstance(message, bytes):
            return False
        control = json.loads(message)
        if control.get("type") == "exit":
            self.exit_code = int(control.get("code", -1))
            return True
        return False

    def result(self) -> CommandResult:
        """E2B's answer: a result for exit code 0, else the exception it raises."""
        if self.timed_out:
            raise TimeoutException("The terminal was killed at its timeout")
        if self.exit_code is None:
            raise SandboxException("The terminal's connection ended before the terminal did")
        if self.exit_code != 0:
            raise CommandExitException("", "", self.exit_code)
        return CommandResult("", "", 0)


def _url(sandbox: _Common, session_id: str, size: PtySize) -> str:
    base = sandbox._settings.base_url.replace("http", "ws", 1)
    query = urlencode({"sessionId": session_id, "cols": size.cols, "rows": size.rows})
    return f"{base}ws/pty?{query}"


def _opening(message: str | bytes, shown: list[bytes]) -> int | None:
    """One message before `ready`: what the terminal showed so far is kept in `shown`; the
    pid `ready` names is returned (None until it comes)."""
    if isinstance(message, bytes):
        shown.append(message)
        return None
    control = json.loads(message)
    return int(control["pid"]) if control.get("type") == "ready" else None


def _resize(size: PtySize) -> str:
    return json.dumps({"type": "resize", "cols": size.cols, "rows": size.rows})


def _new_session_id() -> str:
    return f"pty_{uuid.uuid4().hex[:12]}"


class _Timer(Protocol):
    def cancel(self) -> None: ...


class _Opened(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def _timer(self) -> _Timer | None: ...


HandleT = TypeVar("HandleT", bound=_Opened)


class _OpenTerminals(Generic[HandleT]):
    """The terminals a client opened, by pid: what `Pty` and `AsyncPty` share."""

    def __init__(self) -> None:
        self._open: dict[int, HandleT] = {}

    def _handle(self, pid: int) -> HandleT:
        handle = self._open.get(pid)
        if handle is None:
            raise NotFoundException(f"No terminal with pid {pid} is open in this client")
        return handle

    def _forget(self, pid: int, owned_sessions: set[str]) -> HandleT | None:
        """The handle of a terminal about to be killed, no longer the client's (None: it
        was not open here): its timeout is off, and the sandbox no longer owns its session."""
        handle = self._open.pop(pid, None)
        if handle is not None:
            if handle._timer is not None:
                handle._timer.cancel()
            owned_sessions.discard(handle.session_id)
        return handle


class PtyHandle:
    """An open terminal: its `pid`, what it prints (to `on_data`, or by iterating the
    handle), `send_stdin`, `resize`, `wait()` and `kill()`."""

    def __init__(
        self,
        pty: Pty,
        session_id: str,
        ws: ClientConnection,
        pid: int,
        on_data: DataCallback | None,
        shown: list[bytes],
    ) -> None:
        self._pty = pty
        self._shown = shown  # what the terminal showed before this connection
        self.session_id = session_id
        self.pid = pid
        self._ws = ws
        self._on_data = on_data
        self._ending = _Ending()
        self._ended = threading.Event()
        self._timer: threading.Timer | None = None  # kills it at its timeout
        self._reader: threading.Thread | None = None
        if on_data is not None:
            self._reader = threading.Thread(target=self._read_all, daemon=True)
            self._reader.start()

    def _messages(self) -> Iterator[bytes]:
        yield from self._shown
        self._shown = []
        try:
            for message in self._ws:
                if isinstance(message, bytes):
                    yield message
                elif self._ending.take(message):
                    return
        except ConnectionClosed:
            return
        finally:
            self._ended.set()

    def _read_all(self) -> None:
        assert self._on_data is not None
        for data in self._messages():
            self._on_data(data)

    def __iter__(self) -> Iterator[tuple[None, None, bytes]]:
        """The terminal's output as E2B's `(stdout, stderr, pty)` triples, to its end."""
        if self._reader is not None:
            raise SandboxException("This terminal's output goes to its on_data callback")
        for data in self._messages():
            yield None, None, data

    def send_stdin(self, data: bytes | str) -> None:
        """Type into the terminal."""
        self._ws.send(data.encode() if isinstance(data, str) else data)

    def resize(self, size: PtySize) -> None:
        """Show the terminal at this size (its program is told, as by a window resize)."""
        self._ws.send(_resize(size))

    def wait(self, on_pty: DataCallback | None = None) -> CommandResult:
        """Wait for the terminal's program to end: its result (CommandExitException for a
        non-zero exit)."""
        if self._reader is None:
            for data in self._messages():
                if on_pty is not None:
                    on_pty(data)
        self._ended.wait()
        if self._ending.timed_out and self._timer is not None:
            self._timer.join()  # (its kill has been answered)
        return self._ending.result()

    @property
    def ended(self) -> bool:
        """Whether the terminal (or this connection to it) has ended."""
        return self._ended.is_set()

    def kill(self) -> bool:
        """End the terminal and everything it started: whether it was still there."""
        return self._pty.kill(self.pid)

    def disconnect(self) -> None:
        """Stop reading; the terminal goes on (a person in JupyterLab may still use it)."""
        self._ws.close()
        self._pty._open.pop(self.pid, None)


class Pty(_OpenTerminals["PtyHandle"]):
    """`sandbox.pty`: E2B's terminal methods (its handles are kept here by pid)."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__()
        self._sandbox = sandbox

    def create(
        self,
        size: PtySize,
        on_data: DataCallback | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session: str | None = None,
    ) -> PtyHandle:
        """Open a terminal of `size` in `cwd` with `envs`; its output goes to `on_data` (or
        to whoever iterates the handle). It is killed after `timeout` seconds (0 or None:
        never). `session` (ours, not E2B's): open that execution session's terminal instead
        (shared with whoever else has it open; `cwd` and `envs` are the session's)."""
        session_id = session or _new_session_id()
        if session is None:
            self._sandbox._call(self._sandbox._new_session(session_id, envs, cwd, None))
        # The connection outlives this call: entered here, closed with the handle.
        ws = contextlib.ExitStack().enter_context(
            connect_sync(
                _url(self._sandbox, session_id, size),
                additional_headers=self._sandbox._settings.headers,
                open_timeout=request_timeout or self._sandbox._settings.timeout.connect,
                max_size=None,
            )
        )
        shown: list[bytes] = []
        pid = None
        while pid is None:
            pid = _opening(ws.recv(), shown)
        handle = self._open[pid] = PtyHandle(self, session_id, ws, pid, on_data, shown)
        if timeout:
            handle._timer = threading.Timer(timeout, self._time_out, (handle,))
            handle._timer.daemon = True
            handle._timer.start()
        return handle

    def _time_out(self, handle: PtyHandle) -> None:
        if not handle._ended.is_set():
            handle._ending.timed_out = True
            with contextlib.suppress(SandboxException):  # (the sandbox may be closed by now)
                self.kill(handle.pid)

    def send_stdin(self, pid: int, data: bytes | str, request_timeout: float | None = None) -> None:
        """Type into the terminal `create` gave this pid."""
        self._handle(pid).send_stdin(data)

    def resize(self, pid: int, size: PtySize, request_timeout: float | None = None) -> None:
        """Resize the terminal `create` gave this pid."""
        self._handle(pid).resize(size)

    def kill(self, pid: int, request_timeout: float | None = None) -> bool:
        """End the terminal (its session is deleted): whether it was still there."""
        handle = self._forget(pid, self._sandbox._owned.sessions)
        if handle is None:
            return False
        try:
            self._sandbox._call(calls.delete_session(handle.session_id))
        except NotFoundException:
            return False
        return True


class AsyncPtyHandle:
    """`PtyHandle` for asyncio: the same methods, awaited; `on_data` may be a coroutine
    function."""

    def __init__(
        self,
        pty: AsyncPty,
        session_id: str,
        ws: AsyncConnection,
        pid: int,
        on_data: DataCallback | None,
        shown: list[bytes],
    ) -> None:
        self._pty = pty
        self._shown = shown  # what the terminal showed before this connection
        self.session_id = session_id
        self.pid = pid
        self._ws = ws
        self._on_data = on_data
        self._ending = _Ending()
        self._timer: asyncio.TimerHandle | None = None  # kills it at its timeout
        self._killing: asyncio.Task[None] | None = None  # that kill, once started
        self._reader = asyncio.ensure_future(self._read_all())

    async def _read_all(self) -> None:
        for data in self._shown:
            await self._show(data)
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    await self._show(message)
                elif self._ending.take(message):
                    return
        except ConnectionClosed:
            return

    async def _show(self, data: bytes) -> None:
        if self._on_data is not None:
            done = self._on_data(data)
            if inspect.isawaitable(done):
                await done

    async def send_stdin(self, data: bytes | str) -> None:
        """Type into the terminal."""
        await self._ws.send(data.encode() if isinstance(data, str) else data)

    async def resize(self, size: PtySize) -> None:
        """Show the terminal at this size."""
        await self._ws.send(_resize(size))

    async def wait(self) -> CommandResult:
        """Wait for the terminal's program to end: its result (CommandExitException for a
        non-zero exit)."""
        await asyncio.shield(self._reader)
        if self._killing is not None:
            await asyncio.shield(self._killing)  # (its kill has been answered)
        return self._ending.result()

    async def kill(self) -> bool:
        """End the terminal and everything it started: whether it was still there."""
        return await self._pty.kill(self.pid)

    async def disconnect(self) -> None:
        """Stop reading; the terminal goes on."""
        self._reader.cancel()
        await self._ws.close()
        self._pty._open.pop(self.pid, None)


class AsyncPty(_OpenTerminals["AsyncPtyHandle"]):
    """`Pty` for asyncio."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        super().__init__()
        self._sandbox = sandbox

    async def create(
        self,
        size: PtySize,
        on_data: DataCallback | Callable[[bytes], Awaitable[Any]] | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session: str | None = None,
    ) -> AsyncPtyHandle:
        """`Pty.create`, awaited; `on_data` may be a coroutine function."""
        session_id = session or _new_session_id()
        if session is None:
            await self._sandbox._call(self._sandbox._new_session(session_id, envs, cwd, None))
        ws = await connect_async(
            _url(self._sandbox, session_id, size),
            additional_headers=self._sandbox._settings.headers,
            open_timeout=request_timeout or self._sandbox._settings.timeout.connect,
            max_size=None,
        )
        shown: list[bytes] = []
        pid = None
        while pid is None:
            pid = _opening(await ws.recv(), shown)
        handle = self._open[pid] = AsyncPtyHandle(self, session_id, ws, pid, on_data, shown)
        if timeout:
            handle._timer = asyncio.get_running_loop().call_later(timeout, self._time_out, handle)
        return handle

    def _time_out(self, handle: AsyncPtyHandle) -> None:
        if not handle._reader.done():
            handle._ending.timed_out = True
            handle._killing = asyncio.ensure_future(self._kill_quietly(handle.pid))

    async def _kill_quietly(self, pid: int) -> None:
        with contextlib.suppress(SandboxException):  # (the sandbox may be closed by now)
            await self.kill(pid)

    async def send_stdin(
        self, pid: int, data: bytes | str, request_timeout: float | None = None
    ) -> None:
        """Type into the terminal `create` gave this pid."""
        await self._handle(pid).send_stdin(data)

    async def resize(self, pid: int, size: PtySize, request_timeout: float | None = None) -> None:
        """Resize the terminal `create` gave this pid."""
        await self._handle(pid).resize(size)

    async def kill(self, pid: int, request_timeout: float | None = None) -> bool:
        """End the terminal (its session is deleted): whether it was still there."""
        handle = self._forget(pid, self._sandbox._owned.sessions)
        if handle is None:
            return False
        try:
            await self._sandbox._call(calls.delete_session(handle.session_id))
        except NotFoundException:
            return False
        return True
