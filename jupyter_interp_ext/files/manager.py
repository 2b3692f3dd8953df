"""Files inside the allowed roots: read, stream, write atomically, list, move, delete.

Every path is walked from an open descriptor of its root and acted on relative to an open
directory (see `confined`), so it stays inside an allowed root even while others rename things
under it: the promise Jupyter's own contents API makes. Only regular files are read. Blocking
I/O runs on a pool of its own, so slow storage cannot starve the server's other work.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import errno
import fnmatch
import mimetypes
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.events import READ_COMPLETE
from jupyter_interp_ext.protocol.validation import MAX_PATH_CHARS, decode_base64, is_blank

from . import trees
from .confinement import Confinement, lstat_in, open_in

# The temporary file a write fills before renaming it over the target ends so: watchers skip it.
WRITE_SUFFIX = ".sandbox-write"


def is_write_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(WRITE_SUFFIX)


def matches_glob(relative: str, patterns: Iterable[str]) -> bool:
    """Whether a path relative to a chosen directory matches a glob, by the whole relative path
    or by its name (`*.log` matches `a/b.log`), as watch filters and archive excludes read it."""
    name = os.path.basename(relative)
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


# OS errors as protocol codes (the rest are FILESYSTEM_ERROR).
_ERROR_CODES = {
    errno.ENOENT: "FILE_NOT_FOUND",
    errno.EACCES: "PERMISSION_DENIED",
    errno.EPERM: "PERMISSION_DENIED",
    errno.ENAMETOOLONG: "NAME_TOO_LONG",
    errno.ENOTDIR: "NOT_DIRECTORY",
    errno.EISDIR: "IS_DIRECTORY",
    errno.EEXIST: "FILE_EXISTS",
    errno.ENOTEMPTY: "FILE_EXISTS",
    errno.ELOOP: "TOO_MANY_LINKS",
    errno.ENOSPC: "NO_SPACE",
    errno.EDQUOT: "NO_SPACE",
    errno.EMFILE: "TOO_MANY_FILES",
    errno.ENFILE: "TOO_MANY_FILES",
    errno.EINVAL: "VALIDATION_FAILED",
}
_TEXT_APPLICATION_TYPES = {
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/sql",
    "application/x-sh",
    "application/typescript",
    "application/x-empty",
    "application/x-python-code",
    "application/x-ipynb+json",
    "application/ld+json",
    "application/x-httpd-php",
}
SNIFF_BYTES = 8192


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NEW_FILE_MODE = 0o666 & ~_current_umask()


def path_error(field: str, message: str) -> ProtocolError:
    error = validation_error(field, message)
    error.context["validationErrors"][0]["code"] = "INVALID_PATH"
    return error


def not_found(path: str, operation: str, what: str = "File") -> ProtocolError:
    return ProtocolError(
        "FILE_NOT_FOUND", f"{what} not found: {path}", {"path": path, "operation": operation}
    )


def is_text_mime(mime: str) -> bool:
    return (
        mime.startswith("text/")
        or mime in _TEXT_APPLICATION_TYPES
        or mime.endswith(("+json", "+xml"))
    )


def sniff_mime(name: str, fd: int) -> str:
    """MIME type from the name; for unknown names, text if the first bytes are valid UTF-8."""
    guessed, _ = mimetypes.guess_type(name)
    if guessed and guessed != "application/octet-stream":
        return guessed
    head = os.pread(fd, SNIFF_BYTES, 0)
    if not head:
        return "text/plain"
    if b"\0" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniff boundary
            return "application/octet-stream"
    return "text/plain"


def mode_string(mode: int) -> str:
    return "".join(
        flag if mode & bit else "-"
        for flag, bit in zip(
            "rwxrwxrwx",
            (
                stat.S_IRUSR,
                stat.S_IWUSR,
                stat.S_IXUSR,
                stat.S_IRGRP,
                stat.S_IWGRP,
                stat.S_IXGRP,
                stat.S_IROTH,
                stat.S_IWOTH,
                stat.S_IXOTH,
            ),
            strict=True,
        )
    )


def entry_type(info: os.stat_result) -> str:
    if stat.S_ISLNK(info.st_mode):
        return "symlink"
    if stat.S_ISDIR(info.st_mode):
        return "directory"
    return "file" if stat.S_ISREG(info.st_mode) else "other"


class FileManager(LoggingConfigurable):
    """File operations confined to the allowed roots."""

    allowed_roots = List(
        Unicode(),
        help="Directories files may be read or written in (default: the server's root_dir).",
    ).tag(config=True)
    max_read_bytes = Int(
        32 * 1024 * 1024, help="Largest file /api/read returns whole (use /api/read/stream)."
    ).tag(config=True)
    chunk_bytes = Int(65535, help="Raw bytes per /api/read/stream chunk.").tag(config=True)
    max_list_entries = Int(
        10_000,
        help="Entries one /api/list-files answer holds at most; a longer listing is cut and "
        "says `truncated`.",
    ).tag(config=True)
    io_threads = Int(
        8, help="Threads for blocking file work (a pool of their own, apart from the server's)."
    ).tag(config=True)
    io_timeout = Float(
        30.0, help="Seconds one blocking file step may take before the request is answered 500."
    ).tag(config=True)
    staging_dir = Unicode(
        "",
        help="A private folder where restores are unpacked and clones made before they are "
        "moved into the roots (default: the system's temporary folder). On the roots' "
        "filesystem the move is a rename; elsewhere a copy.",
    ).tag(config=True)
    root_dir = Unicode()
    allow_hidden = Bool(False, help="Whether hidden files may be touched (the server's setting).")
    kernels_share_disk = Bool(
        False,
        help="With a Kernel or Enterprise Gateway, whether its kernels see this server's files "
        "(a volume both mount at the same paths). Only then do the file routes answer: "
        "otherwise they refuse with 409 FILES_NOT_SHARED, since a file written here would not "
        "be where the kernels look. Without a Gateway, kernels run here and this is moot.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = ThreadPoolExecutor(self.io_threads, thread_name_prefix="sandbox-files")
        self._confinement: Confinement | None = None

    @property
    def confinement(self) -> Confinement:
        if self._confinement is None:
            self._confinement = Confinement(
                self.allowed_roots or [self.root_dir], self.allow_hidden
            )
        return self._confinement

    def check(self, path: Any, base: str, field: str = "path") -> str:
        """The absolute path a request names (not yet resolved), or 400."""
        if not isinstance(path, str):
            raise path_error(field, f"'{field}' must be a string")
        if is_blank(path):
            raise path_error(field, f"'{field}' must not be empty")
        if "\0" in path or len(path) > MAX_PATH_CHARS:
            raise path_error(field, f"'{field}' contains NUL bytes or is too long")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise path_error(field, f"'{field}' is not valid Unicode text") from None
        return os.path.join(base, os.path.expanduser(path))

    def open_file(self, path: str, shown: str) -> tuple[int, os.stat_result, str]:
        """A regular file opened for reading: never a FIFO, socket or device (those could
        block or never end), and never through a symlink swapped in after the walk."""
        with self.confinement.locate(path, shown) as location:
            if not location.exists:
                raise not_found(shown, "file.read")
            info = lstat_in(location)
            if stat.S_ISDIR(info.st_mode):
                raise ProtocolError(
                    "IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown}
                )
            if not stat.S_ISREG(info.st_mode):
                raise not_a_file(shown)
            fd = open_in(location, os.O_RDONLY | os.O_NONBLOCK)
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                os.close(fd)
                raise ProtocolError(
                    "FILESYSTEM_ERROR", f"{shown} changed while it was opened", {"path": shown}
                )
            return fd, opened, location.name or os.path.basename(path)

    async def read(self, path: str, shown: str, encoding: str | None) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            fd, info, name = self.open_file(path, shown)
            with os.fdopen(fd, "rb") as file:
                mime = sniff_mime(name, fd)
                data = file.read(self.max_read_bytes + 1)  # the limit holds for what is read
            if len(data) > self.max_read_bytes:
                raise ProtocolError(
                    "FILE_TOO_LARGE",
                    f"File too large: {shown} is over the {self.max_read_bytes}-byte limit "
                    "(use /api/read/stream)",
                    {
                        "path": shown,
                        "size": max(info.st_size, len(data)),
                        "limit": self.max_read_bytes,
                    },
                )
            as_base64 = encoding == "base64" or (
                encoding not in ("utf-8", "utf8") and not is_text_mime(mime)
            )
            content = (
                base64.b64encode(data).decode("ascii")
                if as_base64
                else data.decode("utf-8", "replace")
            )
            return {
                "path": shown,
                "content": content,
                "encoding": "base64" if as_base64 else "utf-8",
                "isBinary": as_base64,
                "mimeType": mime,
                "size": len(data),
            }

        return await self.run_io(work, shown)

    async def confine(self, path: str, shown: str) -> None:
        """403 now if the path leads outside the roots (other problems are left for the
        operation itself, which walks again: this is no check-then-use)."""

        def work() -> None:
            with contextlib.suppress(OSError), self.confinement.locate(path, shown):
                pass

        await self.run_io(work, shown)

    async def new_entry(self, path: str, shown: str) -> str:
        """The path of an entry that may not exist yet, inside the roots: its parent must
        exist (and is resolved), the entry itself is not followed."""
        parent = await self.real_directory(os.path.dirname(path), os.path.dirname(shown) or ".")
        target = os.path.join(parent, os.path.basename(path))
        await self.confine(target, shown)
        return target

    async def real_directory(self, path: str, shown: str) -> str:
        """The real path of an existing directory inside the roots, for work that goes by
        path (watchers, archives, git): the walk decides where it is, symlinks resolved."""

        def work() -> str:
            with self.confinement.locate(path, shown) as location:
                if not location.exists and location.name:
                    raise not_found(shown, "directory", "Directory")
                flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
                fd = os.open(location.name or ".", flags, dir_fd=location.dir_fd)
                try:
                    return os.readlink(f"/proc/self/fd/{fd}")
                finally:
                    os.close(fd)

        return await self.run_io(work, shown)

    async def stream(self, path: str, shown: str) -> AsyncIterator[dict[str, Any]]:
        """metadata, then chunks read one at a time (memory stays at one chunk), then complete."""

        def opening() -> tuple[Any, os.stat_result, str]:
            fd, info, name = self.open_file(path, shown)
            return os.fdopen(fd, "rb"), info, sniff_mime(name, fd)

        file, info, mime = await self.run_io(opening, shown)
        with file:
            binary = not is_text_mime(mime)
            yield {
                "type": "metadata",
                "mimeType": mime,
                "size": info.st_size,
                "isBinary": binary,
                "encoding": "base64" if binary else "utf-8",
            }
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            total = 0
            while chunk := await self.run_io(lambda: file.read(self.chunk_bytes), shown):
                total += len(chunk)
                data = base64.b64encode(chunk).decode("ascii") if binary else decoder.decode(chunk)
                yield {"type": "chunk", "data": data}
        if not binary and (tail := decoder.decode(b"", final=True)):
            yield {"type": "chunk", "data": tail}
        yield {"type": READ_COMPLETE, "bytesRead": total}

    async def write(self, path: str, shown: str, content: str, encoding: str | None) -> None:
        if encoding == "base64":
            data = decode_base64(content, "content")
        elif encoding in (None, "utf-8", "utf8"):
            data = content.encode("utf-8", "surrogatepass")
        else:
            raise validation_error("encoding", "encoding must be 'utf-8' or 'base64'")
        await self.run_io(lambda: self._write_atomically(path, shown, data), shown)

    def _write_atomically(self, path: str, shown: str, data: bytes) -> None:
        """Write beside the target, then rename over it: readers never see half a file."""
        with self.confinement.locate(path, shown, make_parents=True) as location:
            if not location.name:
                raise ProtocolError(
                    "IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown}
                )
            mode = NEW_FILE_MODE
            if location.exists:
                info = lstat_in(location)
                if stat.S_ISDIR(info.st_mode):
                    raise ProtocolError(
                        "IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown}
                    )
                mode = info.st_mode & 0o7777
            temp = f".{location.name[:200]}.{secrets.token_hex(4)}{WRITE_SUFFIX}"
            parent = location.dir_fd
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o600, dir_fd=parent)
            try:
                with os.fdopen(fd, "wb") as file:
                    self._write_bytes(file, data)
                    os.fchmod(file.fileno(), mode)
                os.rename(temp, location.name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=parent)
                raise

    @staticmethod
    def _write_bytes(file: Any, data: bytes) -> None:
        file.write(data)
        file.flush()

    async def delete(self, path: str, shown: str) -> None:
        """Delete a file or a symlink itself (never what a symlink points to)."""

        def work() -> None:
            with self.confinement.locate(path, shown, follow_last=False) as location:
                if not location.exists:
                    raise not_found(shown, "file.delete")
                if not location.name or stat.S_ISDIR(lstat_in(location).st_mode):
                    raise ProtocolError(
                        "IS_DIRECTORY",
                        f"Cannot delete directory with deleteFile() at '{shown}'. "
                        f"Use exec('rm -rf {shown}') instead.",
                        {"path": shown},
                    )
                os.unlink(location.name, dir_fd=location.dir_fd)

        await self.run_io(work, shown)

    async def move(self, source: str, shown: str, target: str, target_shown: str) -> str:
        """Move like `mv`: onto a name, or into a directory that exists there. The entry itself
        moves (a symlink stays a symlink). Returns where it went, as the client would write it."""

        def work() -> str:
            with (
                self.confinement.locate(source, shown, follow_last=False) as src,
                self.confinement.locate(target, target_shown, follow_last=False) as dst,
            ):
                if not src.exists:
                    raise not_found(shown, "file.move", "Source file")
                if not src.name or not dst.name:
                    raise ProtocolError(
                        "PERMISSION_DENIED",
                        "A root directory cannot be moved or replaced",
                        {"path": shown, "newPath": target_shown},
                    )
                dst_fd, dst_name, where = dst.dir_fd, dst.name, target_shown
                depth = len(dst.parts) - 1  # of the folder the entry lands in, below its root
                inner = None
                if dst.exists and stat.S_ISDIR(lstat_in(dst).st_mode):
                    inner = open_in(dst, os.O_PATH | os.O_DIRECTORY)
                    dst_fd, dst_name = inner, src.name
                    where = f"{target_shown.rstrip('/')}/{src.name}"
                    depth += 1
                try:
                    self._check_links_from(src.dir_fd, src.name, depth, shown, where)
                    os.rename(src.name, dst_name, src_dir_fd=src.dir_fd, dst_dir_fd=dst_fd)
                finally:
                    if inner is not None:
                        os.close(inner)
                return where

        return await self.run_io(work, shown)

    def _check_links_from(self, dir_fd: int, name: str, depth: int, shown: str, where: str) -> None:
        """403 if the entry, or a relative link inside it, would point above its root once it
        lies in a folder `depth` levels below that root (its `..` count from there)."""
        found: list[tuple[str, str, int]] = []  # (the link, its text, its folder's depth)
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            found.append((name, os.readlink(name, dir_fd=dir_fd), depth))
        elif stat.S_ISDIR(mode):
            fd = os.open(name, trees.DIR_FLAGS, dir_fd=dir_fd)
            try:
                for entry, text in trees.links(fd):
                    found.append((f"{name}/{entry.relative}", text, depth + len(entry.parts)))
            finally:
                os.close(fd)
        for link, text, level in found:
            # An absolute link points where it did wherever it lies: only `..` change.
            if not os.path.isabs(text) and trees.climbs_above(text, level):
                raise ProtocolError(
                    "PERMISSION_DENIED",
                    f"Moving {shown} to {where} would make the link {link} -> {text} point "
                    "outside the allowed roots",
                    {"path": shown, "newPath": where},
                )

    async def mkdir(self, path: str, shown: str, recursive: bool) -> bool:
        """Create a directory (and, `recursive`, its parents): whether it was created (False:
        it was there already, which only `recursive` allows)."""

        def work() -> bool:
            try:
                location = self.confinement.locate(path, shown, make_parents=recursive)
            except FileNotFoundError:
                raise not_found(shown, "file.mkdir", "Parent directory of") from None
            with location:
                if location.exists:
                    if not recursive:
                        raise ProtocolError(
                            "FILE_EXISTS", f"Path already exists: {shown}", {"path": shown}
                        )
                    if not stat.S_ISDIR(lstat_in(location).st_mode):
                        raise ProtocolError(
                            "NOT_DIRECTORY",
                            f"Path exists and is not a directory: {shown}",
                            {"path": shown},
                        )
                    return False
                os.mkdir(location.name, dir_fd=location.dir_fd)
                return True

        return await self.run_io(work, shown)

    async def list(
        self, path: str, shown: str, recursive: bool, include_hidden: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """The directory's entries (all below it when `recursive`), at most `max_list_entries`;
        whether some were left out."""
        hidden_ok = include_hidden and self.allow_hidden

        def listed(entry: trees.Entry) -> bool:
            return hidden_ok or not entry.name.startswith(".")

        def work() -> tuple[list[dict[str, Any]], bool]:
            with self.confinement.locate(path, shown) as location:
                if not location.exists:
                    raise not_found(shown, "file.list", "Directory")
                if not stat.S_ISDIR(lstat_in(location).st_mode):
                    raise ProtocolError(
                        "NOT_DIRECTORY", f"Path is not a directory: {shown}", {"path": shown}
                    )
                top = open_in(location, os.O_RDONLY | os.O_DIRECTORY)
            files: list[dict[str, Any]] = []
            try:
                for entry in trees.walk(top, listed, None if recursive else 1):
                    if len(files) == self.max_list_entries:
                        return files, True
                    relative = entry.relative
                    files.append(
                        _describe(
                            entry.name,
                            Path(shown, relative),
                            relative,
                            entry_type(entry.info),
                            entry.info,
                        )
                    )
            finally:
                os.close(top)
            return files, False

        return await self.run_io(work, shown)

    async def exists(self, path: str, shown: str) -> bool:
        def work() -> bool:
            try:
                with self.confinement.locate(path, shown) as location:
                    return location.exists
            except (FileNotFoundError, NotADirectoryError):
                return False

        return await self.run_io(work, shown)

    async def run_io(self, work: Callable[[], Any], shown: str) -> Any:
        """Blocking file work on the file pool; OS errors become protocol errors that name the
        path as the client wrote it (never a server path)."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, work), self.io_timeout or None
            )
        except ProtocolError:
            raise
        except asyncio.TimeoutError:
            raise ProtocolError(
                "FILESYSTEM_ERROR",
                f"File operation on {shown} did not finish within {self.io_timeout:g} s",
                {"path": shown},
            ) from None
        except OSError as exc:
            raise self.protocol_error(exc, shown) from None

    @staticmethod
    def protocol_error(exc: OSError, shown: str) -> ProtocolError:
        """An OS error as the protocol's error, naming the path as the client wrote it."""
        code = _ERROR_CODES.get(exc.errno or 0, "FILESYSTEM_ERROR")
        reason = "File not found" if code == "FILE_NOT_FOUND" else exc.strerror or str(exc)
        return ProtocolError(code, f"{reason}: {shown}", {"path": shown, "errno": exc.errno})

    def make_staging(self) -> str:
        """A fresh private folder outside the roots (only the server's user may enter it)."""
        return tempfile.mkdtemp(prefix="sandbox-staging-", dir=self.staging_dir or None)

    @staticmethod
    def remove_staging(path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def staging(self) -> Iterator[tuple[str, int]]:
        """A staging folder (its path and an open descriptor), removed with everything in it
        afterwards."""
        path = self.make_staging()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield path, fd
            finally:
                os.close(fd)
        finally:
            self.remove_staging(path)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def not_a_file(shown: str) -> ProtocolError:
    return ProtocolError(
        "VALIDATION_FAILED",
        f"Not a regular file: {shown} (FIFOs, sockets and devices cannot be read)",
        {"path": shown},
    )


def _describe(name: str, absolute: Path, relative: str, kind: str, info: os.stat_result) -> dict:
    mode = info.st_mode
    return {
        "name": name,
        "absolutePath": str(absolute),
        "relativePath": relative,
        "type": kind,
        "size": info.st_size,
        "modifiedAt": datetime.fromtimestamp(info.st_mtime, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "mode": mode_string(mode),
        "permissions": {
            "readable": bool(mode & stat.S_IRUSR),
            "writable": bool(mode & stat.S_IWUSR),
            "executable": bool(mode & stat.S_IXUSR),
        },
    }
