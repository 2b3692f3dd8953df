"""Resolving a path inside the allowed roots with no window between the check and the use.

Resolving with `realpath` and then opening by name lets anyone who can rename inside a root swap
a checked directory for a symlink pointing outside in between. Here a path is walked one
component at a time from an open descriptor of its root (`openat` with `O_NOFOLLOW`): each step
opens a name inside a directory already held, symlinks are read and followed by this walk itself,
and `..` never climbs above the root. What the walk hands back is an open parent directory and a
name in it, and the operation itself acts on that pair (`dir_fd=`), so a swap after the walk can
at worst make the operation fail, never reach outside.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from dataclasses import dataclass

from jupyter_interp_ext.protocol.errors import ProtocolError

MAX_SYMLINKS = 40  # as Linux allows in one path
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Location:
    """Where a path lands: an open directory inside a root, and a name in it.

    `name` is empty when the path is a root itself (then `dir_fd` is the root). `parts` are the
    real components below the root, the name included; `exists` says whether the walk found
    something under `name` (a symlink counts when it was not followed).
    """

    dir_fd: int
    name: str
    parts: tuple[str, ...]
    exists: bool

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.dir_fd)

    def __enter__(self) -> Location:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def outside(shown: str) -> ProtocolError:
    return ProtocolError(
        "PERMISSION_DENIED",
        f"Access denied: {shown} is outside the allowed roots",
        {"path": shown},
    )


class Confinement:
    """Walks paths from open descriptors of the allowed roots."""

    def __init__(self, roots: list[str], allow_hidden: bool) -> None:
        # Each root as configured and as resolved: either spelling is accepted in a path.
        self.roots: list[tuple[tuple[str, ...], str]] = []
        for root in roots:
            resolved = os.path.realpath(root)
            for spelling in {os.path.abspath(root), resolved}:
                self.roots.append((_components(spelling), resolved))
        self.roots.sort(key=lambda item: len(item[0]), reverse=True)  # the deepest root wins
        self.allow_hidden = allow_hidden

    def locate(
        self,
        path: str,
        shown: str,
        *,
        follow_last: bool = True,
        make_parents: bool = False,
        hidden: bool | None = None,
    ) -> Location:
        """Walk an absolute path. Symlinks on the way are followed (within the roots); the last
        one too unless `follow_last` is false. Missing directories on the way are created when
        `make_parents`, else FILE_NOT_FOUND. Hidden names are refused unless the server allows
        them (or `hidden`, for the server's own look at `.git`). The caller closes the
        location."""
        allow_hidden = self.allow_hidden if hidden is None else hidden
        root, rest = self._anchor(_components(path), shown)
        stack: list[int] = [os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
        names: list[str] = []
        todo: deque[str] = deque(rest)
        links = 0
        try:
            while todo:
                name = todo.popleft()
                if name == "..":
                    if not names:
                        raise outside(shown)
                    os.close(stack.pop())
                    names.pop()
                    continue
                last = not todo
                if not allow_hidden and name.startswith("."):
                    raise ProtocolError(
                        "PERMISSION_DENIED", f"Access denied: {shown} is hidden", {"path": shown}
                    )
                try:
                    fd = os.open(name, _PATH, dir_fd=stack[-1])
                except FileNotFoundError:
                    if last:
                        return self._found(stack, names, name, exists=False)
                    if not make_parents:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, dir_fd=stack[-1])
                    fd = os.open(name, _PATH, dir_fd=stack[-1])
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode):
                    try:  # the link held open, not the name: it may be swapped meanwhile
                        target = os.readlink("", dir_fd=fd)
                    finally:
                        os.close(fd)
                    if last and not follow_last:
                        return self._found(stack, names, name, exists=True)
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    if os.path.isabs(target):
                        new_root, rest = self._anchor(_components(target), shown)
                        for held in stack:
                            os.close(held)
                        stack = [os.open(new_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
                        names = []
                        todo.extendleft(reversed(rest))
                    else:
                        todo.extendleft(reversed(_components(target)))
                    continue
                if last:
                    os.close(fd)
                    return self._found(stack, names, name, exists=True)
                if not stat.S_ISDIR(mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                stack.append(fd)
                names.append(name)
            # The path names a directory that is already held (a root, or one ending in `..`).
            if len(stack) == 1:
                return self._found(stack, names, "", exists=True)
            os.close(stack.pop())
            name = names.pop()
            return self._found(stack, names, name, exists=True)
        except BaseException:
            for held in stack:
                with contextlib.suppress(OSError):
                    os.close(held)
            raise

    def open_directory(self, path: str, shown: str, *, hidden: bool | None = None) -> int:
        """A descriptor of the directory a path names, for work on a whole tree (`trees`);
        the caller closes it."""
        with self.locate(path, shown, hidden=hidden) as location:
            return open_in(location, os.O_RDONLY | os.O_DIRECTORY)

    @staticmethod
    def _found(stack: list[int], names: list[str], name: str, *, exists: bool) -> Location:
        """Keep the innermost directory open for the caller; close the rest."""
        for held in stack[:-1]:
            os.close(held)
        parts = (*names, name) if name else tuple(names)
        return Location(stack[-1], name, parts, exists)

    def _anchor(self, parts: tuple[str, ...], shown: str) -> tuple[str, tuple[str, ...]]:
        """The root a path starts in, and the components below it."""
        for root_parts, resolved in self.roots:
            if parts[: len(root_parts)] == root_parts:
                return resolved, parts[len(root_parts) :]
        raise outside(shown)


def _components(path: str) -> tuple[str, ...]:
    """An absolute path's names, without empty and `.` components (`..` is kept for the walk)."""
    return tuple(part for part in path.split("/") if part not in ("", "."))


def open_in(location: Location, flags: int) -> int:
    """Open the location's name itself (never through a symlink): a root opens as itself."""
    if not location.name:
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=location.dir_fd)
    return os.open(location.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=location.dir_fd)


def lstat_in(location: Location) -> os.stat_result:
    if not location.name:
        return os.stat(location.dir_fd)
    return os.stat(location.name, dir_fd=location.dir_fd, follow_symlinks=False)
