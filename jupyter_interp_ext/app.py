"""The Jupyter Server extension: configuration, managers and routes."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float, Int, Type, Unicode, validate

from jupyter_interp_ext.files.backups import BackupManager
from jupyter_interp_ext.files.git import GitManager
from jupyter_interp_ext.files.manager import FileManager
from jupyter_interp_ext.handlers import routes
from jupyter_interp_ext.heap import freeze_long_lived
from jupyter_interp_ext.interpreter.contexts import CodeContextRegistry
from jupyter_interp_ext.interpreter.execution import ExecutionManager
from jupyter_interp_ext.interpreter.pool import KernelPool
from jupyter_interp_ext.launch import LaunchPolicy
from jupyter_interp_ext.mcp_endpoint.service import McpService
from jupyter_interp_ext.notebooks.registry import ContextNotebooks, collaboration_documents

try:  # the `proxy` extra
    from jupyter_interp_ext.handlers.previews import preview_route
except ImportError:
    preview_route = None  # type: ignore[assignment]
from jupyter_interp_ext.files.watching import WatchManager
from jupyter_interp_ext.protocol.sse import OpenStreams
from jupyter_interp_ext.shells.processes import ProcessManager
from jupyter_interp_ext.shells.sessions import ShellSessionManager
from jupyter_interp_ext.terminals.manager import SandboxTerminals

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"


class InterpreterApp(ExtensionApp):
    """Serves the Cloudflare Sandbox code-interpreter API on the server's own kernels."""

    name = "jupyter_interp_ext"
    load_other_extensions = True
    # Every class configured by name (`c.KernelPool.sizes = …`): `--help-all` and the
    # configuration reference list these.
    classes = [
        LaunchPolicy,
        CodeContextRegistry,
        KernelPool,
        ExecutionManager,
        ContextNotebooks,
        ShellSessionManager,
        SandboxTerminals,
        ProcessManager,
        FileManager,
        WatchManager,
        GitManager,
        BackupManager,
    ]

    prefix = Unicode(
        "sandbox", help="URL prefix of the API under the server's base_url (no slashes)."
    ).tag(config=True)

    max_request_bytes = Int(
        64 * 1024 * 1024,
        help="Largest request body the API accepts (0: only the server's max_body_size); "
        "larger ones get 413, from the declared length before any of the body is read.",
    ).tag(config=True)

    keepalive_seconds = Float(
        10.0,
        help="During a silent event stream, send an SSE comment this often, so a client that "
        "left is noticed (0: never).",
    ).tag(config=True)

    write_timeout_seconds = Float(
        30.0,
        help="An event stream whose client reads nothing for this long is closed (a code run "
        "then stops as if the client had disconnected).",
    ).tag(config=True)

    mcp = Bool(
        True,
        help="Serve the MCP endpoint at {base_url}{prefix}/mcp (the sandbox's tools for agent "
        "runtimes, behind the server's authentication).",
    ).tag(config=True)

    mcp_task_after = Float(
        10.0,
        help="Seconds an MCP run_code call waits for its run before answering with a task "
        "(for clients that take MCP tasks; others wait for the end).",
    ).tag(config=True)

    stop_on_signals = Bool(
        True,
        help="Stop the server cleanly (every kernel, shell and process ended, streams closed "
        "with a terminal event) on SIGINT without a terminal and on SIGHUP, as on SIGTERM; "
        "further signals during the stop do not cut it short.",
    ).tag(config=True)

    freeze_long_lived_objects = Bool(
        True,
        help="Once the server has started (and once the MCP endpoint has), keep the objects "
        "alive then (modules, classes, schemas: most of the server's heap) out of the garbage "
        "collector's full passes, which otherwise walk them all every few seconds under load.",
    ).tag(config=True)

    stop_stream_seconds = Float(
        10.0, help="On stop, how long to wait for open event streams to send their last event."
    ).tag(config=True)

    context_registry_class = Type(
        CodeContextRegistry, klass=CodeContextRegistry, help="The class that manages code contexts."
    ).tag(config=True)

    execution_manager_class = Type(
        ExecutionManager, klass=ExecutionManager, help="The class that runs code in contexts."
    ).tag(config=True)

    shell_session_manager_class = Type(
        ShellSessionManager, klass=ShellSessionManager, help="The class that manages shells."
    ).tag(config=True)

    process_manager_class = Type(
        ProcessManager, klass=ProcessManager, help="The class that manages background processes."
    ).tag(config=True)

    kernel_pool_class = Type(
        KernelPool, klass=KernelPool, help="The class that keeps pre-started kernels."
    ).tag(config=True)

    file_manager_class = Type(
        FileManager, klass=FileManager, help="The class that reads and writes files."
    ).tag(config=True)

    @property
    def server(self) -> ServerApp:
        """The server this extension runs in (set before any of its hooks is called)."""
        assert self.serverapp is not None
        return self.serverapp

    @validate("prefix")
    def _strip_slashes(self, proposal: dict) -> str:
        return proposal["value"].strip("/")

    def initialize_settings(self) -> None:
        server = self.server
        raise_to_what_handlers_take(server.log)
        token = getattr(server.identity_provider, "token", "") or ""
        self.launch_policy = LaunchPolicy(
            parent=server, log=server.log, root_dir=server.root_dir, secrets=[token]
        )
        self.context_notebooks = ContextNotebooks(
            parent=server, log=server.log, contents_manager=server.contents_manager
        )
        self.context_registry = self.context_registry_class(
            parent=server,
            log=server.log,
            kernel_manager=server.kernel_manager,
            jupyter_session_manager=server.session_manager,
            kernel_spec_manager=server.kernel_spec_manager,
            root_dir=server.root_dir,
            launch=self.launch_policy,
            notebooks=self.context_notebooks,
        )
        self.kernel_pool = self.kernel_pool_class(
            parent=server,
            log=server.log,
            start=self.context_registry.start_for_pool,
            stop=self.context_registry.stop_pooled,
            usable=self.context_registry.pooled_is_usable,
        )
        self.context_registry.pool = self.kernel_pool
        self.execution_manager = self.execution_manager_class(
            parent=server, log=server.log, contexts=self.context_registry
        )
        self.shell_session_manager = self.shell_session_manager_class(
            parent=server,
            log=server.log,
            root_dir=server.root_dir,
            launch=self.launch_policy,
        )
        self.terminals = SandboxTerminals(
            parent=server,
            log=server.log,
            sessions=self.shell_session_manager,
            find_manager=lambda: server.web_app.settings.get("terminal_manager"),
        )
        self.shell_session_manager.on_end.append(self.terminals.end_session)
        self.process_manager = self.process_manager_class(parent=server, log=server.log)
        self.file_manager = self.file_manager_class(
            parent=server,
            log=server.log,
            root_dir=server.root_dir,
            allow_hidden=bool(getattr(server.contents_manager, "allow_hidden", False)),
        )
        self.watch_manager = WatchManager(parent=server, log=server.log, files=self.file_manager)
        self.git_manager = GitManager(parent=server, log=server.log, files=self.file_manager)
        self.backup_manager = BackupManager(parent=server, log=server.log, files=self.file_manager)
        self.open_streams = OpenStreams()
        self.mcp_service = McpService(
            task_after=self.mcp_task_after, on_started=self._freeze_long_lived
        )
        self.settings.update(
            interp_open_streams=self.open_streams,
            interp_mcp=self.mcp_service,
            interp_context_registry=self.context_registry,
            interp_context_notebooks=self.context_notebooks,
            interp_execution_manager=self.execution_manager,
            interp_shell_session_manager=self.shell_session_manager,
            interp_process_manager=self.process_manager,
            interp_terminals=self.terminals,
            interp_file_manager=self.file_manager,
            interp_kernel_pool=self.kernel_pool,
            interp_watch_manager=self.watch_manager,
            interp_git_manager=self.git_manager,
            interp_backup_manager=self.backup_manager,
            interp_proxy_prefix=preview_prefix(server, self.prefix),
            interp_sandbox_pids=self.sandbox_pids,
            interp_prefix=self.prefix,
            interp_max_request_bytes=self.max_request_bytes,
            interp_keepalive_seconds=self.keepalive_seconds,
            interp_write_timeout_seconds=self.write_timeout_seconds,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes(self.prefix, self.mcp))
        if preview_route is not None:
            self.handlers.insert(0, preview_route(self.prefix))

    def sandbox_pids(self) -> list[int]:
        """The processes whose trees previews may reach: running background processes,
        session shells, and the kernels of contexts (where they run here)."""
        pids = [p.pid for p in self.process_manager.list() if p.exit_code is None]
        pids += [s.shell.pid for s in self.shell_session_manager.list() if s.shell.pid]
        kernels = (self.context_registry.kernel_pid(c) for c in self.context_registry.list())
        return pids + [pid for pid in kernels if pid]

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        """Once the event loop runs: start filling the kernel pool (server start-up does not
        wait for it), and hear of kernels shut down or restarted through the server."""
        serverapp.event_logger.add_listener(schema_id=KERNEL_ACTIONS, listener=self._kernel_action)
        # Every extension is loaded by now: find jupyter-collaboration if it runs.
        self.context_notebooks.live_documents = collaboration_documents(serverapp)
        self.kernel_pool.fill()
        roots = self.file_manager.allowed_roots or [serverapp.root_dir]
        self.log.info(
            "Sandbox API at %s (files confined to %s)",
            url_path_join(serverapp.connection_url, self.prefix),
            ", ".join(roots),
        )
        if self.stop_on_signals and threading.current_thread() is threading.main_thread():
            self._take_stop_signals(serverapp)
        self._freeze_long_lived()

    def _freeze_long_lived(self) -> None:
        if self.freeze_long_lived_objects:
            freeze_long_lived(self.log)

    def _take_stop_signals(self, serverapp: Any) -> None:
        """Without a terminal, Jupyter leaves SIGINT to Python (a KeyboardInterrupt that skips
        every cleanup) and SIGHUP to the default (death on the spot): route both, and SIGTERM,
        through the server's own stop. With a terminal, its "Shut down?" prompt stays."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if sig == signal.SIGINT and signal.getsignal(sig) == serverapp._handle_sigint:
                continue
            signal.signal(sig, self._stop_signal)

    def _stop_signal(self, sig: int, frame: Any) -> None:
        server = self.server
        if getattr(server, "_stopping", False):
            server.log.warning("Signal %s while stopping: the stop goes on", sig)
            return
        server._signal_stop(sig, frame)

    async def _kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        """A pooled kernel shut down or restarted by anyone (Lab, /api/kernels, the culler, the
        restarter) is no longer the pool's to hand out; a context whose kernel was shut down
        is gone (its notebook says so)."""
        what = {"shutdown": "was shut down", "restart": "was restarted"}.get(data.get("action", ""))
        if what and data.get("kernel_id"):
            self.kernel_pool.evict(data["kernel_id"], f"{what} elsewhere")
            if data["action"] == "shutdown":
                self.context_registry.kernel_shut_down(data["kernel_id"])

    async def stop_extension(self) -> None:
        """End everything the extension started; runs in flight end with `KernelShutDown` and
        every open stream sends its last event before the server goes."""
        await self.mcp_service.stop()
        await self.kernel_pool.shutdown()
        await self.process_manager.shutdown()
        await self.shell_session_manager.shutdown()
        await self.context_registry.shutdown()
        await self.context_notebooks.shutdown()
        left = await self.open_streams.wait(self.stop_stream_seconds)
        if left:
            self.log.warning("%d event streams were still open when the server stopped", left)
        self.backup_manager.shutdown()
        self.file_manager.shutdown()


def preview_prefix(server: Any, prefix: str) -> str | None:
    """Where previews of ports are served (`{base_url}{prefix}/preview/`), or None without
    jupyter-server-proxy, whose proxy handler they use."""
    if preview_route is None:
        return None
    return url_path_join(server.base_url, prefix, "preview") + "/"


def raise_to_what_handlers_take(log: Any) -> None:
    """Set the server's logger to the lowest level one of its handlers writes.

    traitlets leaves an application's logger at DEBUG and filters in its handlers, so each
    `log.debug` call (Jupyter makes one per kernel message) builds a record, finds its caller
    and drops it: ~2% of the server's time with many contexts busy. Records no handler takes
    are now not made; what is written is unchanged (a change of `log_level` or
    `logging_config` configures the logger anew)."""
    if not isinstance(log, logging.Logger) or log.propagate or not log.handlers:
        return
    lowest = min(handler.level for handler in log.handlers)
    if lowest > log.level:
        log.setLevel(lowest)
