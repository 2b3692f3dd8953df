"""`sandbox.files`: E2B's filesystem calls, sync (`Files`) and async (`AsyncFiles`).

Each method of the pair is one line over the same `calls` (the route, the body, how the answer
is read), so the two stay alike; `tests/unit/test_client_typing.py` checks that their
signatures match and that a user's file using them passes `mypy --strict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import posixpath
import queue
import socket
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Literal, overload

import httpx

from jupyter_interp_ext.protocol.errors import status_for

from . import calls
from .errors import InvalidArgumentException, SandboxError, SandboxException, error_from_answer
from .models import (
    EntryInfo,
    FilesystemEvent,
    FilesystemEventType,
    WriteEntry,
    WriteInfo,
)

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox, Sandbox

ReadFormat = Literal["text", "bytes", "stream"]

# The watcher's event types (inotify's names) as E2B's.
_EVENT_TYPES = {
    "create": FilesystemEventType.CREATE,
    "modify": FilesystemEventType.WRITE,
    "attrib": FilesystemEventType.CHMOD,
    "delete": FilesystemEventType.REMOVE,
    "move_from": FilesystemEventType.RENAME,
    "move_to": FilesystemEventType.RENAME,
}


def stream_error(event: dict[str, Any]) -> SandboxError:
    """The error a stream reported in its last event, after its answer had begun: typed by
    the status its code has everywhere else (a missing file is a `NotFoundError`)."""
    code = str(event.get("code", ""))
    message = str(event.get("error", "the stream failed"))
    return error_from_answer(status_for(code), {"code": code, "message": message}, message)


class _Reader:
    """Collects the metadata of a streamed file read, then decodes its chunks."""

    def __init__(self) -> None:
        self.binary = False

    def feed(self, event: dict[str, Any]) -> bytes | None:
        if event.get("type") == "metadata":
            self.binary = bool(event.get("isBinary"))
        elif event.get("type") == "error":
            raise stream_error(event)
        return calls.stream_chunk(event, self.binary)


class _Watch:
    """Turns a watch stream's events into E2B's `FilesystemEvent`s, named relative to the
    watched folder (which the first event, `watching`, names)."""

    def __init__(self) -> None:
        self.root = ""
        self.started = False

    def feed(self, event: dict[str, Any]) -> FilesystemEvent | None:
        kind = event.get("type")
        if kind == "watching":
            self.root, self.started = str(event.get("path", "")), True
        elif kind == "error":
            raise stream_error(event)
        elif kind == "event" and (mapped := _EVENT_TYPES.get(str(event.get("eventType")))):
            name = posixpath.relpath(str(event.get("path", "")), self.root or ".")
            return FilesystemEvent(name, mapped)
        return None


def _read_format(format: str) -> None:
    if format not in ("text", "bytes", "stream"):
        raise InvalidArgumentException(f"format must be text, bytes or stream, not {format!r}")


def _depth(depth: int | None) -> int | None:
    if depth is not None and depth < 1:
        raise InvalidArgumentException("depth should be at least 1")
    return depth


def _entry_of(entry: WriteEntry | dict[str, Any]) -> tuple[str, str | bytes | IO[Any]]:
    if isinstance(entry, WriteEntry):
        return entry.path, entry.data
    return entry["path"], entry["data"]


def _writes(
    files: list[WriteEntry] | list[dict[str, Any]], session_id: str | None
) -> list[calls.Call[WriteInfo]]:
    return [calls.write_file(*_entry_of(entry), session_id) for entry in files]


class Files:
    """Files in the server's allowed roots; relative paths follow the session's directory.
    `user` is accepted and ignored everywhere (files belong to the server's user)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    @overload
    def read(
        self,
        path: str,
        format: Literal["text"] = "text",
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> str: ...

    @overload
    def read(
        self,
        path: str,
        format: Literal["bytes"],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bytearray: ...

    @overload
    def read(
        self,
        path: str,
        format: Literal["stream"],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> Iterator[bytes]: ...

    def read(
        self,
        path: str,
        format: ReadFormat = "text",
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> str | bytearray | Iterator[bytes]:
        """A file's content as E2B's `files.read` gives it: `format="text"` (UTF-8),
        `"bytes"` (a bytearray) or `"stream"` (its bytes chunk by chunk, never held whole)."""
        _read_format(format)
        if format == "stream":
            return self._sandbox._fed(calls.read_stream(path, session_id), _Reader().feed)
        if format == "bytes":
            return self._sandbox._call(calls.read_bytes(path, session_id, request_timeout))
        return self._sandbox._call(calls.read_text(path, session_id, request_timeout))

    def write(
        self,
        path: str,
        data: str | bytes | IO[Any],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> WriteInfo:
        """Write text, bytes or a file object's content whole (parents created; the file is
        replaced only once written)."""
        return self._sandbox._call(calls.write_file(path, data, session_id, request_timeout))

    def write_files(
        self,
        files: list[WriteEntry] | list[dict[str, Any]],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> list[WriteInfo]:
        """Write several files, in order: each a `WriteEntry` or a dict with its `path` and
        `data`."""
        return [self._sandbox._call(call) for call in _writes(files, session_id)]

    def list(
        self,
        path: str = ".",
        depth: int | None = 1,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> list[EntryInfo]:
        """A folder's entries down to `depth` levels (1: its own; None: all)."""
        call = calls.list_files(path, _depth(depth), session_id, request_timeout)
        return self._sandbox._call(call)

    def exists(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bool:
        """Whether a path exists."""
        return self._sandbox._call(calls.exists(path, session_id, request_timeout))

    def get_info(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> EntryInfo:
        """One file's or directory's information (NotFoundException if there is none)."""
        return self._sandbox._call(calls.entry_info(path, session_id, request_timeout))

    def make_dir(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bool:
        """Create a directory and its parents: True, or False if it existed."""
        return self._sandbox._call(calls.make_dir(path, session_id, request_timeout))

    def rename(
        self,
        old_path: str,
        new_path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> EntryInfo:
        """Rename or move (into `new_path` if it is a directory): the entry where it went."""
        moved = self._sandbox._call(calls.rename(old_path, new_path, session_id, request_timeout))
        return self._sandbox._call(calls.entry_info(moved, session_id, request_timeout))

    def remove(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> None:
        """Delete a file."""
        self._sandbox._call(calls.remove(path, session_id, request_timeout))

    def watch_dir(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        recursive: bool = False,
        session_id: str | None = None,
    ) -> WatchHandle:
        """Watch a folder (and with `recursive`, its sub-folders): a handle whose
        `get_new_events()` gives what changed since the last call, until `stop()`. Changes
        made once this returns are seen."""
        handle = WatchHandle(self._sandbox, calls.watch(path, recursive, session_id))
        handle._started(request_timeout)
        return handle


class WatchHandle:
    """A folder being watched, as E2B's sync handle: `get_new_events()` and `stop()`. A
    thread of its own follows the server's stream and keeps the events until asked."""

    def __init__(self, sandbox: Sandbox, call: calls.Call[Any]) -> None:
        self._sandbox = sandbox
        self._call = call
        self._events: queue.SimpleQueue[FilesystemEvent] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._response: httpx.Response | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True, name="watch_dir")
        self._thread.start()

    def _follow(self) -> None:
        watch = _Watch()
        try:
            for event in self._sandbox._events(self._call, opened=self._opened):
                if (change := watch.feed(event)) is not None:
                    self._events.put(change)
                if watch.started:
                    self._ready.set()
        except BaseException as exc:  # kept for the caller, unless it asked for the end
            if not self._stopping.is_set():
                self._failure = exc
        finally:
            self._ready.set()

    def _opened(self, response: httpx.Response) -> None:
        self._response = response

    def _started(self, request_timeout: float | None) -> None:
        """Wait until the server watches (its first event), or raise why it does not."""
        self._ready.wait(request_timeout)
        if self._failure is not None:
            raise self._failure
        if not self._ready.is_set():
            self.stop()
            raise SandboxException("the watch did not start within request_timeout")

    def get_new_events(self, request_timeout: float | None = None) -> list[FilesystemEvent]:
        """The changes seen since the last call (or since the watch began)."""
        if self._stopping.is_set():
            raise SandboxException("The watcher is already stopped")
        events = []
        while not self._events.empty():
            events.append(self._events.get())
        if not events and self._failure is not None:
            raise self._failure
        return events

    def stop(self, request_timeout: float | None = None) -> None:
        """Stop watching: the stream's connection is shut, which ends the server's watch."""
        self._stopping.set()
        stream = self._response.extensions.get("network_stream") if self._response else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's read at once
        self._thread.join(request_timeout)


class AsyncFiles:
    """`Files` for asyncio: the same methods, awaited."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    @overload
    async def read(
        self,
        path: str,
        format: Literal["text"] = "text",
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> str: ...

    @overload
    async def read(
        self,
        path: str,
        format: Literal["bytes"],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bytearray: ...

    @overload
    async def read(
        self,
        path: str,
        format: Literal["stream"],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> AsyncGenerator[bytes, None]: ...

    async def read(
        self,
        path: str,
        format: ReadFormat = "text",
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> str | bytearray | AsyncGenerator[bytes, None]:
        """As `Files.read`; a stream is an async iterator (close it to leave early)."""
        _read_format(format)
        if format == "stream":
            return self._sandbox._fed(calls.read_stream(path, session_id), _Reader().feed)
        if format == "bytes":
            return await self._sandbox._call(calls.read_bytes(path, session_id, request_timeout))
        return await self._sandbox._call(calls.read_text(path, session_id, request_timeout))

    async def write(
        self,
        path: str,
        data: str | bytes | IO[Any],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> WriteInfo:
        """As `Files.write`."""
        return await self._sandbox._call(calls.write_file(path, data, session_id, request_timeout))

    async def write_files(
        self,
        files: list[WriteEntry] | list[dict[str, Any]],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> list[WriteInfo]:
        """As `Files.write_files`."""
        return [await self._sandbox._call(call) for call in _writes(files, session_id)]

    async def list(
        self,
        path: str = ".",
        depth: int | None = 1,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> list[EntryInfo]:
        """As `Files.list`."""
        call = calls.list_files(path, _depth(depth), session_id, request_timeout)
        return await self._sandbox._call(call)

    async def exists(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bool:
        """As `Files.exists`."""
        return await self._sandbox._call(calls.exists(path, session_id, request_timeout))

    async def get_info(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> EntryInfo:
        """As `Files.get_info`."""
        return await self._sandbox._call(calls.entry_info(path, session_id, request_timeout))

    async def make_dir(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> bool:
        """As `Files.make_dir`."""
        return await self._sandbox._call(calls.make_dir(path, session_id, request_timeout))

    async def rename(
        self,
        old_path: str,
        new_path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> EntryInfo:
        """As `Files.rename`."""
        call = calls.rename(old_path, new_path, session_id, request_timeout)
        moved = await self._sandbox._call(call)
        return await self._sandbox._call(calls.entry_info(moved, session_id, request_timeout))

    async def remove(
        self,
        path: str,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> None:
        """As `Files.remove`."""
        await self._sandbox._call(calls.remove(path, session_id, request_timeout))

    async def watch_dir(
        self,
        path: str,
        on_event: Callable[[FilesystemEvent], Awaitable[Any] | Any],
        on_exit: Callable[[Exception | None], Awaitable[Any] | Any] | None = None,
        user: str | None = None,
        request_timeout: float | None = None,
        timeout: float | None = 60,
        recursive: bool = False,
        session_id: str | None = None,
    ) -> AsyncWatchHandle:
        """Watch a folder, as E2B's async `watch_dir`: `on_event` is called with each change
        (a coroutine function is awaited), `on_exit` once the watch ends (with the error that
        ended it, or None), after `timeout` seconds (60; 0: no limit) or `stop()`. Changes
        made once this returns are seen."""
        events = self._sandbox._events(calls.watch(path, recursive, session_id))
        handle = AsyncWatchHandle(events, on_event, on_exit, timeout or None)
        await handle._started(request_timeout)
        return handle


class AsyncWatchHandle:
    """A folder being watched by a task that calls `on_event`; `stop()` ends it."""

    def __init__(
        self,
        events: AsyncGenerator[dict[str, Any], None],
        on_event: Callable[[FilesystemEvent], Awaitable[Any] | Any],
        on_exit: Callable[[Exception | None], Awaitable[Any] | Any] | None,
        timeout: float | None,
    ) -> None:
        self._events = events
        self._on_event = on_event
        self._on_exit = on_exit
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow(timeout))

    async def _follow(self, timeout: float | None) -> None:
        error: Exception | None = None
        try:
            await asyncio.wait_for(self._deliver(), timeout)
        except asyncio.TimeoutError:
            pass
        except Exception as exc:
            error = exc
        finally:
            await self._events.aclose()
        if not self._ready.done():
            self._ready.set_exception(error or SandboxException("the watch ended at once"))
            return
        if self._on_exit is not None and inspect.isawaitable(outcome := self._on_exit(error)):
            await outcome

    async def _deliver(self) -> None:
        watch = _Watch()
        async for event in self._events:
            change = watch.feed(event)
            if watch.started and not self._ready.done():
                self._ready.set_result(None)
            if change is not None and inspect.isawaitable(outcome := self._on_event(change)):
                await outcome

    async def _started(self, request_timeout: float | None) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), request_timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop watching (the stream closes, which ends the server's watch); `on_exit` is
        called with None."""
        if self._task.done():
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._on_exit is not None and inspect.isawaitable(outcome := self._on_exit(None)):
            await outcome
