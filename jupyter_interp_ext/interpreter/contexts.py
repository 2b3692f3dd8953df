"""Code contexts: kernels started by the server's kernel manager, one per context."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.managers import GatewayMappingKernelManager
from traitlets import Bool, Dict, Float, Instance, Int, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.launch import LaunchPolicy
from jupyter_interp_ext.notebooks.registry import (
    DELETED,
    SERVER_STOPPED,
    SHUT_DOWN_ELSEWHERE,
    ContextNotebooks,
)
from jupyter_interp_ext.protocol.errors import ProtocolError, context_not_found, limit_reached

from .kernel_client import open_client, run_silently
from .languages import (
    Language,
    available_languages,
    default_aliases,
    default_kernels,
    resolve_language,
)
from .pool import KernelPool, PooledKernel
from .preludes import python_rich_data

SESSION_TYPE = "sandbox-context"
POOL_SESSION_TYPE = "sandbox-pool"


@dataclass
class _NewKernel:
    """A kernel about to become a context."""

    kernel_id: str
    client: AsyncKernelClient
    move_code: str | None  # moves it to the context's cwd/env (None: it started there)
    from_pool: bool  # its prelude already ran
    jupyter_session_id: str | None = None  # the pool's row for it in the server's sessions


@dataclass
class CodeContext:
    """A context as the API sees it; its id is the kernel id."""

    id: str
    runs: Language  # its language, with everything about running it
    cwd: str
    client: AsyncKernelClient
    jupyter_session_id: str | None = None
    restarts: int = 0
    restarts_requested: int = 0  # through our restart route (Jupyter interrupts on the way)
    needs_prelude: bool = False
    move_code: str | None = None
    kernel_ready: object | None = None  # the kernel's `ready` future when we last set it up
    closed: bool = False  # deleted (or the server is stopping): its channels are closed
    created: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    notebook: str | None = None  # path of its notebook in the server's contents
    labels: dict[str, str] = field(default_factory=dict)  # the creator's, to find it again

    @property
    def language(self) -> str:
        return self.runs.name

    @property
    def kernel_name(self) -> str:
        return self.runs.kernel_name

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.id, "language": self.language, "cwd": self.cwd}
        if self.notebook is not None:
            answer["notebook"] = self.notebook
        if self.labels:
            answer["labels"] = self.labels
        return answer


class CodeContextRegistry(LoggingConfigurable):
    """Creates, finds and deletes contexts; owns each context's cached kernel client."""

    kernels = Dict(
        default_kernels(),
        help="Language name → kernelspec that runs it. Other installed kernelspecs are "
        "accepted by their own name.",
    ).tag(config=True)

    aliases = Dict(
        default_aliases(),
        help="Other names clients use for a language (the official client's aliases).",
    ).tag(config=True)

    ready_timeout = Float(
        60.0, help="Seconds a new kernel may take before creating its context fails."
    ).tag(config=True)

    max_contexts = Int(
        64, help="Contexts that may exist at once (0: no limit); more are refused with 429."
    ).tag(config=True)

    chart_data = Bool(
        True,
        help="Python results of matplotlib figures carry chart data (`chart`) besides the "
        "image (needs the `datascience` extra in the kernel's environment).",
    ).tag(config=True)

    table_max_rows = Int(
        1000,
        help="Rows of a pandas DataFrame or Series sent as Table Schema data with its result "
        "(0: none); the rest is cut, with a note.",
    ).tag(config=True)

    table_max_bytes = Int(
        1024 * 1024, help="Most bytes of Table Schema data one result carries (rows are cut)."
    ).tag(config=True)

    kernel_manager = Instance("jupyter_server.services.kernels.kernelmanager.MappingKernelManager")
    jupyter_session_manager = Instance(
        "jupyter_server.services.sessions.sessionmanager.SessionManager", allow_none=True
    )
    kernel_spec_manager = Instance("jupyter_client.kernelspec.KernelSpecManager")
    pool = Instance(KernelPool, allow_none=True)
    notebooks = Instance(ContextNotebooks, allow_none=True)
    root_dir = Unicode()
    launch = Instance(LaunchPolicy)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._contexts: dict[str, CodeContext] = {}
        self._creating = 0
        self._closing: set[asyncio.Future] = set()  # notebooks being closed in the background

    async def installed_kernels(self) -> set[str]:
        """Names of the installed kernelspecs (found anew each time: specs can be installed
        while the server runs); the name lookup avoids loading every spec file."""
        manager = self.kernel_spec_manager
        if self.remote or not hasattr(manager, "find_kernel_specs"):
            return set(await ensure_async(manager.get_all_specs()))
        return set(await ensure_async(manager.find_kernel_specs()))

    @property
    def remote(self) -> bool:
        """Whether kernels run behind a Gateway (Kernel Gateway, Enterprise Gateway)."""
        return isinstance(self.kernel_manager, GatewayMappingKernelManager)

    async def resolve(self, language: str) -> Language:
        """The language and kernelspec a request names (400 naming the options if none)."""
        return resolve_language(
            language, self.kernels, self.aliases, await self.installed_kernels()
        )

    async def languages(self) -> list[str]:
        return available_languages(self.kernels, self.aliases, await self.installed_kernels())

    async def create(
        self,
        language: str,
        cwd: str | None,
        env_vars: dict[str, str],
        base: tuple[str, Mapping[str, str]] | None = None,
        labels: dict[str, str] | None = None,
    ) -> CodeContext:
        """Start a kernel for a new context, in `cwd` with `env_vars`, ready to run code.

        `base` is the (directory, environment) to start from instead of the server's root and
        environment: an execution session's current state.
        """
        lang = await self.resolve(language)
        base_cwd, base_env = base or (self.root_dir, os.environ)
        real_cwd = self.launch.start_dir(cwd, base_cwd)
        env = self.launch.environment(base_env, env_vars)
        if self.max_contexts and len(self.list()) + self._creating >= self.max_contexts:
            raise limit_reached("contexts", self.max_contexts, "CodeContextRegistry.max_contexts")
        self._creating += 1
        try:
            kernel = await self._kernel_for(lang, real_cwd, env, env_vars)
            try:
                context = await self._attach(kernel, lang, real_cwd)
            except BaseException:
                kernel.client.stop_channels()
                await self._shutdown_kernel(kernel.kernel_id)
                if self.notebooks is not None:  # a context that never was leaves no notebook
                    await self.notebooks.close(kernel.kernel_id, "", keep=False)
                raise
        finally:
            self._creating -= 1
        context.labels = dict(labels or {})
        self._contexts[context.id] = context
        source = "pool" if kernel.from_pool else "fresh"
        metrics.CONTEXTS.labels(lang.name).inc()
        metrics.CONTEXT_STARTS.labels(lang.name, source).inc()
        self.log.info("Context %s created (%s in %s, %s)", context.id, lang.name, real_cwd, source)
        return context

    async def _kernel_for(
        self, lang: Language, cwd: str, env: dict[str, str], env_vars: dict[str, str]
    ) -> _NewKernel:
        """A kernel for a new context: a pooled one with the code that moves it to `cwd` and
        `env` (so it matches a fresh start), or else a fresh start in them."""
        pooled = await self.pool.take(lang.name) if self.pool is not None else None
        if self.remote:
            # A Gateway passes few variables at start and its kernels may not share our disk:
            # the requested variables and directory are set in the kernel instead.
            move_code = lang.move_code(cwd, env_vars, [])
            if pooled is not None:
                return _NewKernel(
                    pooled.kernel_id,
                    pooled.client,
                    move_code or "",
                    True,
                    pooled.jupyter_session_id,
                )
        elif pooled is not None:
            target = await self._effective_env(lang.kernel_name, env)
            changed = {k: v for k, v in target.items() if pooled.env.get(k) != v}
            removed = [k for k in pooled.env if k not in target]
            move_code = lang.move_code(cwd, changed, removed)
            if move_code is not None and cwd == pooled.cwd and not changed and not removed:
                move_code = ""  # the pooled kernel already stands where the context wants it
            if move_code is not None:
                return _NewKernel(
                    pooled.kernel_id, pooled.client, move_code, True, pooled.jupyter_session_id
                )
            await self.stop_pooled(pooled)
        else:
            move_code = None
        kernel_id = await self.kernel_manager.start_kernel(
            kernel_name=lang.kernel_name, cwd=cwd, env=env
        )
        return _NewKernel(kernel_id, await self._connect(kernel_id, lang), move_code, False)

    async def start_for_pool(self, language: str) -> PooledKernel:
        """A kernel started in the root with the server's environment, channels up."""
        lang = await self.resolve(language)
        env = self.launch.environment(os.environ, {})
        kernel_id = await self.kernel_manager.start_kernel(
            kernel_name=lang.kernel_name, cwd=self.root_dir, env=env
        )
        client = await self._connect(kernel_id, lang)
        try:
            await self._run_setup(client, self.prelude(lang))
        except BaseException:
            client.stop_channels()
            await self._shutdown_kernel(kernel_id)
            raise
        effective = env if self.remote else await self._effective_env(lang.kernel_name, env)
        ready = self.kernel_manager.get_kernel(kernel_id).ready
        pooled = PooledKernel(kernel_id, lang.name, client, self.root_dir, effective, ready)
        # A session row, so that Lab's Running panel says what the kernel is.
        pooled.jupyter_session_id = await self._session_row(
            kernel_id,
            lang,
            f"sandbox/pool/{lang.name}-{kernel_id[:8]}",
            f"Sandbox pool: pre-started {lang.name} kernel",
            POOL_SESSION_TYPE,
        )
        return pooled

    async def _session_row(
        self, kernel_id: str, lang: Language, path: str, name: str, kind: str
    ) -> str | None:
        """A row in the server's sessions naming a kernel of ours (None without sessions)."""
        if self.jupyter_session_manager is None:
            return None
        model = await self.jupyter_session_manager.create_session(
            path=path, name=name, type=kind, kernel_name=lang.kernel_name, kernel_id=kernel_id
        )
        return model["id"]

    def pooled_is_usable(self, pooled: PooledKernel) -> bool:
        """Whether a pooled kernel is still running as the pool started it."""
        if pooled.kernel_id not in self.kernel_manager:
            return False
        kernel = self.kernel_manager.get_kernel(pooled.kernel_id)
        return kernel.ready is pooled.ready and not getattr(kernel, "shutting_down", False)

    async def stop_pooled(self, pooled: PooledKernel) -> None:
        pooled.client.stop_channels()
        if self.jupyter_session_manager is not None and pooled.jupyter_session_id is not None:
            with contextlib.suppress(Exception):
                await self.jupyter_session_manager.delete_session(pooled.jupyter_session_id)
        await self._shutdown_kernel(pooled.kernel_id)

    async def _effective_env(self, kernel_name: str, env: dict[str, str]) -> dict[str, str]:
        """The environment a kernel really gets: ours, then its kernelspec's `env` on top."""
        spec = await ensure_async(self.kernel_spec_manager.get_kernel_spec(kernel_name))
        return {**env, **(spec.env or {})}

    async def _connect(self, kernel_id: str, lang: Language) -> AsyncKernelClient:
        """The cached client of a new kernel; connected kernels are never culled as idle."""
        kernel = self.kernel_manager.get_kernel(kernel_id)
        try:
            client = await open_client(kernel, self.ready_timeout)
        except TimeoutError:
            await self._shutdown_kernel(kernel_id)
            raise ProtocolError(
                "INTERNAL_ERROR", f"The {lang.name} kernel did not become ready"
            ) from None
        self.kernel_manager.notify_connect(kernel_id)
        return client

    async def _attach(self, new: _NewKernel, lang: Language, cwd: str) -> CodeContext:
        kernel_id = new.kernel_id
        context = CodeContext(kernel_id, lang, cwd, new.client)
        context.move_code = new.move_code
        # The client was proven on this start of the kernel: not a replaced one.
        context.kernel_ready = self.kernel_manager.get_kernel(kernel_id).ready
        if new.from_pool:  # its prelude ran already; it may only need moving
            await self._run_setup(new.client, new.move_code or "")
        else:
            await self.run_prelude(context)
        kernel = self.kernel_manager.get_kernel(kernel_id)
        kernel.add_restart_callback(partial(self._restarted_elsewhere, context), "restart")
        path, name, kind = await self._row_naming(context, lang)
        if self.jupyter_session_manager is not None and new.jupyter_session_id is not None:
            # The pool's row becomes the context's.
            await self.jupyter_session_manager.update_session(
                new.jupyter_session_id, path=path, name=name, type=kind
            )
            context.jupyter_session_id = new.jupyter_session_id
        else:
            context.jupyter_session_id = await self._session_row(kernel_id, lang, path, name, kind)
        return context

    async def _row_naming(self, context: CodeContext, lang: Language) -> tuple[str, str, str]:
        """Path, name and type of the context's session row: its notebook when it has one, so
        that JupyterLab opening the notebook attaches to the context's kernel."""
        if self.notebooks is not None:
            context.notebook = self.notebooks.open(
                context.id, lang.name, lang.kernel_name, await self._display_name(context, lang)
            )
        if context.notebook is None:
            path, name = f"sandbox/{lang.name}-{context.id[:8]}", f"Sandbox {lang.name} context"
            return path, name, SESSION_TYPE
        return context.notebook, context.notebook.rsplit("/", 1)[-1], "notebook"

    async def _display_name(self, context: CodeContext, lang: Language) -> str:
        """The kernelspec's display name, which Lab shows for the notebook's kernel: a local
        kernel's manager holds the spec it started with (reading it anew costs ~1 ms of a
        context's creation)."""
        try:
            if not self.remote:
                return self.kernel_manager.get_kernel(context.id).kernel_spec.display_name
            spec = await ensure_async(self.kernel_spec_manager.get_kernel_spec(lang.kernel_name))
            return spec.display_name
        except Exception:
            return lang.kernel_name

    def _restarted_elsewhere(self, context: CodeContext) -> None:
        """The server's restarter revived a dead kernel: its state and prelude are gone."""
        self.log.warning("Kernel of context %s died and was restarted", context.id)
        context.restarts += 1
        context.needs_prelude = True

    async def run_prelude(self, context: CodeContext) -> None:
        """Set-up code, after the move to the context's cwd/env for a pooled kernel (a restart
        brings the kernel back as the pool started it). A restarted kernel gets a new client,
        proven to reach it on every channel: the old client's sockets would reconnect to the
        new process by themselves, some time after, and a run sent before its output channel
        had would lose its output."""
        if self.replaced(context):
            await self._reconnect(context)
        await self._run_setup(
            context.client, (context.move_code or "") + self.prelude(context.runs)
        )
        context.needs_prelude = False
        context.kernel_ready = self.kernel_manager.get_kernel(context.id).ready

    def prelude(self, language: Language) -> str:
        """A language's set-up code, with chart and table data as configured here."""
        if not language.rich_data:
            return language.prelude
        rich = python_rich_data(
            charts=self.chart_data,
            table_rows=self.table_max_rows,
            table_bytes=self.table_max_bytes,
        )
        return language.prelude + rich

    def replaced(self, context: CodeContext) -> bool:
        """Whether the kernel was restarted since we set it up (by us, the server's restarter,
        or anyone through /api/kernels): each (re)start gives it a new `ready` future."""
        if context.id not in self.kernel_manager:
            return False
        return self.kernel_manager.get_kernel(context.id).ready is not context.kernel_ready

    async def _run_setup(self, client: AsyncKernelClient, code: str) -> None:
        if code:
            await run_silently(client, code, self.ready_timeout)

    def kernel_pid(self, context: CodeContext) -> int | None:
        """The process id of the context's kernel where it runs on this machine."""
        if context.id not in self.kernel_manager:
            return None
        provisioner = getattr(self.kernel_manager.get_kernel(context.id), "provisioner", None)
        return getattr(getattr(provisioner, "process", None), "pid", None)

    def list(self) -> list[CodeContext]:
        """Live contexts; contexts whose kernel was shut down elsewhere are forgotten."""
        for context_id in [c for c in self._contexts if c not in self.kernel_manager]:
            self._forget(context_id)
        return list(self._contexts.values())

    def get(self, context_id: str) -> CodeContext:
        """The context, or 404 if it never existed or its kernel was shut down or culled."""
        context = self._contexts.get(context_id)
        if context is None:
            raise context_not_found(context_id)
        if context_id not in self.kernel_manager:
            self._forget(context_id)
            raise context_not_found(context_id, " (its kernel was shut down)")
        return context

    async def is_alive(self, context: CodeContext) -> bool:
        if context.id not in self.kernel_manager:
            return False
        kernel = self.kernel_manager.get_kernel(context.id)
        return bool(await ensure_async(kernel.is_alive()))

    async def ensure_running(self, context: CodeContext) -> None:
        """Return once the kernel runs; 410 if it is dead and not being revived.

        The server's restarter announces a restart before it starts the new kernel, so a
        context that is being revived is waited for rather than refused.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        while not await self.is_alive(context):
            reviving = context.needs_prelude or self._restarter_will_revive(context)
            if not reviving or loop.time() > deadline:
                raise ProtocolError(
                    "CONTEXT_TERMINATED",
                    f"The kernel of context '{context.id}' is not running; delete the context "
                    "and create a new one",
                    {"contextId": context.id},
                )
            await asyncio.sleep(0.1)

    def _restarter_will_revive(self, context: CodeContext) -> bool:
        """Whether the server's restarter is watching this kernel and has restarts left: it
        notices a death only at its next poll (seconds later), so its kernel is waited for."""
        if context.id not in self.kernel_manager:
            return False
        kernel = self.kernel_manager.get_kernel(context.id)
        restarter = getattr(kernel, "_restarter", None)
        if not kernel.autorestart or restarter is None or kernel.shutting_down:
            return False
        return restarter._restart_count < restarter.restart_limit

    async def restart(self, context: CodeContext) -> None:
        """Restart the kernel (same cwd and env), reconnect and re-run the prelude."""
        await self.kernel_manager.restart_kernel(context.id, now=True)
        await self._reconnect(context)  # a Gateway's kernel keeps its `ready` across restarts
        await self.run_prelude(context)

    async def _reconnect(self, context: CodeContext) -> None:
        """A new client for the kernel as it runs now, proven on every channel."""
        context.client.stop_channels()
        kernel = self.kernel_manager.get_kernel(context.id)
        context.client = await open_client(kernel, self.ready_timeout)
        context.kernel_ready = kernel.ready

    async def interrupt(self, context: CodeContext) -> None:
        """Interrupt what the kernel runs (a run in flight ends with its KeyboardInterrupt)."""
        await self.kernel_manager.interrupt_kernel(context.id)

    async def interrupt_on_request(self, context: CodeContext) -> None:
        """Interrupt a running kernel for a caller (410 if it is not running)."""
        await self.ensure_running(context)
        await self.interrupt(context)

    async def restart_on_request(self, context: CodeContext) -> None:
        """Restart the kernel as Jupyter's own restart route does: its variables go, its
        directory and environment stay, a run in flight ends with `KernelRestarted`, and the
        next run reconnects and runs the prelude again."""
        await self.ensure_running(context)
        context.restarts_requested += 1  # before Jupyter interrupts the kernel to restart it
        await self.kernel_manager.restart_kernel(context.id)

    async def delete(self, context_id: str, why: str = DELETED) -> None:
        """Shut the context's kernel down, drop its session row and close its notebook."""
        context = self.get(context_id)
        self._forget(context_id, why=None)
        if self.jupyter_session_manager is not None and context.jupyter_session_id:
            with contextlib.suppress(Exception):
                await self.jupyter_session_manager.delete_session(context.jupyter_session_id)
        await self._shutdown_kernel(context_id)
        if self.notebooks is not None:
            await self.notebooks.close(context_id, why)
        self.log.info("Context %s deleted", context_id)

    def _forget(self, context_id: str, why: str | None = SHUT_DOWN_ELSEWHERE) -> None:
        """Drop a context; with `why`, its notebook is closed saying so (in the background:
        this runs where a kernel was found gone)."""
        context = self._contexts.pop(context_id, None)
        if context is not None:
            metrics.CONTEXTS.labels(context.language).dec()
            context.closed = True
            context.client.stop_channels()
            if context_id in self.kernel_manager:
                self.kernel_manager.notify_disconnect(context_id)
            if why is not None and self.notebooks is not None:
                closing = asyncio.ensure_future(self.notebooks.close(context_id, why))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    def kernel_shut_down(self, kernel_id: str) -> None:
        """The server shut a kernel down (Lab, /api/kernels, the culler): if it was a
        context's, the context is gone."""
        if kernel_id in self._contexts:
            self._forget(kernel_id)

    async def _shutdown_kernel(self, kernel_id: str) -> None:
        if kernel_id in self.kernel_manager:
            await self.kernel_manager.shutdown_kernel(kernel_id, now=True)

    async def shutdown(self) -> None:
        """Stop every context's kernel (the server stops with its extension)."""
        for context_id in list(self._contexts):
            with contextlib.suppress(Exception):
                await self.delete(context_id, SERVER_STOPPED)
        if self._closing:
            await asyncio.wait(self._closing, timeout=30)
