"""Where and with what environment kernels, shells and commands start: one resolution for
every entry point (contexts, sessions, commands, processes)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import SandboxError
from .validation import validate_env_names


def launch_environment(
    base: Mapping[str, str],
    deny: Iterable[str],
    secrets: Iterable[str],
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """`base` minus denied names and secret values, then the (validated) overrides.

    Whatever starts runs code an agent sent: it must not see the token that drives the server.
    """
    patterns = list(deny)
    secret_values = {s for s in secrets if s}
    env = {
        name: value
        for name, value in base.items()
        if value not in secret_values and not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    validate_env_names(overrides, "env")
    env.update(overrides)
    return env


def _directory(requested: str, base: str) -> Path:
    """`requested` as a shell's `cd` would take it from `base` (`~` expanded), resolved."""
    return Path(base, os.path.expanduser(requested)).resolve()


def is_within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether a resolved path lies inside one of the resolved roots."""
    return any(path == root or root in path.parents for root in roots)


def start_dir(requested: str | None, base: str, roots: Iterable[str]) -> str:
    """The real directory a context or a session starts in.

    A directory that does not exist means `base` (the official client always sends
    `/workspace`); an existing one outside the allowed roots is refused.
    """
    fallback = str(Path(base).resolve())
    if not requested:
        return fallback
    candidate = _directory(requested, base)
    if not candidate.exists():
        return fallback
    if not is_within(candidate, [Path(r).resolve() for r in roots]):
        raise SandboxError(
            "PERMISSION_DENIED",
            f"cwd '{requested}' is outside the allowed roots",
            {"path": requested},
        )
    if not candidate.is_dir():
        raise SandboxError(
            "NOT_DIRECTORY", f"cwd '{requested}' is not a directory", {"path": requested}
        )
    return str(candidate)


def command_dir(requested: str | None, base: str) -> str | None:
    """The directory one command runs in: `requested` taken as `cd` would from `base` (the
    session's current directory), or None if there is no such directory. A command may run
    wherever its shell could `cd`, as in its session."""
    if not requested:
        return base
    candidate = _directory(requested, base)
    return str(candidate) if candidate.is_dir() else None


def cd_failed(requested: str) -> str:
    """What a shell says when a command's directory does not exist (the upstream wording)."""
    return f"Failed to change directory to {requested}"
