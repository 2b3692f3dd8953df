"""`Sandbox` and `AsyncSandbox`: the whole API from Python, with the same methods.

Every request is written once, in `calls` (route, body, how the answer is read); each client
only carries calls out, `Sandbox` blocking and `AsyncSandbox` awaited, so their methods are
one-line twins with concrete types (their groups live in `files`, `commands` and `processes`).
Streams are followed around the same sans-IO pieces (`run_item`, `CommandOutput`…).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, Literal, Protocol, TypeVar, overload

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from jupyter_interp_ext.protocol.events import ends_run
from jupyter_interp_ext.protocol.validation import ID_PATTERN

from . import calls, hub
from .commands import AsyncCommands, CommandOutput, Commands
from .connection import NO_DELAY, RETRIES, RETRY_PAUSE, Settings, answer, event_of, transport_error
from .errors import (
    InvalidArgumentException,
    NotFoundError,
    SandboxError,
    SandboxException,
    SandboxStoppedError,
    TransportError,
)
from .executions import AsyncExecutions, Executions
from .files import AsyncFiles, Files
from .models import (
    CodeContext,
    CommandResult,
    Execution,
    ExecutionError,
    OutputMessage,
    ProcessInfo,
    Result,
    RunCallbacks,
    SessionInfo,
    StreamItem,
    deliver,
    run_item,
)
from .processes import AsyncProcesses, AsyncSessions, Processes, Sessions
from .pty import AsyncPty, Pty
from .streams import Place


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T")
ItemT = TypeVar("ItemT")
MadeT = TypeVar("MadeT", bound=_HasId)
ContextLike = CodeContext | str | None
SandboxT = TypeVar("SandboxT", bound="_Common")
# The labels that mark on the server what a sandbox created, so `connect` finds it again.
SANDBOX_LABEL = "sandbox"
DEFAULT_LABEL = "default-context"  # on a sandbox's default context: its language
_SANDBOX_ID = re.compile(ID_PATTERN)


def _in_context(call: calls.Call[T], context_id: str) -> calls.Call[T]:
    """A run's call addressed to `context_id` (its default context, known only now)."""
    return dataclasses.replace(call, body={**(call.body or {}), "context_id": context_id})


def _context_id(context: ContextLike) -> str | None:
    return context.id if isinstance(context, CodeContext) else context


def _checked_id(sandbox_id: str) -> str:
    if not _SANDBOX_ID.match(sandbox_id):
        raise InvalidArgumentException(
            f"{sandbox_id!r} is not a sandbox id: 1-128 letters, digits or . _ : @ + = -"
        )
    return sandbox_id


@dataclasses.dataclass
class _Owned:
    """What one sandbox created on the server, deleted when it is killed."""

    contexts: set[str] = dataclasses.field(default_factory=set)
    sessions: set[str] = dataclasses.field(default_factory=set)
    processes: set[str] = dataclasses.field(default_factory=set)

    def owning(self, call: calls.Call[MadeT], kind: str) -> calls.Call[MadeT]:
        """`call`, whose answer's id (`made.id`) is recorded as one of `kind`."""
        parse = call.parse

        def record(answer: Any) -> MadeT:
            made = parse(answer)
            getattr(self, kind).add(made.id)
            return made

        return dataclasses.replace(call, parse=record)


class _Common:
    """What both clients share: settings, the HTTP client, the calls that create what the
    sandbox owns, and the default contexts. Subclasses name their httpx classes and groups."""

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
        self.sandbox_id = _checked_id(sandbox_id) if sandbox_id else hub.new_id()
        self.envs = dict(envs or {})
        self.metadata = dict(metadata or {})
        self._owned = _Owned()
        self._settings = Settings(server_url, token, prefix, timeout)
        self._owns_http = http_client is None
        self._http = http_client or self._http_class(
            cookies=self._settings.cookies,
            transport=transport or self._transport_class(socket_options=NO_DELAY),
        )
        self._default_contexts: dict[str, str] = {}
        self._hub: hub.HubServer | None = None  # on a JupyterHub: the sandbox's own server
        self._hub_url = ""
        self._make_groups()

    def _make_groups(self) -> None:
        """Set `files`, `commands`, `sessions`, `processes` and `executions`, of the
        subclass's kind."""
        raise NotImplementedError

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

    def _timeout(self, call: calls.Call[Any]) -> httpx.Timeout:
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
        detach: bool = False,
    ) -> tuple[str | None, calls.Call[Any]]:
        """The language whose default context a run needs (None: the context is given) and
        the run's call (addressed once that context is known). E2B's rule: a language or a
        context, not both."""
        if language and context:
            raise InvalidArgumentException(
                "You can provide context or language, but not both at the same time."
            )
        context_id = _context_id(context)
        call = calls.run_code(context_id or "", code, timeout, envs, detach)
        call = dataclasses.replace(call, request_timeout=request_timeout)
        return (None if context_id else (language or "python")), call

    @classmethod
    def _on_hub(
        cls: type[SandboxT],
        hub_at: tuple[str, str],
        sandbox_id: str,
        request_timeout: float | None,
        envs: dict[str, str] | None,
        metadata: dict[str, str] | None,
    ) -> SandboxT:
        """A sandbox of a Hub, not yet placed on its server (see `_place`)."""
        hub_url, token = hub_at
        sandbox = cls(
            hub_url,
            token=token,
            timeout=request_timeout or 30.0,
            envs=envs,
            metadata=metadata,
            sandbox_id=hub.checked_name(sandbox_id),
        )
        sandbox._hub_url = hub_url
        return sandbox

    @classmethod
    def _addressed(
        cls: type[SandboxT],
        hub_at: tuple[str, str] | None,
        server_url: str | None,
        token: str | None,
        sandbox_id: str,
        request_timeout: float | None,
    ) -> SandboxT:
        """A sandbox by its id: of a Hub (`hub_at`, not yet placed), or of one server."""
        if hub_at is not None:
            return cls._on_hub(hub_at, sandbox_id, request_timeout, None, None)
        return cls(server_url, token=token, timeout=request_timeout or 30.0, sandbox_id=sandbox_id)

    def _place(self, user: str) -> hub.HubServer:
        """Address the sandbox's server: the named server `sandbox_id` of `user`."""
        self._hub = hub.HubServer(self._hub_url, user, self.sandbox_id)
        self._settings.serve(self._hub.server_url)
        return self._hub

    def _hub_server(self, action: str) -> hub.HubServer:
        if self._hub is None:
            raise InvalidArgumentException(
                f"only a sandbox on a JupyterHub can {action}: one Jupyter server has no "
                "server of its own per sandbox (see hub_url)"
            )
        return self._hub

    def _forget_kernels(self) -> None:
        """The server stopped: its kernels, sessions and processes are gone with it."""
        self._owned = _Owned()
        self._default_contexts.clear()

    def _resumes(self, call: calls.Call[Any]) -> bool:
        """Whether a call that met a stopped server starts it again: a sandbox API call of a
        Hub's sandbox (once; a second refusal is raised), if the sandbox still exists."""
        return self._hub is not None and call.url is None

    def _listed_calls(
        self,
    ) -> tuple[
        calls.Call[list[CodeContext]], calls.Call[list[SessionInfo]], calls.Call[list[ProcessInfo]]
    ]:
        """What `connect` and `list` read: the contexts, sessions and running processes."""
        return calls.list_contexts(), calls.list_sessions(), calls.list_processes("running")

    def _request(self, call: calls.Call[Any]) -> dict[str, Any]:
        """The httpx arguments of one call (absolute, so that any httpx client can send it)."""
        return {
            "method": call.method,
            "url": call.url or self._settings.base_url + call.path,
            "headers": {**self._settings.headers, **call.headers}
            if call.headers
            else self._settings.headers,
            "json": call.body,
            "params": call.params,
            "timeout": self._timeout(call),
        }

    @staticmethod
    def _sandboxes_listed(
        contexts: list[CodeContext], sessions: list[SessionInfo], processes: list[ProcessInfo]
    ) -> list[hub.SandboxInfo]:
        """The sandboxes one server holds: the ids its contexts, sessions and processes are
        labelled with."""
        labelled: list[dict[str, str]] = [
            *(c.labels for c in contexts),
            *(s.labels for s in sessions),
            *(p.labels for p in processes),
        ]
        ids = {labels[SANDBOX_LABEL] for labels in labelled if SANDBOX_LABEL in labels}
        return [hub.SandboxInfo(sandbox_id, "running") for sandbox_id in sorted(ids)]

    def _labels(self, **more: str) -> dict[str, str]:
        return {SANDBOX_LABEL: self.sandbox_id, **more}

    def _new_context(
        self,
        cwd: str | None,
        language: str | None,
        request_timeout: float | None,
        envs: dict[str, str] | None,
        default: bool = False,
    ) -> calls.Call[CodeContext]:
        language = language or "python"
        labels = self._labels(**{DEFAULT_LABEL: language} if default else {})
        call = calls.create_context(language, cwd, self._with_envs(envs), labels)
        return self._owned.owning(
            dataclasses.replace(call, request_timeout=request_timeout), "contexts"
        )

    def _new_session(
        self,
        session_id: str | None,
        envs: dict[str, str] | None,
        cwd: str | None,
        timeout: float | None,
    ) -> calls.Call[SessionInfo]:
        envs = self._with_envs(envs)
        call = calls.create_session(session_id, envs, cwd, timeout, self._labels())
        return self._owned.owning(call, "sessions")

    def _new_process(
        self, body: dict[str, Any], request_timeout: float | None, process_id: str | None = None
    ) -> calls.Call[ProcessInfo]:
        call = calls.start_process(body, process_id, self._labels())
        return self._owned.owning(
            dataclasses.replace(call, request_timeout=request_timeout), "processes"
        )

    def _adopt(
        self,
        contexts: list[CodeContext],
        sessions: list[SessionInfo],
        processes: list[ProcessInfo],
    ) -> None:
        """Take as this sandbox's what the server lists under its id (see `connect`)."""
        mine = {SANDBOX_LABEL: self.sandbox_id}.items()
        for context in contexts:
            if mine <= context.labels.items():
                self._owned.contexts.add(context.id)
                if language := context.labels.get(DEFAULT_LABEL):
                    self._default_contexts.setdefault(language, context.id)
        self._owned.sessions.update(s.id for s in sessions if mine <= s.labels.items())
        self._owned.processes.update(p.id for p in processes if mine <= p.labels.items())

    def _forget_context(self, context: CodeContext | str) -> calls.Call[None]:
        """The call that deletes a context, which this sandbox no longer counts as its own."""
        context_id = _context_id(context) or ""
        for language, known in list(self._default_contexts.items()):
            if known == context_id:
                del self._default_contexts[language]
        self._owned.contexts.discard(context_id)
        return calls.delete_context(context_id)

    def _owned_deletions(self) -> list[calls.Call[Any]]:
        """The calls that undo what this sandbox started, processes first (they may run in
        its sessions); forgotten once made."""
        owned, self._owned = self._owned, _Owned()
        self._default_contexts.clear()
        return [
            *(calls.kill_process(p) for p in sorted(owned.processes)),
            *(calls.delete_context(c) for c in sorted(owned.contexts)),
            *(calls.delete_session(s) for s in sorted(owned.sessions)),
        ]

    def _retry_pause(self, call: calls.Call[Any], attempt: int, exc: httpx.HTTPError) -> float:
        """Seconds to wait before sending `call` again, or the TransportError to raise: only
        a request that changes nothing is sent again, and only if it never got through."""
        connect_failed = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        if call.safe and connect_failed and attempt + 1 < RETRIES:
            return float(RETRY_PAUSE * 2**attempt)
        raise transport_error(exc, self._settings.base_url) from exc


class Sandbox(_Common):
    """The API of a Jupyter server with this extension, from synchronous Python.

    `Sandbox.create(server_url=..., token=...)` (E2B's way) or `Sandbox("http://host:8888/",
    token=...)`: the server's URL including its base_url; the token falls back to
    `JUPYTER_TOKEN`. The contexts, sessions and processes it starts are deleted by `kill()` and
    at the end of its `with` block; `close()` keeps them.
    """

    _http_class = httpx.Client
    _transport_class = httpx.HTTPTransport
    files: Files
    commands: Commands
    pty: Pty
    sessions: Sessions
    processes: Processes

    def _make_groups(self) -> None:
        self.files = Files(self)
        self.commands = Commands(self)
        self.pty = Pty(self)
        self.sessions = Sessions(self)
        self.processes = Processes(self)
        self.executions = Executions(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

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
        hub_url: str | None = None,
        on_progress: Callable[[hub.HubProgress], Any] | None = None,
        **e2b_options: Any,
    ) -> Sandbox:
        """A new sandbox, as E2B's `Sandbox.create`.

        On a JupyterHub (`hub_url` or `JUPYTERHUB_URL`, with `token` or
        `JUPYTERHUB_API_TOKEN`): a new named server of the token's user, with its own files,
        started from `template` (a profile of the deployment); `on_progress` is called with
        each step of its start, and a failed start raises with the Hub's message. On a plain
        Jupyter server (`server_url` or `JUPYTER_SERVER_URL`, with `token` or
        `JUPYTER_TOKEN`): this client's share of it, and `template` means nothing.
        `envs` reach everything the sandbox starts and `metadata` is kept on it; `timeout`
        (a lifetime) and E2B's cloud options (`api_key`, `domain`, …) are ignored."""
        hub_at = hub.hub_settings(hub_url, token)
        if hub_at is None:
            return cls._for_e2b(server_url, token, request_timeout, envs, metadata)
        sandbox = cls._on_hub(hub_at, hub.new_id(), request_timeout, envs, metadata)
        try:
            sandbox._place(sandbox._call(hub.whoami(sandbox._hub_url)))
            sandbox._start(template, on_progress)
        except BaseException:
            if sandbox._hub is not None:  # a failed start leaves no server behind
                with contextlib.suppress(SandboxException):
                    sandbox._call(hub.stop(sandbox._hub, remove=True))
            sandbox.close()
            raise
        return sandbox

    @classmethod
    def connect(
        cls,
        sandbox_id: str,
        timeout: float | None = None,
        request_timeout: float | None = None,
        server_url: str | None = None,
        token: str | None = None,
        hub_url: str | None = None,
        on_progress: Callable[[hub.HubProgress], Any] | None = None,
        create: bool = False,
        **e2b_options: Any,
    ) -> Sandbox:
        """The sandbox with this id, as E2B's `Sandbox.connect`: what it created and has not
        deleted (its contexts, with the variables its default contexts hold, its sessions
        and running processes), found by the labels they carry on its server. On a Hub, its
        server is started if it was paused or culled (its files are there, its kernels new);
        an unknown id raises `NotFoundException`, or with `create` is made. The server and
        token come as for `create`; `envs` and `metadata` stay with the object that was
        given them."""
        hub_at = hub.hub_settings(hub_url, token)
        sandbox = cls._addressed(hub_at, server_url, token, sandbox_id, request_timeout)
        try:
            if hub_at is not None:
                sandbox._wake(create, on_progress)
            contexts, sessions, processes = sandbox._listed_calls()
            sandbox._adopt(
                sandbox._call(contexts), sandbox._call(sessions), sandbox._call(processes)
            )
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    @classmethod
    def placed(
        cls,
        sandbox_id: str,
        hub_url: str | None = None,
        token: str | None = None,
        request_timeout: float | None = None,
    ) -> Sandbox:
        """A Hub's sandbox by its id, as it is (not started): to `pause()` or `kill()` it
        without waking it first."""
        hub_at = hub.hub_settings(hub_url, token)
        if hub_at is None:
            raise InvalidArgumentException("give hub_url (or set JUPYTERHUB_URL)")
        sandbox = cls._on_hub(hub_at, sandbox_id, request_timeout, None, None)
        try:
            sandbox._place(sandbox._call(hub.whoami(sandbox._hub_url)))
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def _wake(self, create: bool, on_progress: Callable[[hub.HubProgress], Any] | None) -> None:
        """Find the sandbox's server on its Hub (placed once; an automatic restart asks the
        Hub for its state only), started (or made, with `create`)."""
        server = self._hub or self._place(self._call(hub.whoami(self._hub_url)))
        try:
            state = hub.state_of(self._call(hub.server_model(server)))
        except NotFoundError:
            if not create:
                raise
            state = "new"
        if state != "running":
            self._start(None, on_progress, already=state == "pending")

    def _start(
        self,
        template: str | None,
        on_progress: Callable[[hub.HubProgress], Any] | None,
        already: bool = False,
    ) -> None:
        """Start the sandbox's server (unless `already` starting) and follow it to ready."""
        server = self._hub_server("start")
        if not already:
            try:
                self._call(hub.start(server, template))
            except SandboxError as exc:
                if exc.status < 500:
                    raise  # a failed start is told in its progress, which follows
        for step in self._fed(hub.progress(server), hub.progress_step):
            if on_progress is not None:
                on_progress(step)
            if step.ready:
                self._forget_kernels()
                return
        raise SandboxStoppedError("SPAWN_FAILED", f"{server.name} did not start", 500, {})

    def pause(self, keep_memory: bool = True, **e2b_options: Any) -> bool:
        """Stop the sandbox's server, keeping it and its files (a Hub's only), as E2B's
        `pause`: True, or False if it was paused already. `connect` starts it again. Memory
        is never kept (`keep_memory` is accepted): its kernels, sessions and processes end."""
        server = self._hub_server("pause")
        if hub.state_of(self._call(hub.server_model(server))) == "paused":
            return False
        self._call(hub.stop(server, remove=False))
        while hub.state_of(self._call(hub.server_model(server))) != "paused":
            time.sleep(hub.STOP_POLL)
        self._forget_kernels()
        return True

    def kill(self) -> bool:
        """End the sandbox: on a Hub, its server is stopped and removed (its files stay on the
        Hub's disk, as the deployment keeps them); on one Jupyter server, what it started
        (its contexts, sessions and background processes) is deleted. Then its connections
        close."""
        try:
            if self._hub is not None:  # its server goes, and everything in it
                self._call(hub.stop(self._hub, remove=True))
                self._forget_kernels()
                with contextlib.suppress(NotFoundError):  # gone once the Hub knows it not
                    while self._call(hub.server_model(self._hub)):
                        time.sleep(hub.STOP_POLL)
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

    @overload
    def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        detach: Literal[False] = False,
    ) -> Execution: ...

    @overload
    def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        *,
        detach: Literal[True],
    ) -> str: ...

    def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        detach: bool = False,
    ) -> Execution | str:
        """Run code to its end, as E2B's `run_code`: in `context`, or else in the default
        context of `language` (Python when neither is given; one per language, created on
        first use); `envs` apply to this run only; `timeout` 0 means no limit, and a run past
        it raises `TimeoutException`. Callbacks get each output as it streams. A connection
        that breaks mid-run is picked up again where it broke.

        `detach=True` (beyond E2B) starts the run and returns its execution id at once: it
        runs to its end with no one reading (`executions.stream(id)` follows it)."""
        if detach:
            default, call = self._run_call(
                code, language, context, envs, timeout, request_timeout, detach=True
            )
            if default is not None:
                call = _in_context(call, self._default_context(default))
            return self._started(call)
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
        `ExecutionError`. Leaving the loop early stops the run (its kernel is interrupted)."""
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
        place = Place(call, ends_run, cancels=True)
        items: Iterator[StreamItem] = self._fed(place, lambda e: run_item(e, execution))
        yield from items

    def _default_context(self, language: str) -> str:
        """The sandbox's context for `language`: known, else one another client object of
        the same sandbox made meanwhile (found by its labels), else a new one."""
        if language not in self._default_contexts:
            self._adopt(self._call(calls.list_contexts()), [], [])
        if language not in self._default_contexts:
            made = self._call(self._new_context(None, language, None, None, default=True))
            self._default_contexts[language] = made.id
        return self._default_contexts[language]

    def create_code_context(
        self,
        cwd: str | None = None,
        language: str | None = None,
        request_timeout: float | None = None,
        envs: dict[str, str] | None = None,
    ) -> CodeContext:
        """A new context (a kernel) in `cwd`, for `language` (default Python), E2B's order of
        arguments; `envs` (ours) are its environment variables."""
        return self._call(self._new_context(cwd, language, request_timeout, envs))

    def list_code_contexts(self) -> list[CodeContext]:
        """The server's contexts."""
        return self._call(calls.list_contexts())

    def remove_code_context(self, context: CodeContext | str) -> None:
        """Delete a context and shut its kernel down."""
        self._call(self._forget_context(context))

    def restart_code_context(self, context: CodeContext | str) -> None:
        """Restart a context's kernel: its variables go, its directory and environment stay."""
        self._call(calls.restart_context(_context_id(context) or ""))

    def interrupt_code_context(self, context: CodeContext | str) -> None:
        """Interrupt what a context runs, keeping its state (beyond E2B)."""
        self._call(calls.interrupt_context(_context_id(context) or ""))

    def ping(self) -> str:
        """The server's answer to a ping ("pong")."""
        return self._call(calls.ping())

    def _call(self, call: calls.Call[T]) -> T:
        try:
            return self._send(call)
        except SandboxStoppedError:
            if not self._resumes(call):
                raise
            self._wake(False, None)
            return self._send(call)

    def _send(self, call: calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(**self._request(call))
            except httpx.HTTPError as exc:
                time.sleep(self._retry_pause(call, attempt, exc))
                attempt += 1
                continue
            return call.parse(answer(response))

    def _events(
        self,
        call: calls.Call[Any],
        opened: Callable[[httpx.Response], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """A stream's events; `opened` is handed its response first (to shut it early)."""
        for sse in self._sse(call, opened):
            yield event_of(sse.data)

    def _sse(
        self, call: calls.Call[Any], opened: Callable[[httpx.Response], None] | None
    ) -> Iterator[ServerSentEvent]:
        try:
            yield from self._stream(call, opened)
        except SandboxStoppedError:  # only ever raised before the first event
            if not self._resumes(call):
                raise
            self._wake(False, None)
            yield from self._stream(call, opened)

    def _stream(
        self, call: calls.Call[Any], opened: Callable[[httpx.Response], None] | None
    ) -> Iterator[ServerSentEvent]:
        try:
            request = self._request(call)
            method, url = request.pop("method"), request.pop("url")
            with connect_sse(self._http, method, url, **request) as source:
                if source.response.status_code >= 300:  # refused before it began
                    source.response.read()
                    answer(source.response)
                if opened is not None:
                    opened(source.response)
                yield from source.iter_sse()
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._settings.base_url) from exc

    def _resumed(self, place: Place) -> Iterator[dict[str, Any]]:
        """A stream's events to its last, picked up again after a broken connection (see
        `streams.Place`); a run left before its end is stopped if `place` says so."""
        try:
            while not place.done:
                try:
                    for sse in self._sse(place.call, place.opened):
                        event = event_of(sse.data)
                        place.saw(sse.id, event)
                        yield event
                        if place.done:
                            return
                    raise place.cut_short()
                except TransportError as exc:
                    time.sleep(place.retry(exc))
        finally:
            if (cancel := place.cancellation()) is not None:
                # Best effort: a client already closed (RuntimeError) cannot stop it.
                with contextlib.suppress(SandboxError, RuntimeError):
                    self._send(cancel)

    def _started(self, call: calls.Call[Any]) -> str:
        """Start a run without following it: its execution id."""
        try:
            with self._http.stream(**self._request(call)) as response:
                if response.status_code >= 300:
                    response.read()
                    answer(response)
                return str(response.headers["X-Execution-Id"])
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._settings.base_url) from exc

    def _fed(
        self, source: calls.Call[Any] | Place, feed: Callable[[dict[str, Any]], ItemT | None]
    ) -> Iterator[ItemT]:
        """What `feed` makes of each event of a stream (events it skips give None)."""
        events = self._resumed(source) if isinstance(source, Place) else self._events(source)
        for event in events:
            if (item := feed(event)) is not None:
                yield item

    def _streamed_command(
        self, call: calls.Call[Any] | Place, callbacks: RunCallbacks, output: CommandOutput
    ) -> CommandResult:
        for message in self._fed(call, output.feed):
            if (callback := callbacks.for_item(message)) is not None:
                callback(message)
        return output.result()

    @classmethod
    def list(
        cls,
        hub_url: str | None = None,
        token: str | None = None,
        server_url: str | None = None,
        request_timeout: float | None = None,
    ) -> list[hub.SandboxInfo]:
        """The sandboxes there are: on a Hub, the token's user's, paused ones too; on one
        Jupyter server, the ids its contexts, sessions and processes are labelled with.
        (Defined last: inside the class, `list` is this method from here on.)"""
        hub_at = hub.hub_settings(hub_url, token)
        url, token = hub_at if hub_at is not None else (server_url, token)
        probe = cls(url, token=token, timeout=request_timeout or 30.0)
        try:
            if hub_at is None:
                contexts, sessions, processes = probe._listed_calls()
                return cls._sandboxes_listed(
                    probe._call(contexts), probe._call(sessions), probe._call(processes)
                )
            user = probe._call(hub.whoami(hub_at[0]))
            return probe._call(hub.list_servers(hub_at[0], user))
        finally:
            probe.close()


class AsyncSandbox(_Common):
    """`Sandbox` for asyncio: the same methods, awaited (`async with AsyncSandbox(...)`)."""

    _http_class = httpx.AsyncClient
    _transport_class = httpx.AsyncHTTPTransport
    files: AsyncFiles
    commands: AsyncCommands
    pty: AsyncPty
    sessions: AsyncSessions
    processes: AsyncProcesses

    def _make_groups(self) -> None:
        self.files = AsyncFiles(self)
        self.commands = AsyncCommands(self)
        self.pty = AsyncPty(self)
        self.sessions = AsyncSessions(self)
        self.processes = AsyncProcesses(self)
        self.executions = AsyncExecutions(self)

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

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
        hub_url: str | None = None,
        on_progress: Callable[[hub.HubProgress], Any] | None = None,
        **e2b_options: Any,
    ) -> AsyncSandbox:
        """As `Sandbox.create` (awaited, as E2B's `AsyncSandbox.create`)."""
        hub_at = hub.hub_settings(hub_url, token)
        if hub_at is None:
            return cls._for_e2b(server_url, token, request_timeout, envs, metadata)
        sandbox = cls._on_hub(hub_at, hub.new_id(), request_timeout, envs, metadata)
        try:
            sandbox._place(await sandbox._call(hub.whoami(sandbox._hub_url)))
            await sandbox._start(template, on_progress)
        except BaseException:
            if sandbox._hub is not None:  # a failed start leaves no server behind
                with contextlib.suppress(SandboxException):
                    await sandbox._call(hub.stop(sandbox._hub, remove=True))
            await sandbox.close()
            raise
        return sandbox

    @classmethod
    async def connect(
        cls,
        sandbox_id: str,
        timeout: float | None = None,
        request_timeout: float | None = None,
        server_url: str | None = None,
        token: str | None = None,
        hub_url: str | None = None,
        on_progress: Callable[[hub.HubProgress], Any] | None = None,
        create: bool = False,
        **e2b_options: Any,
    ) -> AsyncSandbox:
        """As `Sandbox.connect` (awaited)."""
        hub_at = hub.hub_settings(hub_url, token)
        sandbox = cls._addressed(hub_at, server_url, token, sandbox_id, request_timeout)
        try:
            if hub_at is not None:
                await sandbox._wake(create, on_progress)
            contexts, sessions, processes = sandbox._listed_calls()
            sandbox._adopt(
                await sandbox._call(contexts),
                await sandbox._call(sessions),
                await sandbox._call(processes),
            )
        except BaseException:
            await sandbox.close()
            raise
        return sandbox

    @classmethod
    async def placed(
        cls,
        sandbox_id: str,
        hub_url: str | None = None,
        token: str | None = None,
        request_timeout: float | None = None,
    ) -> AsyncSandbox:
        """As `Sandbox.placed`."""
        hub_at = hub.hub_settings(hub_url, token)
        if hub_at is None:
            raise InvalidArgumentException("give hub_url (or set JUPYTERHUB_URL)")
        sandbox = cls._on_hub(hub_at, sandbox_id, request_timeout, None, None)
        try:
            sandbox._place(await sandbox._call(hub.whoami(sandbox._hub_url)))
        except BaseException:
            await sandbox.close()
            raise
        return sandbox

    async def _wake(
        self, create: bool, on_progress: Callable[[hub.HubProgress], Any] | None
    ) -> None:
        """As `Sandbox._wake`."""
        server = self._hub or self._place(await self._call(hub.whoami(self._hub_url)))
        try:
            state = hub.state_of(await self._call(hub.server_model(server)))
        except NotFoundError:
            if not create:
                raise
            state = "new"
        if state != "running":
            await self._start(None, on_progress, already=state == "pending")

    async def _start(
        self,
        template: str | None,
        on_progress: Callable[[hub.HubProgress], Any] | None,
        already: bool = False,
    ) -> None:
        """As `Sandbox._start`."""
        server = self._hub_server("start")
        if not already:
            try:
                await self._call(hub.start(server, template))
            except SandboxError as exc:
                if exc.status < 500:
                    raise  # a failed start is told in its progress, which follows
        async with contextlib.aclosing(self._fed(hub.progress(server), hub.progress_step)) as steps:
            async for step in steps:
                await deliver(on_progress, step)
                if step.ready:
                    self._forget_kernels()
                    return
        raise SandboxStoppedError("SPAWN_FAILED", f"{server.name} did not start", 500, {})

    async def pause(self, keep_memory: bool = True, **e2b_options: Any) -> bool:
        """As `Sandbox.pause`."""
        server = self._hub_server("pause")
        if hub.state_of(await self._call(hub.server_model(server))) == "paused":
            return False
        await self._call(hub.stop(server, remove=False))
        # The Hub tells of a stop by nothing but its model: it is looked at until paused.
        while hub.state_of(await self._call(hub.server_model(server))) != "paused":  # noqa: ASYNC110
            await asyncio.sleep(hub.STOP_POLL)
        self._forget_kernels()
        return True

    async def kill(self) -> bool:
        """As `Sandbox.kill`."""
        try:
            if self._hub is not None:  # its server goes, and everything in it
                await self._call(hub.stop(self._hub, remove=True))
                self._forget_kernels()
                with contextlib.suppress(NotFoundError):  # gone once the Hub knows it not
                    while await self._call(hub.server_model(self._hub)):  # noqa: ASYNC110
                        await asyncio.sleep(hub.STOP_POLL)
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

    @overload
    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        detach: Literal[False] = False,
    ) -> Execution: ...

    @overload
    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        *,
        detach: Literal[True],
    ) -> str: ...

    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: ContextLike = None,
        on_stdout: Callable[[OutputMessage], Any] | None = None,
        on_stderr: Callable[[OutputMessage], Any] | None = None,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[ExecutionError], Any] | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        detach: bool = False,
    ) -> Execution | str:
        """As `Sandbox.run_code`; callbacks may be coroutine functions."""
        if detach:
            default, call = self._run_call(
                code, language, context, envs, timeout, request_timeout, detach=True
            )
            if default is not None:
                call = _in_context(call, await self._default_context(default))
            return await self._started(call)
        execution = Execution()
        callbacks = RunCallbacks(on_stdout, on_stderr, on_result, on_error)
        run = self._run(code, language, context, envs, timeout, request_timeout, execution)
        async with contextlib.aclosing(run) as items:
            async for item in items:
                await deliver(callbacks.for_item(item), item)
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
        place = Place(call, ends_run, cancels=True)
        run: AsyncGenerator[StreamItem, None] = self._fed(place, lambda e: run_item(e, execution))
        async with contextlib.aclosing(run) as items:
            async for item in items:
                yield item

    async def _default_context(self, language: str) -> str:
        """As `Sandbox._default_context`."""
        if language not in self._default_contexts:
            self._adopt(await self._call(calls.list_contexts()), [], [])
        if language not in self._default_contexts:
            made = await self._call(self._new_context(None, language, None, None, default=True))
            self._default_contexts[language] = made.id
        return self._default_contexts[language]

    async def create_code_context(
        self,
        cwd: str | None = None,
        language: str | None = None,
        request_timeout: float | None = None,
        envs: dict[str, str] | None = None,
    ) -> CodeContext:
        """As `Sandbox.create_code_context`."""
        return await self._call(self._new_context(cwd, language, request_timeout, envs))

    async def list_code_contexts(self) -> list[CodeContext]:
        """As `Sandbox.list_code_contexts`."""
        return await self._call(calls.list_contexts())

    async def remove_code_context(self, context: CodeContext | str) -> None:
        """As `Sandbox.remove_code_context`."""
        await self._call(self._forget_context(context))

    async def restart_code_context(self, context: CodeContext | str) -> None:
        """As `Sandbox.restart_code_context`."""
        await self._call(calls.restart_context(_context_id(context) or ""))

    async def interrupt_code_context(self, context: CodeContext | str) -> None:
        """As `Sandbox.interrupt_code_context`."""
        await self._call(calls.interrupt_context(_context_id(context) or ""))

    async def ping(self) -> str:
        """As `Sandbox.ping`."""
        return await self._call(calls.ping())

    async def _call(self, call: calls.Call[T]) -> T:
        try:
            return await self._send(call)
        except SandboxStoppedError:
            if not self._resumes(call):
                raise
            await self._wake(False, None)
            return await self._send(call)

    async def _send(self, call: calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(**self._request(call))
            except httpx.HTTPError as exc:
                await asyncio.sleep(self._retry_pause(call, attempt, exc))
                attempt += 1
                continue
            return call.parse(answer(response))

    async def _events(self, call: calls.Call[Any]) -> AsyncGenerator[dict[str, Any], None]:
        async with contextlib.aclosing(self._sse(call, None)) as stream:
            async for sse in stream:
                yield event_of(sse.data)

    async def _sse(
        self, call: calls.Call[Any], opened: Callable[[httpx.Response], None] | None
    ) -> AsyncGenerator[ServerSentEvent, None]:
        try:
            async with contextlib.aclosing(self._stream(call, opened)) as events:
                async for event in events:
                    yield event
        except SandboxStoppedError:  # only ever raised before the first event
            if not self._resumes(call):
                raise
            await self._wake(False, None)
            async with contextlib.aclosing(self._stream(call, opened)) as events:
                async for event in events:
                    yield event

    async def _stream(
        self, call: calls.Call[Any], opened: Callable[[httpx.Response], None] | None
    ) -> AsyncGenerator[ServerSentEvent, None]:
        try:
            request = self._request(call)
            method, url = request.pop("method"), request.pop("url")
            async with aconnect_sse(self._http, method, url, **request) as source:
                if source.response.status_code >= 300:  # refused before it began
                    await source.response.aread()
                    answer(source.response)
                if opened is not None:
                    opened(source.response)
                async for sse in source.aiter_sse():
                    yield sse
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._settings.base_url) from exc

    async def _resumed(self, place: Place) -> AsyncGenerator[dict[str, Any], None]:
        """As `Sandbox._resumed`."""
        try:
            while not place.done:
                try:
                    async with contextlib.aclosing(self._sse(place.call, place.opened)) as stream:
                        async for sse in stream:
                            event = event_of(sse.data)
                            place.saw(sse.id, event)
                            yield event
                            if place.done:
                                return
                    raise place.cut_short()
                except TransportError as exc:
                    await asyncio.sleep(place.retry(exc))
        finally:
            if (cancel := place.cancellation()) is not None:
                # Best effort: a client already closed (RuntimeError) cannot stop it.
                with contextlib.suppress(SandboxError, RuntimeError):
                    await self._send(cancel)

    async def _started(self, call: calls.Call[Any]) -> str:
        """As `Sandbox._started`."""
        try:
            async with self._http.stream(**self._request(call)) as response:
                if response.status_code >= 300:
                    await response.aread()
                    answer(response)
                return str(response.headers["X-Execution-Id"])
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._settings.base_url) from exc

    async def _fed(
        self, source: calls.Call[Any] | Place, feed: Callable[[dict[str, Any]], ItemT | None]
    ) -> AsyncGenerator[ItemT, None]:
        """What `feed` makes of each event of a stream (events it skips give None)."""
        events = self._resumed(source) if isinstance(source, Place) else self._events(source)
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                if (item := feed(event)) is not None:
                    yield item

    async def _streamed_command(
        self, call: calls.Call[Any] | Place, callbacks: RunCallbacks, output: CommandOutput
    ) -> CommandResult:
        async with contextlib.aclosing(self._fed(call, output.feed)) as messages:
            async for message in messages:
                await deliver(callbacks.for_item(message), message)
        return output.result()

    @classmethod
    async def list(
        cls,
        hub_url: str | None = None,
        token: str | None = None,
        server_url: str | None = None,
        request_timeout: float | None = None,
    ) -> list[hub.SandboxInfo]:
        """As `Sandbox.list` (defined last for the same reason)."""
        hub_at = hub.hub_settings(hub_url, token)
        url, token = hub_at if hub_at is not None else (server_url, token)
        probe = cls(url, token=token, timeout=request_timeout or 30.0)
        try:
            if hub_at is None:
                contexts, sessions, processes = probe._listed_calls()
                return cls._sandboxes_listed(
                    await probe._call(contexts),
                    await probe._call(sessions),
                    await probe._call(processes),
                )
            user = await probe._call(hub.whoami(hub_at[0]))
            return await probe._call(hub.list_servers(hub_at[0], user))
        finally:
            await probe.close()


def get_sandbox(
    hub_url: str | None, sandbox_id: str, token: str | None = None, **options: Any
) -> Sandbox:
    """The sandbox with this id on a Hub, made if there is none yet (Cloudflare's
    `getSandbox`): `Sandbox.connect(sandbox_id, create=True, ...)`."""
    return Sandbox.connect(sandbox_id, hub_url=hub_url, token=token, create=True, **options)
