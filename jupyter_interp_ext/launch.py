"""The environment and working directory a kernel starts with."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import SandboxError, validation_error

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def kernel_environment(
    base: Mapping[str, str],
    deny: Iterable[str],
    secrets: Iterable[str],
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """The server's environment minus denied names and secret values, then the overrides.

    A kernel runs code an agent sent: it must not see the token that lets it drive the server.
    """
    patterns = list(deny)
    secret_values = {s for s in secrets if s}
    env = {
        name: value
        for name, value in base.items()
        if value not in secret_values and not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    validate_env_names(overrides, "env_vars")
    env.update(overrides)
    return env


def validate_env_names(env: Mapping[str, str], field: str) -> None:
    """Reject names a shell could not export (and that would be injected into its script)."""
    for name in env:
        if not _ENV_NAME.match(name):
            raise validation_error(f"{field}.{name}", f"'{name}' is not a valid variable name")


def is_within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether a resolved path lies inside one of the resolved roots."""
    return any(path == root or root in path.parents for root in roots)


def resolve_cwd(requested: str | None, default: str, roots: Iterable[str]) -> str:
    """The real directory a context starts in.

    A directory that does not exist means "the default" (the official client always sends
    `/workspace`); an existing one outside the allowed roots is refused.
    """
    resolved_roots = [Path(r).resolve() for r in roots]
    if not requested:
        return str(Path(default).resolve())
    candidate = Path(default, os.path.expanduser(requested)).resolve()
    if not candidate.exists():
        return str(Path(default).resolve())
    if not is_within(candidate, resolved_roots):
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
