"""The sandbox's terminals are Jupyter's own (jupyter_server_terminals): listed in
`/api/terminals` and JupyterLab's Running panel, open to a person in JupyterLab. A session's
terminal is named after it, starts in the session's directory with its exported variables,
and ends with the session."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

from traitlets import Int, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError
from jupyter_interp_ext.shells.sessions import ShellSessionManager

from .terminal import SandboxTerminal

# Jupyter's terminal routes take names of word characters only (`/api/terminals/(\w+)`).
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
DEFAULT_COLS, DEFAULT_ROWS = 80, 24
# Variables terminado sets for the terminal itself (its type and size).
TERMINAL_OWN = {"TERM", "COLUMNS", "LINES"}


class SandboxTerminals(LoggingConfigurable):
    """Terminals of the server's terminal manager, as the sandbox's PTY routes use them."""

    output_limit = Int(
        1 << 20,
        help="Characters of each terminal's latest output kept for clients that reconnect "
        "(a client further behind is told that some output is gone).",
    ).tag(config=True)

    name_prefix = Unicode(
        "sandbox_", help="How the names of session terminals begin (word characters only)."
    ).tag(config=True)

    shell = Unicode("bash", help="The program a session's terminal runs when none is named.").tag(
        config=True
    )

    def __init__(
        self, sessions: ShellSessionManager, find_manager: Callable[[], Any], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        # The server's TerminalManager (set up by jupyter_server_terminals), or None.
        self._find_manager = find_manager
        self._terminals: dict[str, SandboxTerminal] = {}

    def name_for(self, session_id: str) -> str:
        """The terminal name of a session: readable, and unique even when the session's id
        has characters a terminal name cannot."""
        safe = _NAME_UNSAFE.sub("_", session_id)
        if safe != session_id:
            safe += "_" + hashlib.sha256(session_id.encode()).hexdigest()[:8]
        return self.name_prefix + safe

    def _manager(self) -> Any:
        manager = self._find_manager()
        if manager is None:
            raise ProtocolError(
                "TERMINALS_UNAVAILABLE",
                "This server has no terminals (jupyter_server_terminals is off or missing, "
                "or ServerApp.terminals_enabled is False)",
            )
        return manager

    def get(self, name: str) -> SandboxTerminal:
        """A running terminal of the server, whoever opened it."""
        manager = self._manager()
        pty = manager.terminals.get(name)
        if pty is None:
            raise ProtocolError(
                "TERMINAL_NOT_FOUND", f"Terminal not found: {name}", {"terminalId": name}
            )
        for gone in [n for n in self._terminals if n not in manager.terminals]:
            del self._terminals[gone]
        known = self._terminals.get(name)
        if known is None or known.pty is not pty:
            known = self._terminals[name] = SandboxTerminal(name, pty, self.output_limit)
        return known

    async def for_session(
        self, session_id: str, cols: int | None, rows: int | None, shell: str | None
    ) -> SandboxTerminal:
        """The session's terminal (started on first use, in the session's directory and
        environment, at this size)."""
        manager = self._manager()
        name = self.name_for(session_id)
        if name in manager.terminals:
            return self.get(name)
        program = shell or self.shell
        if shutil.which(program) is None:
            raise ProtocolError(
                "VALIDATION_FAILED", f"No such shell: {program}", {"field": "shell"}
            )
        cwd, env = await self.sessions.snapshot(session_id)
        if name in manager.terminals:  # (made by another connection while this one waited)
            return self.get(name)
        # Terminado starts from the server's environment and sets the terminal's own
        # variables: what the session does not have (the server's token among it) is taken
        # out, and the session's values go in, but for the terminal's.
        changes: dict[str, str | None] = {
            key: None for key in os.environ if key not in env and key not in TERMINAL_OWN
        }
        changes.update((key, value) for key, value in env.items() if key not in TERMINAL_OWN)
        manager.create(
            name=name,
            cwd=cwd,
            extra_env=changes,
            shell_command=[program],
            width=cols or DEFAULT_COLS,
            height=rows or DEFAULT_ROWS,
        )
        self.log.info("Terminal %s started for session %s in %s", name, session_id, cwd)
        metrics.TERMINALS_STARTED.inc()
        return self.get(name)

    async def terminate(self, name: str) -> None:
        """End a terminal's program (its readers are told how it ended)."""
        manager = self._manager()
        if name in manager.terminals:
            await manager.terminate(name, force=True)

    async def end_session(self, session_id: str) -> None:
        """The session is gone: so is its terminal."""
        if self._find_manager() is not None:
            await self.terminate(self.name_for(session_id))
