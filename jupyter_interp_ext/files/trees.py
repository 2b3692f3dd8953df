"""Whole directory trees on held descriptors: walk, copy, remove, and where their links lead.

Work that goes by path name resolves every name again at every step, so whoever can rename
inside a root meanwhile can slip a symlink in and send the work outside. Everything here acts
on directory descriptors opened with `O_NOFOLLOW` from one already held (`confined` walks to
the first one): a swap can make a step fail or skip an entry, never reach another directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
COPY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One entry met by `walk`: its names below the walk's top, its directory (held open while
    the entry is current) and its own lstat."""

    parts: tuple[str, ...]
    parent_fd: int
    info: os.stat_result

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def relative(self) -> str:
        return "/".join(self.parts)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.info.st_mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.info.st_mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.info.st_mode)


def walk(
    top_fd: int, keep: Callable[[Entry], bool] | None = None, depth: int | None = None
) -> Iterator[Entry]:
    """Every entry under the directory `top_fd` (which stays open), parents before their
    children, names sorted, `depth` levels down at most. An entry `keep` refuses is neither
    yielded nor entered; a directory swapped for something else after its lstat is not
    entered. No recursion: depth is bound only by open descriptors."""
    stack: list[tuple[int, tuple[str, ...], Iterator[str]]] = []
    try:
        first = os.dup(top_fd)
        stack.append((first, (), iter(_names(first))))
        while stack:
            fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing
            entry = Entry((*prefix, name), fd, info)
            if keep is not None and not keep(entry):
                continue
            yield entry
            if not entry.is_dir or (depth is not None and len(entry.parts) >= depth):
                continue
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue  # swapped for a file or a link meanwhile: not followed
                raise
            stack.append((child, entry.parts, iter(_names(child))))
    finally:
        for fd, _, _ in stack:
            with contextlib.suppress(OSError):
                os.close(fd)


def _names(fd: int) -> list[str]:
    with os.scandir(fd) as scan:
        return sorted(entry.name for entry in scan)


def remove(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd` and, if it is a directory, everything in it; links are
    removed, never followed."""
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        directories: list[tuple[int, str]] = []  # (parent, name), parents first
        try:
            for entry in walk(top):
                if entry.is_dir:
                    directories.append((os.dup(entry.parent_fd), entry.name))
                else:
                    os.unlink(entry.name, dir_fd=entry.parent_fd)
            for parent, child in reversed(directories):
                os.rmdir(child, dir_fd=parent)
        finally:
            for parent, _ in directories:
                os.close(parent)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)


def move(src_fd: int, name: str, dst_fd: int, dst_name: str) -> None:
    """Move an entry between two held directories as `rename` does (onto nothing, or onto an
    empty directory): a rename when both lie on one filesystem, else a copy into a temporary
    name that is then renamed into place."""
    try:
        os.rename(name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temporary = f".{dst_name[:200]}.{os.urandom(4).hex()}.sandbox-copy"
    try:
        copy(src_fd, name, dst_fd, temporary)
        os.rename(temporary, dst_name, src_dir_fd=dst_fd, dst_dir_fd=dst_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            remove(dst_fd, temporary)
        raise
    remove(src_fd, name)


def exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def read_text(dir_fd: int, name: str, limit: int) -> str:
    """The first `limit` bytes of a small file as text ('' when it is missing, not a regular
    file, or unreadable); never through a symlink."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def copy(src_fd: int, name: str, dst_fd: int, dst_name: str) -> None:
    """Copy an entry (a file, a link as a link, or a whole directory) with its modes and
    modification times."""
    info = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
    _copy_one(src_fd, name, info, dst_fd, dst_name)
    if not stat.S_ISDIR(info.st_mode):
        return
    src_top = os.open(name, DIR_FLAGS, dir_fd=src_fd)
    # The copy's open directories, by their parts below the top.
    targets: list[tuple[tuple[str, ...], int]] = [((), os.open(dst_name, DIR_FLAGS, dir_fd=dst_fd))]
    try:
        for entry in walk(src_top):
            while targets[-1][0] != entry.parts[:-1]:
                os.close(targets.pop()[1])
            _copy_one(entry.parent_fd, entry.name, entry.info, targets[-1][1], entry.name)
            if entry.is_dir:
                targets.append((entry.parts, os.open(entry.name, DIR_FLAGS, dir_fd=targets[-1][1])))
    finally:
        os.close(src_top)
        for _, fd in targets:
            os.close(fd)


def _copy_one(src_fd: int, name: str, info: os.stat_result, dst_fd: int, dst_name: str) -> None:
    mode = stat.S_IMODE(info.st_mode)
    times = (info.st_atime_ns, info.st_mtime_ns)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_fd), dst_name, dir_fd=dst_fd)
    elif stat.S_ISDIR(info.st_mode):
        os.mkdir(dst_name, mode | stat.S_IRWXU, dir_fd=dst_fd)
    elif stat.S_ISREG(info.st_mode):
        source = os.open(name, FILE_FLAGS, dir_fd=src_fd)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            target = os.open(dst_name, flags, 0o600, dir_fd=dst_fd)
            try:
                while chunk := os.read(source, COPY_BYTES):
                    os.write(target, chunk)
                os.fchmod(target, mode)
                os.utime(target, ns=times)
            finally:
                os.close(target)
        finally:
            os.close(source)
    # sockets, FIFOs and devices are not copied


def climbs_above(target: str, depth: int) -> bool:
    """Whether a link's text, read from a directory `depth` levels below some top, can lead
    above that top: an absolute target does; a relative one when its `..` climb further than
    it went down. (Links it passes through obey the same rule where they were made.)"""
    if posixpath.isabs(target):
        return True
    level = 0
    for part in target.split("/"):
        if part == "..":
            level -= 1
            if level < -depth:
                return True
        elif part not in ("", "."):
            level += 1
    return False


def links(top_fd: int) -> Iterator[tuple[Entry, str]]:
    """Every symlink under `top_fd`, with its text."""
    for entry in walk(top_fd):
        if entry.is_link:
            yield entry, os.readlink(entry.name, dir_fd=entry.parent_fd)
