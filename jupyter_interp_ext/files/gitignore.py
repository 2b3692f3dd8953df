"""What a git repository ignores, read from its `.gitignore` files as data.

Archives made with `gitignore: true` used to ask `git ls-files`; but git obeys the
configuration of the repository it runs in (`core.fsmonitor` starts any program), and that
repository is a directory whoever may write files laid out. Here the rules are matched in
Python with pathspec's `GitIgnoreSpec` (git's wildmatch rules, as black and pip-tools use
them): `.gitignore` files are read, nothing is started.
"""

from __future__ import annotations

import os

from pathspec import GitIgnoreSpec

from .confinement import Confinement
from .trees import read_text

MAX_RULES_BYTES = 1024 * 1024  # a larger .gitignore is read this far


class IgnoreRules:
    """The `.gitignore` rules of one repository, as they apply below one directory in it.

    `top` is that directory's names below the repository's root; rules are added per directory
    (its names below the root too) as a walk meets them. As in git, the nearest `.gitignore`
    with a matching pattern decides, the last matching pattern within it wins, and `!` re-admits.
    """

    def __init__(self, top: tuple[str, ...]) -> None:
        self.top = top
        self._specs: dict[tuple[str, ...], GitIgnoreSpec] = {}

    def add(self, base: tuple[str, ...], text: str) -> None:
        self._specs[base] = GitIgnoreSpec.from_lines(text.splitlines())

    def read_from(self, dir_fd: int, parts: tuple[str, ...]) -> None:
        """Take the `.gitignore` of the directory `dir_fd`, `parts` below the walk's top."""
        text = read_text(dir_fd, ".gitignore", MAX_RULES_BYTES)
        if text:
            self.add(self.top + parts, text)

    def ignored(self, parts: tuple[str, ...], is_dir: bool) -> bool:
        """Whether the entry `parts` below the top is ignored."""
        path = self.top + parts
        if path[-1] == ".git":
            return True  # git never lists its own folder
        for depth in range(len(path) - 1, -1, -1):
            spec = self._specs.get(path[:depth])
            if spec is None:
                continue
            relative = "/".join(path[depth:]) + ("/" if is_dir else "")
            decided = spec.check_file(relative).include
            if decided is not None:
                return decided
        return False


def rules_for(confinement: Confinement, directory: str, shown: str) -> IgnoreRules | None:
    """The rules that apply under `directory` (a real path inside the roots), from the nearest
    repository at or above it within the roots; None when it lies in no repository."""
    with confinement.locate(directory, shown) as location:
        depth = len(location.parts)
    ancestors = [directory]
    for _ in range(depth):
        ancestors.append(os.path.dirname(ancestors[-1]))
    held: list[int] = []
    try:
        for path in ancestors:
            with confinement.locate(path, shown) as location:
                held.append(os.open(location.name or ".", _DIR, dir_fd=location.dir_fd))
        root_level = next((i for i, fd in enumerate(held) if _has_git(fd)), None)
        if root_level is None:
            return None
        names = directory.rstrip("/").split("/")
        rules = IgnoreRules(tuple(names[len(names) - root_level :]) if root_level else ())
        for level in range(root_level, 0, -1):  # the repository's root, down to the top's parent
            text = read_text(held[level], ".gitignore", MAX_RULES_BYTES)
            if text:
                rules.add(rules.top[: root_level - level], text)
        return rules
    finally:
        for fd in held:
            os.close(fd)


_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def _has_git(dir_fd: int) -> bool:
    try:
        os.stat(".git", dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True
