"""Where and with what environment kernels, shells, commands and git start: one policy that
every entry point (contexts, sessions, commands, processes, clones) receives."""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Mapping
from pathlib import Path

from traitlets import List, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext.files.confinement import Confinement
from jupyter_interp_ext.protocol.errors import ProtocolError
from jupyter_interp_ext.protocol.validation import validate_env_names


class LaunchPolicy(LoggingConfigurable):
    """What whatever starts may see. It runs code an agent sent: it must not see the token
    that drives the server, nor start outside the roots."""

    env_deny_list = List(
        Unicode(),
        [
            "JUPYTER_TOKEN",
            "JPY_API_TOKEN",
            "JUPYTERHUB_API_TOKEN",
            "JUPYTERHUB_CLIENT_SECRET",
            "JUPYTER_PASSWORD*",
        ],
        help="Environment names (fnmatch patterns) never passed to kernels, shells, commands, "
        "processes or git. Values equal to the server's token are dropped too.",
    ).tag(config=True)

    secrets = List(Unicode(), help="Values that must never reach what starts (the token).")
    root_dir = Unicode(help="The root everything starts inside.")

    def environment(self, base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
        """`base` minus denied names and secret values, then the (validated) overrides."""
        secret_values = {s for s in self.secrets if s}
        env = {
            name: value
            for name, value in base.items()
            if value not in secret_values
            and not any(fnmatch.fnmatchcase(name, p) for p in self.env_deny_list)
        }
        validate_env_names(overrides, "env")
        env.update(overrides)
        return env

    @functools.cached_property
    def _confinement(self) -> Confinement:
        """The walk start directories take (hidden names allowed: a shell may cd there)."""
        return Confinement([self.root_dir], allow_hidden=True)

    def start_dir(self, requested: str | None, base: str) -> str:
        """The real directory a context or a session starts in.

        A directory that does not exist means `base` (the official client always sends
        `/workspace`); an existing one is walked as the files API walks paths (links followed
        inside the roots only) and refused outside them.
        """
        fallback = os.path.realpath(base)
        if not requested:
            return fallback
        candidate = os.path.join(base, os.path.expanduser(requested))
        if not os.path.exists(candidate):
            return fallback
        try:
            fd = self._confinement.open_directory(candidate, requested)
        except (NotADirectoryError, FileNotFoundError):
            raise ProtocolError(
                "NOT_DIRECTORY", f"cwd '{requested}' is not a directory", {"path": requested}
            ) from None
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)


def command_dir(requested: str | None, base: str) -> str | None:
    """The directory one command runs in: `requested` taken as `cd` would from `base` (the
    session's current directory), or None if there is no such directory. A command may run
    wherever its shell could `cd`, as in its session."""
    if not requested:
        return base
    candidate = Path(base, os.path.expanduser(requested)).resolve()
    return str(candidate) if candidate.is_dir() else None


def cd_failed(requested: str) -> str:
    """What a shell says when a command's directory does not exist (the upstream wording)."""
    return f"Failed to change directory to {requested}"
