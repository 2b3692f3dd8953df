"""Which kernelspec runs a language, and what the client's language names mean."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import validation_error


@dataclass(frozen=True)
class Language:
    """A resolved language: the name we report and the kernelspec that runs it."""

    name: str
    kernel_name: str


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
        return Language(name, kernels[name])
    for language, spec in kernels.items():  # a mapped kernelspec named directly
        if spec == requested and spec in installed:
            return Language(language, spec)
    if requested in installed:
        return Language(requested, requested)
    if name in installed:
        return Language(name, name)
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
