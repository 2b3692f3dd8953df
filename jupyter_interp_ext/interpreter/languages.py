"""Every fact about a language in one record, and what the client's language names mean.

Adding a language is one `Language` in `LANGUAGES`: its kernelspec, the names clients use for
it, the code its kernels run first, how a running kernel is moved to a context's directory (which
is what lets the pool pre-start it), how long to wait for output after a run replies, and how
many ready kernels the pool keeps. The configuration traits (`CodeContextRegistry.kernels` and
`aliases`, `ExecutionManager.drain_seconds`, `KernelPool.sizes`) take their defaults from here
and override them per server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from jupyter_interp_ext.protocol.errors import validation_error

from .preludes import (
    DENO_PRELUDE,
    PYTHON_PRELUDE,
    bash_run_env,
    deno_run_env,
    move_bash,
    move_deno,
    move_python,
    python_run_env,
)

Mover = Callable[[str, dict[str, str], list[str]], str]
RunEnv = Callable[[dict[str, str]], tuple[str, str]]


@dataclass(frozen=True)
class Language:
    """A language contexts can run: the name we report and everything about running it."""

    name: str
    kernel_name: str
    aliases: tuple[str, ...] = ()
    prelude: str = ""  # set-up code run before the kernel is handed out
    rich_data: bool = False  # also set up chart and table data (Python kernels)
    mover: Mover | None = None  # None: a running kernel cannot be moved, so none is pooled
    run_env: RunEnv | None = None  # code setting variables for one run, and restoring them
    drain_seconds: float = 0.0  # output may still arrive this long after the reply
    pool_size: int = 0  # ready kernels kept once the language is in use

    def move_code(self, cwd: str, set_env: dict[str, str], unset_env: list[str]) -> str | None:
        """Code that gives a running kernel the cwd and environment of a fresh start (None:
        this language has none)."""
        return self.mover(cwd, set_env, unset_env) if self.mover else None


# Deno publishes a result just after its `idle`, hence the drain time.
LANGUAGES: tuple[Language, ...] = (
    Language(
        "python",
        "python3",
        aliases=("py", "python3"),
        prelude=PYTHON_PRELUDE,
        rich_data=True,
        mover=move_python,
        run_env=python_run_env,
        pool_size=2,
    ),
    Language(
        "javascript",
        "deno-javascript",
        aliases=("js", "node"),
        prelude=DENO_PRELUDE,
        mover=move_deno,
        run_env=deno_run_env,
        drain_seconds=0.05,
        pool_size=1,
    ),
    Language(
        "typescript",
        "deno-typescript",
        aliases=("ts",),
        prelude=DENO_PRELUDE,
        mover=move_deno,
        run_env=deno_run_env,
        drain_seconds=0.05,
        pool_size=1,
    ),
    # bash_kernel, from the `bash` extra (kernels/bash is its kernelspec).
    Language(
        "bash",
        "bash",
        aliases=("sh", "shell"),
        mover=move_bash,
        run_env=bash_run_env,
        pool_size=1,
    ),
)
KNOWN: dict[str, Language] = {language.name: language for language in LANGUAGES}


def default_kernels() -> dict[str, str]:
    return {language.name: language.kernel_name for language in LANGUAGES}


def default_aliases() -> dict[str, str]:
    return {alias: language.name for language in LANGUAGES for alias in language.aliases}


def default_drain_seconds() -> dict[str, float]:
    return {lang.name: lang.drain_seconds for lang in LANGUAGES if lang.drain_seconds}


def default_pool_sizes() -> dict[str, int]:
    return {language.name: language.pool_size for language in LANGUAGES}


def language_named(name: str, kernel_name: str) -> Language:
    """The record for `name`, run by `kernel_name` (a kernelspec we know nothing else about
    runs with no set-up, and is not pooled)."""
    known = KNOWN.get(name)
    return replace(known, kernel_name=kernel_name) if known else Language(name, kernel_name)


def resolve_language(
    requested: str,
    kernels: dict[str, str],
    aliases: dict[str, str],
    installed: set[str],
) -> Language:
    """Map a client language (`py`, `node`, `ts`, a kernelspec name…) to an installed kernelspec.

    Unknown names are an error naming what is available: silently running Python for
    `language: "ruby"` (as upstream does) hides the mistake.
    """
    key = requested.strip().lower()
    name = aliases.get(key, key)
    if name in kernels and kernels[name] in installed:
        return language_named(name, kernels[name])
    for language, spec in kernels.items():  # a mapped kernelspec named directly
        if spec == requested and spec in installed:
            return language_named(language, spec)
    if requested in installed:
        return language_named(requested, requested)
    if name in installed:
        return language_named(name, name)
    available = available_languages(kernels, aliases, installed)
    raise validation_error(
        "language",
        f"unsupported language '{requested}'; available: {', '.join(available)}",
    )


def available_languages(
    kernels: dict[str, str], aliases: dict[str, str], installed: set[str]
) -> list[str]:
    """Every name a client may send: mapped languages, their aliases and other kernelspecs."""
    mapped = {name for name, spec in kernels.items() if spec in installed}
    names = mapped | {alias for alias, target in aliases.items() if target in mapped}
    return sorted(names | (installed - set(kernels.values())))
