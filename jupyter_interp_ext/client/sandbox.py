"""`Sandbox` and `AsyncSandbox`: the whole API from Python, with the same methods.

Most methods are written once, in the shared API classes below: they build a `calls.Call` and
hand it to the client, whose `_call` returns the answer (`Sandbox`) or a coroutine of it
(`AsyncSandbox`), so `sandbox.files.read(p)` and `await sandbox.files.read(p)` are one method.
Only what iterates a stream is written twice, around the same sans-IO pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import IO, Any, TypeVar

import httpx
from httpx_sse import aconnect_sse, connect_sse

from jupyter_interp_ext.protocol.errors import status_for

from . import calls
from .errors import (
    InvalidArgumentException,
    NotFoundError,
    SandboxError,
    TransportError,
    error_from_answer,
)
from .models import (
    CodeContext,
    CommandResult,
    Execution,
    OutputMessage,
    ProcessInfo,
    RunCallbacks,
    StreamItem,
    checked,
    nanoseconds,
    run_item,
)

ContextLike = CodeContext | str | None
SandboxT = TypeVar("SandboxT", bound="_Common")
RETRIES = 3  # attempts for a safe request whose connection failed
RETRY_PAUSE = 0.2  # seconds, doubled after each failed attempt
# A request goes out as headers then body: without TCP_NODELAY the body can wait for an ACK.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class _Settings:
    """Where the server is and how to authenticate, from arguments or the environment."""

    def __init__(
        self,
        server_url: str | None,
        token: str | None,
        prefix: str,
        timeout: float | httpx.Timeout,
    ) -> None:
        url = server_url or os.environ.get("JUPYTER_SERVER_URL")
        if not url:
            raise InvalidArgumentException("give server_url (or set JUPYTER_SERVER_URL)")
        if url.rstrip("/").endswith(f"/{prefix.strip('/')}"):
            raise InvalidArgumentException(
                f"{url} ends with the API prefix: give the server's own URL (drop "
                f"/{prefix.strip('/')}; the JavaScript client is the one that takes it)"
            )
        self.base_url = f"{url.rstrip('/')}/{prefix.strip('/')}/"
        token = token if token is not None else os.environ.get("JUPYTER_TOKEN")
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        # The token authenticates every request: Jupyter's login cookie, set on each answer,
        # would only add parsing here and a second check on the server.
        self.cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        # Streams wait as long as the work they follow (keep-alives arrive every 10 s).
        self.long_timeout = httpx.Timeout(
            connect=self.timeout.connect,
            read=None,
            write=self.timeout.write,
            pool=self.timeout.pool,
        )


def _answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the error the server described."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_from_answer(response.status_code, body, response.reason_phrase)
    return body


def _event(data: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(data)
    return event


def _in_context(call: calls.Call, context_id: str) -> calls.Call:
    """A run's call addressed to `context_id` (its default context, known only now)."""
    return dataclasses.replace(call, body={**(call.body or {}), "context_id": context_id})


def _context_id(context: ContextLike) -> str | None:
    return context.id if isinstance(context, CodeContext) else context


def _transport_error(exc: httpx.HTTPError, base_url: str) -> TransportError:
    return TransportError(f"cannot talk to {base_url}: {type(exc).__name__}: {exc}")


class _Api:
    """A group of methods of one client (`sandbox.files`, `.commands`…)."""

    def __init__(self, client: Any) -> None:
        self._client = client


class Files(_Api):
    """Files in the server's allowed roots; relative paths follow the session's directory."""

    def read(
        self,
        path: str,
        format: str = "text",
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> Any:
        """A file's content as E2B's `files.read` gives it: `format="text"` (UTF-8),
        `"bytes"` (a bytearray) or `"stream"` (its bytes chunk by chunk, never held whole;
        an iterator, or an async one). `user` is accepted and ignored."""
        if format == "stream":
            return self._client._fed(calls.read_stream(path, session_id), _Reader().feed)
        if format not in ("text", "bytes"):
            raise InvalidArgumentException(f"format must be text, bytes or stream, not {format!r}")
        call = calls.read_file(path, session_id, as_bytes=format == "bytes")
        return self._client._call(dataclasses.replace(call, request_timeout=request_timeout))

    def write(
        self,
        path: str,
        data: str | bytes | IO[Any],
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> Any:
        """Write text, bytes or a file object's content whole (parents created; the file is
        replaced only once written): a `WriteInfo`."""
        call = calls.write_file(path, data, session_id)
        return self._client._call(dataclasses.replace(call, request_timeout=request_timeout))

    def write_files(
        self, files: list[dict[str, Any]], user: str | None = None, session_id: str | None = None
    ) -> Any:
        """Write several files (`[{"path": …, "data": …}]`, E2B's `WriteEntry`s): a list of
        `WriteInfo`, in order."""
        writes = [calls.write_file(e["path"], e["data"], session_id) for e in files]
        return self._client._call_each(writes)

    def list(
        self,
        path: str = ".",
        depth: int | None = 1,
        user: str | None = None,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> Any:
        """A folder's entries (`EntryInfo`) down to `depth` levels (1: its own; None: all)."""
        if depth is not None and depth < 1:
            raise InvalidArgumentException("depth should be at least 1")
        call = calls.list_files(path, depth, session_id)
        return self._client._call(dataclasses.replace(call, request_timeout=request_timeout))

    def get_info(self, path: str, user: str | None = None, session_id: str | None = None) -> Any:
        """One file's or directory's `EntryInfo` (NotFoundException if there is none)."""
        return self._client._call(calls.entry_info(path, session_id))

    def exists(self, path: str, session_id: str | None = None) -> Any:
        """Whether a path exists."""
        return self._client._call(calls.exists(path, session_id))

    def make_dir(self, path: str, session_id: str | None = None) -> Any:
        """Create a directory and its parents: True, or False if it existed."""
        return self._client._call(calls.make_dir(path, session_id))

    def rename(self, old_path: str, new_path: str, session_id: str | None = None) -> Any:
        """Rename or move; returns where the entry went (into `new_path` if a directory)."""
        return self._client._call(calls.rename(old_path, new_path, session_id))

    def remove(self, path: str, session_id: str | None = None) -> Any:
        """Delete a file."""
        return self._client._call(calls.remove(path, session_id))


class Sessions(_Api):
    """Persistent shells: `cd`, `export` and functions carry from command to command."""

    def create(
        self,
        session_id: str | None = None,
        envs: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Start an execution session: a shell whose cwd and exports persist."""
        envs = self._client._with_envs(envs)
        call = calls.create_session(session_id, envs, cwd, timeout)
        return self._client._call(self._client._owned.owning(call, "sessions"))

    def list(self) -> Any:
        """The live sessions."""
        return self._client._call(calls.list_sessions())

    def delete(self, session_id: str) -> Any:
        """End a session and everything it started."""
        return self._client._call(calls.delete_session(session_id))


class Processes(_Api):
    """Background processes, followed or killed with everything they started."""

    def start(
        self,
        cmd: str,
        session_id: str | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        process_id: str | None = None,
    ) -> Any:
        """Start a command in the background; its `ProcessInfo`."""
        envs = self._client._with_envs(envs)
        body = calls.command_body(cmd, session_id, cwd, envs, timeout)
        call = calls.start_process(body, process_id)
        return self._client._call(self._client._owned.owning(call, "processes"))

    def list(self, status: str | None = None) -> Any:
        """Processes, optionally only those with `status`."""
        return self._client._call(calls.list_processes(status))

    def get(self, process_id: str) -> Any:
        """One process's state."""
        return self._client._call(calls.get_process(process_id))

    def logs(self, process_id: str) -> Any:
        """(stdout, stderr) kept so far."""
        return self._client._call(calls.process_logs(process_id))

    def kill(self, process_id: str) -> Any:
        """Kill the process and everything it started; returns the pids killed."""
        return self._client._call(calls.kill_process(process_id))

    def stream(self, process_id: str) -> Any:
        """Its output from the start, then live, until it exits (each an `OutputMessage`)."""
        return self._client._fed(calls.process_stream(process_id), _CommandOutput().feed)


class Commands(_Api):
    """Shell commands as E2B's: each run in a fresh shell unless `session_id` names one of
    this server's persistent sessions (where `cd` and `export` carry over)."""

    def run(
        self,
        cmd: str,
        background: bool = False,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> Any:
        """Run `cmd` to its end: a `CommandResult`; a non-zero exit raises
        `CommandExitException` and one past `timeout` seconds (60; 0: no limit) raises
        `TimeoutException`. Callbacks get output as it comes. With `background`, a command
        handle (`pid`, `wait()`, `kill()`, iteration over its output) at once. `user` is
        accepted and ignored (commands run as the server's user); `stdin` cannot be kept open."""
        if stdin:
            raise InvalidArgumentException("stdin cannot be kept open: commands read /dev/null")
        session = session_id or calls.NO_SESSION
        envs = self._client._with_envs(envs)
        body = calls.command_body(cmd, session, cwd, envs or None, timeout or None)
        if background:
            start = dataclasses.replace(calls.start_process(body, None), parse=self._client._handle)
            owned = self._client._owned.owning(start, "processes", lambda h: h.info.id)
            return self._client._call(owned)
        if on_stdout or on_stderr:
            callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
            output = _CommandOutput(strip_newline=session != calls.NO_SESSION)
            return self._client._streamed_command(calls.execute_stream(body), callbacks, output)
        call = calls.execute(body)
        return self._client._call(dataclasses.replace(call, request_timeout=request_timeout))

    def list(self) -> Any:
        """The commands running in the background (each a `ProcessInfo` of this server)."""
        return self._client._call(calls.list_processes("running"))

    def kill(self, pid: int) -> Any:
        """Kill the background command with this pid and everything it started: whether
        there was one to kill."""
        return self._client._kill_pid(pid)


class _CommandOutput:
    """Collects a streamed command (`start`, `stdout`/`stderr`, `complete` or `exit`). With
    `strip_newline`, its result drops one trailing newline, as `/api/execute` does for a
    command run in a session, so a result is the same streamed or not."""

    def __init__(self, strip_newline: bool = False) -> None:
        self.strip_newline = strip_newline
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.exit_code: int | None = None
        self.timed_out = False
        self.started = time.monotonic()

    def feed(self, event: dict[str, Any]) -> OutputMessage | None:
        kind = event.get("type")
        if kind in ("stdout", "stderr"):
            getattr(self, kind).append(event.get("data", ""))
            stamp = nanoseconds(event.get("timestamp"))
            return OutputMessage(event.get("data", ""), stamp, error=kind == "stderr")
        if kind in ("complete", "exit"):
            self.exit_code = event.get("exitCode")
            self.timed_out = bool(event.get("timedOut"))
        elif kind == "error":
            raise _stream_error(event)
        return None

    def result(self) -> CommandResult:
        """The command's result, or what it raises (see `checked`)."""
        duration = round((time.monotonic() - self.started) * 1000)
        exit_code = -1 if self.exit_code is None else self.exit_code
        stdout, stderr = "".join(self.stdout), "".join(self.stderr)
        if self.strip_newline:
            stdout, stderr = stdout.removesuffix("\n"), stderr.removesuffix("\n")
        return checked(CommandResult(stdout, stderr, exit_code, duration), self.timed_out)


class CommandHandle:
    """A command running in the background, as E2B's handle: its `pid`, `wait()` for its
    result, `kill()`, and iteration over its output as `(stdout, stderr, pty)` triples (one
    of the three set)."""

    def __init__(self, client: Sandbox, info: ProcessInfo) -> None:
        self._client = client
        self.info = info
        self.pid = info.pid

    def __iter__(self) -> Iterator[tuple[str | None, str | None, None]]:
        for message in self._client._fed(calls.process_stream(self.info.id), _CommandOutput().feed):
            yield (None, message.line, None) if message.error else (message.line, None, None)

    def wait(
        self,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
    ) -> CommandResult:
        """Follow the command to its end: its result (or CommandExitException)."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        call = calls.process_stream(self.info.id)
        return self._client._streamed_command(call, callbacks, _CommandOutput())

    def kill(self) -> bool:
        """Kill it and everything it started: whether it was still running."""
        return bool(self._client._kill_pid(self.pid))


class AsyncCommandHandle:
    """`CommandHandle` for asyncio: `await wait()`, `await kill()`, `async for` output."""

    def __init__(self, client: AsyncSandbox, info: ProcessInfo) -> None:
        self._client = client
        self.info = info
        self.pid = info.pid

    async def __aiter__(self) -> AsyncGenerator[tuple[str | None, str | None, None], None]:
        call = calls.process_stream(self.info.id)
        async with contextlib.aclosing(self._client._fed(call, _CommandOutput().feed)) as items:
            async for message in items:
                yield (None, message.line, None) if message.error else (message.line, None, None)

    async def wait(
        self,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
    ) -> CommandResult:
        """Follow the command to its end: its result (or CommandExitException)."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        call = calls.process_stream(self.info.id)
        result: CommandResult = await self._client._streamed_command(
            call, callbacks, _CommandOutput()
        )
        return result

    async def kill(self) -> bool:
        """Kill it and everything it started: whether it was still running."""
        return bool(await self._client._kill_pid(self.pid))


class _Reader:
    """Collects the metadata of a streamed file read, then decodes its chunks."""

    def __init__(self) -> None:
        self.binary = False

    def feed(self, event: dict[str, Any]) -> bytes | None:
        if event.get("type") == "metadata":
            self.binary = bool(event.get("isBinary"))
        elif event.get("type") == "error":
            raise _stream_error(event)
        return calls.stream_chunk(event, self.binary)


def _stream_error(event: dict[str, Any]) -> SandboxError:
    """The error a stream reported in its last event, after its answer had begun: typed by
    the status its code has everywhere else (a missing file is a `NotFoundError`)."""
    code = str(event.get("code", ""))
    message = str(event.get("error", "the stream failed"))
    return error_from_answer(status_for(code), {"code": code, "message": message}, message)


@dataclasses.dataclass
class _Owned:
    """What one sandbox created on the server, deleted when it is killed."""

    contexts: set[str] = dataclasses.field(default_factory=set)
    sessions: set[str] = dataclasses.field(default_factory=set)
    processes: set[str] = dataclasses.field(default_factory=set)

    def owning(
        self, call: calls.Call, kind: str, id_of: Callable[[Any], str] = lambda made: made.id
    ) -> calls.Call:
        """`call`, whose answer's id (`id_of` what it made) is recorded as one of `kind`."""
        parse = call.parse

        def record(answer: Any) -> Any:
            made = parse(answer)
            getattr(self, kind).add(id_of(made))
            return made

        return dataclasses.replace(call, parse=record)


class _Common:
    """What both clients share: settings, the HTTP client, the API groups, the default
    contexts. Subclasses name their httpx client and transport classes."""

    _http_class: Any
    _transport_class: Any
    _http: Any  # httpx.Client for Sandbox, httpx.AsyncClient for AsyncSandbox

    def __init__(
        self,
        server_url: str | None = None,
        token: str | None = None,
        prefix: str = "sandbox",
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        envs: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
        sandbox_id: str | None = None,
    ) -> None:
        """`transport` replaces the HTTP transport (an `httpx.MockTransport` in tests, a
        proxy's); by default one with Nagle's delay off. `http_client` is an httpx client of
        the caller's to send everything through (its settings kept; the caller closes it).
        `envs` are given to every context, command and process this sandbox starts."""
        self.sandbox_id = sandbox_id or uuid.uuid4().hex
        self.envs = dict(envs or {})
        self.metadata = dict(metadata or {})
        self._owned = _Owned()
        self._settings = _Settings(server_url, token, prefix, timeout)
        self._owns_http = http_client is None
        self._http = http_client or self._http_class(
            cookies=self._settings.cookies,
            transport=transport or self._transport_class(socket_options=NO_DELAY),
        )
        self.files = Files(self)
        self.sessions = Sessions(self)
        self.processes = Processes(self)
        self.commands = Commands(self)
        self._default_contexts: dict[str, str] = {}

    def _with_envs(self, envs: dict[str, str] | None) -> dict[str, str]:
        """A call's variables over the sandbox's own (those reach everything it starts)."""
        return {**self.envs, **(envs or {})}

    @classmethod
    def _for_e2b(
        cls: type[SandboxT],
        server_url: str | None,
        token: str | None,
        request_timeout: float | None,
        envs: dict[str, str] | None,
        metadata: dict[str, str] | None,
    ) -> SandboxT:
        """A sandbox made from E2B's `create` arguments (the ones that mean something here)."""
        return cls(
            server_url, token=token, timeout=request_timeout or 30.0, envs=envs, metadata=metadata
        )

    def _timeout(self, call: calls.Call) -> httpx.Timeout:
        timeout = self._settings.long_timeout if call.long else self._settings.timeout
        if call.request_timeout is None:
            return timeout
        limit = call.request_timeout or None  # 0: none
        read = timeout.read if call.long else limit
        return httpx.Timeout(limit, connect=limit, write=limit, pool=limit, read=read)

    def _run_call(
        self,
        code: str,
        language: str | None,
        context: ContextLike,
        envs: dict[str, str] | None,
        timeout: float | None,
        request_timeout: float | None,
    ) -> tuple[str | None, calls.Call]:
        """The language whose default context a run needs (None: the context is given) and
        the run's call (addressed once that context is known). E2B's rule: a language or a
        context, not both."""
        if language and context:
            raise InvalidArgumentException(
                "You can provide context or language, but not both at the same time."
            )
        context_id = _context_id(context)
        call = calls.run_code(context_id or "", code, timeout, envs)
        call = dataclasses.replace(call, request_timeout=request_timeout)
        return (None if context_id else (language or "python")), call

    def _request(self, call: calls.Call) -> dict[str, Any]:
        """The httpx arguments of one call (absolute, so that any httpx client can send it)."""
        return {
            "method": call.method,
            "url": self._settings.base_url + call.path,
            "headers": self._settings.headers,
            "json": call.body,
            "params": call.params,
            "timeout": self._timeout(call),
        }

    def _call(self, call: calls.Call) -> Any:
        """Send one call: its decoded answer (the async client's awaits it)."""
        raise NotImplementedError

    def _owned_deletions(self) -> list[calls.Call]:
        """The calls that undo what this sandbox started, processes first (they may run in
        its sessions); forgotten once made."""
        owned, self._owned = self._owned, _Owned()
        self._default_contexts.clear()
        return [
            *(calls.kill_process(p) for p in sorted(owned.processes)),
            *(calls.delete_context(c) for c in sorted(owned.contexts)),
            *(calls.delete_session(s) for s in sorted(owned.sessions)),
        ]

    def _retry_pause(self, call: calls.Call, attempt: int, exc: httpx.HTTPError) -> float:
        """Seconds to wait before sending `call` again, or the TransportError to raise: only
        a request that changes nothing is sent again, and only if it never got through."""
        connect_failed = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        if call.safe and connect_failed and attempt + 1 < RETRIES:
            return float(RETRY_PAUSE * 2**attempt)
        raise _transport_error(exc, self._settings.base_url) from exc

    def create_code_context(
        self,
        cwd: str | None = None,
        language: str | None = None,
        request_timeout: float | None = None,
        envs: dict[str, str] | None = None,
    ) -> Any:
        """A new context (a kernel) in `cwd`, for `language` (default Python), E2B's order of
        arguments; `envs` (ours) are its environment variables."""
        call = calls.create_context(language or "python", cwd, self._with_envs(envs))
        call = dataclasses.replace(call, request_timeout=request_timeout)
        return self._call(self._owned.owning(call, "contexts"))

    def list_code_contexts(self) -> Any:
        """The server's contexts."""
        return self._call(calls.list_contexts())

    def remove_code_context(self, context: CodeContext | str) -> Any:
        """Delete a context and shut its kernel down."""
        context_id = _context_id(context) or ""
        for language, known in list(self._default_contexts.items()):
            if known == context_id:
                del self._default_contexts[language]
        self._owned.contexts.discard(context_id)
        return self._call(calls.delete_context(context_id))

    def restart_code_context(self, context: CodeContext | str) -> Any:
        """Restart a context's kernel: its variables go, its directory and environment stay."""
        return self._call(calls.restart_context(_context_id(context) or ""))

    def interrupt_code_context(self, context: CodeContext | str) -> Any:
        """Interrupt what a context runs, keeping its state (beyond E2B)."""
        return self._call(calls.interrupt_context(_context_id(context) or ""))

    def ping(self) -> Any:
        return self._call(calls.ping())


class Sandbox(_Common):
    """The API of a Jupyter server with this extension, from synchronous Python.

    `Sandbox.create(server_url=..., token=...)` (E2B's way) or `Sandbox("http://host:8888/",
    token=...)`: the server's URL including its base_url; the token falls back to
    `JUPYTER_TOKEN`. The contexts, sessions and processes it starts are deleted by `kill()` and
    at the end of its `with` block; `close()` keeps them.
    """

    _http_class = httpx.Client
    _transport_class = httpx.HTTPTransport

    def __enter__(self) -> Sandbox:
        return self

    @classmethod
    def create(
        cls,
        template: str | None = None,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
        envs: dict[str, str] | None = None,
        request_timeout: float | None = None,
        server_url: str | None = None,
        token: str | None = None,
        **e2b_options: Any,
    ) -> Sandbox:
        """A new sandbox, as E2B's `Sandbox.create`: on a plain Jupyter server, this client's
        share of it (the contexts, sessions and processes it starts, deleted by `kill()` or
        at the end of its `with` block). `envs` reach everything it starts and `metadata` is
        kept on it; `template` and `timeout` (a lifetime) have no meaning on one server and
        are ignored, as are E2B's other options (`api_key`, `domain`, `secure`…). The
        server comes from `server_url` or `JUPYTER_SERVER_URL`, the token from `token` or
        `JUPYTER_TOKEN`."""
        return cls._for_e2b(server_url, token, request_timeout, envs, metadata)

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> bool:
        """Delete what this sandbox started (its contexts, sessions and background
        processes; what already ended is skipped), then close its connections."""
        try:
            for call in self._owned_deletions():
                with contextlib.suppress(NotFoundError):
                    self._call(call)
        finally:
            self.close()
        return True

    def close(self) -> None:
        """Close the HTTP connections, keeping what this sandbox started on the server."""
        if self._owns_http:
            self._http.close()

    def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[Any], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> Execution:
        """Run code to its end, as E2B's `run_code`: in `context`, or else in the default
        context of `language` (Python when neither is given; one per language, created on
        first use); `envs` apply to this run only; `timeout` 0 means no limit, and a run past
        it raises `TimeoutException`. Callbacks get each output as it streams."""
        execution = Execution()
        callbacks = RunCallbacks(on_stdout, on_stderr, on_result, on_error)
        run = self._run(code, language, context, envs, timeout, request_timeout, execution)
        for item in run:
            callback = callbacks.for_item(item)
            if callback is not None:
                callback(item)
        return execution

    def run_code_stream(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> Iterator[StreamItem]:
        """The run's outputs as they arrive: `OutputMessage`, `Result`, then `Completed` or
        `ExecutionError`. Leaving the loop early disconnects, which interrupts the run."""
        return self._run(code, language, context, envs, timeout, request_timeout, Execution())

    def _run(
        self,
        code: str,
        language: str | None,
        context: ContextLike,
        envs: dict[str, str] | None,
        timeout: float | None,
        request_timeout: float | None,
        execution: Execution,
    ) -> Iterator[StreamItem]:
        default, call = self._run_call(code, language, context, envs, timeout, request_timeout)
        if default is not None:
            call = _in_context(call, self._default_context(default))
        yield from self._fed(call, lambda event: run_item(event, execution))

    def _default_context(self, language: str) -> str:
        if language not in self._default_contexts:
            self._default_contexts[language] = self.create_code_context(language=language).id
        return self._default_contexts[language]

    def _call(self, call: calls.Call) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(**self._request(call))
            except httpx.HTTPError as exc:
                time.sleep(self._retry_pause(call, attempt, exc))
                attempt += 1
                continue
            return call.parse(_answer(response))

    def _events(self, call: calls.Call) -> Iterator[dict[str, Any]]:
        try:
            request = self._request(call)
            method, url = request.pop("method"), request.pop("url")
            with connect_sse(self._http, method, url, **request) as source:
                if source.response.status_code >= 400:  # refused before it began
                    source.response.read()
                    _answer(source.response)
                for sse in source.iter_sse():
                    yield _event(sse.data)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self._settings.base_url) from exc

    def _fed(self, call: calls.Call, feed: Callable[[dict[str, Any]], Any]) -> Iterator[Any]:
        """What `feed` makes of each event of a stream (events it skips give None)."""
        for event in self._events(call):
            if (item := feed(event)) is not None:
                yield item

    def _call_each(self, each: list[calls.Call]) -> list[Any]:
        return [self._call(call) for call in each]

    def _handle(self, answer: dict[str, Any]) -> CommandHandle:
        return CommandHandle(self, ProcessInfo.from_json(answer))

    def _kill_pid(self, pid: int | None) -> bool:
        running = self._call(calls.list_processes("running"))
        for process in running:
            if process.pid == pid:
                try:
                    self._call(calls.kill_process(process.id))
                except NotFoundError:  # it ended meanwhile
                    return False
                return True
        return False

    def _streamed_command(
        self, call: calls.Call, callbacks: RunCallbacks, output: _CommandOutput
    ) -> CommandResult:
        for message in self._fed(call, output.feed):
            if (callback := callbacks.for_item(message)) is not None:
                callback(message)
        return output.result()


class AsyncSandbox(_Common):
    """`Sandbox` for asyncio: the same methods, awaited (`async with AsyncSandbox(...)`)."""

    _http_class = httpx.AsyncClient
    _transport_class = httpx.AsyncHTTPTransport

    async def __aenter__(self) -> AsyncSandbox:
        return self

    @classmethod
    async def create(
        cls,
        template: str | None = None,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
        envs: dict[str, str] | None = None,
        request_timeout: float | None = None,
        server_url: str | None = None,
        token: str | None = None,
        **e2b_options: Any,
    ) -> AsyncSandbox:
        """As `Sandbox.create` (awaited, as E2B's `AsyncSandbox.create`)."""
        return cls._for_e2b(server_url, token, request_timeout, envs, metadata)

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

    async def kill(self) -> bool:
        """As `Sandbox.kill`."""
        try:
            for call in self._owned_deletions():
                with contextlib.suppress(NotFoundError):
                    await self._call(call)
        finally:
            await self.close()
        return True

    async def close(self) -> None:
        """Close the HTTP connections, keeping what this sandbox started on the server."""
        if self._owns_http:
            await self._http.aclose()

    async def aclose(self) -> None:
        """`close()`, under httpx's name for it."""
        await self.close()

    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[Any], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> Execution:
        """As `Sandbox.run_code`; callbacks may be coroutine functions."""
        execution = Execution()
        callbacks = RunCallbacks(on_stdout, on_stderr, on_result, on_error)
        run = self._run(code, language, context, envs, timeout, request_timeout, execution)
        async with contextlib.aclosing(run) as items:
            async for item in items:
                callback = callbacks.for_item(item)
                if callback is not None and inspect.isawaitable(outcome := callback(item)):
                    await outcome
        return execution

    def run_code_stream(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """As `Sandbox.run_code_stream`; close it (`contextlib.aclosing`) to leave early."""
        return self._run(code, language, context, envs, timeout, request_timeout, Execution())

    async def _run(
        self,
        code: str,
        language: str | None,
        context: ContextLike,
        envs: dict[str, str] | None,
        timeout: float | None,
        request_timeout: float | None,
        execution: Execution,
    ) -> AsyncGenerator[StreamItem, None]:
        default, call = self._run_call(code, language, context, envs, timeout, request_timeout)
        if default is not None:
            call = _in_context(call, await self._default_context(default))
        async with contextlib.aclosing(self._fed(call, lambda e: run_item(e, execution))) as items:
            async for item in items:
                yield item

    async def _default_context(self, language: str) -> str:
        if language not in self._default_contexts:
            created = await self.create_code_context(language=language)
            self._default_contexts[language] = created.id
        return self._default_contexts[language]

    async def _call(self, call: calls.Call) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(**self._request(call))
            except httpx.HTTPError as exc:
                await asyncio.sleep(self._retry_pause(call, attempt, exc))
                attempt += 1
                continue
            return call.parse(_answer(response))

    async def _events(self, call: calls.Call) -> AsyncGenerator[dict[str, Any], None]:
        try:
            request = self._request(call)
            method, url = request.pop("method"), request.pop("url")
            async with aconnect_sse(self._http, method, url, **request) as source:
                if source.response.status_code >= 400:  # refused before it began
                    await source.response.aread()
                    _answer(source.response)
                async for sse in source.aiter_sse():
                    yield _event(sse.data)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self._settings.base_url) from exc

    async def _fed(
        self, call: calls.Call, feed: Callable[[dict[str, Any]], Any]
    ) -> AsyncGenerator[Any, None]:
        """What `feed` makes of each event of a stream (events it skips give None)."""
        async with contextlib.aclosing(self._events(call)) as events:
            async for event in events:
                if (item := feed(event)) is not None:
                    yield item

    async def _call_each(self, each: list[calls.Call]) -> list[Any]:
        return [await self._call(call) for call in each]

    def _handle(self, answer: dict[str, Any]) -> AsyncCommandHandle:
        return AsyncCommandHandle(self, ProcessInfo.from_json(answer))

    async def _kill_pid(self, pid: int | None) -> bool:
        running = await self._call(calls.list_processes("running"))
        for process in running:
            if process.pid == pid:
                try:
                    await self._call(calls.kill_process(process.id))
                except NotFoundError:  # it ended meanwhile
                    return False
                return True
        return False

    async def _streamed_command(
        self, call: calls.Call, callbacks: RunCallbacks, output: _CommandOutput
    ) -> CommandResult:
        async with contextlib.aclosing(self._fed(call, output.feed)) as messages:
            async for message in messages:
                callback = callbacks.for_item(message)
                if callback is not None and inspect.isawaitable(outcome := callback(message)):
                    await outcome
        return output.result()
