"""Files inside the allowed roots: read, stream, write atomically, list, move, delete.

Every path is resolved (symlinks followed) before use and must land inside an allowed root, the
promise Jupyter's own contents API makes. Blocking I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import errno
import mimetypes
import os
import re
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from traitlets import Bool, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from .environment import is_within
from .errors import SandboxError, validation_error

MAX_PATH = 4096
# OS errors that say what is wrong with the request, not with the server.
_CLIENT_ERRORS = {
    errno.ENAMETOOLONG: "NAME_TOO_LONG",
    errno.ENOTDIR: "NOT_DIRECTORY",
    errno.EISDIR: "IS_DIRECTORY",
}
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
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


def path_error(field: str, message: str) -> SandboxError:
    error = validation_error(field, message)
    error.context["validationErrors"][0]["code"] = "INVALID_PATH"
    return error


def not_found(path: str, operation: str, what: str = "File") -> SandboxError:
    return SandboxError(
        "FILE_NOT_FOUND", f"{what} not found: {path}", {"path": path, "operation": operation}
    )


def is_text_mime(mime: str) -> bool:
    return (
        mime.startswith("text/")
        or mime in _TEXT_APPLICATION_TYPES
        or mime.endswith(("+json", "+xml"))
    )


def sniff_mime(path: Path) -> str:
    """MIME type from the name; for unknown names, text if the first bytes are valid UTF-8."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed and guessed != "application/octet-stream":
        return guessed
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
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
    root_dir = Unicode()
    allow_hidden = Bool(False, help="Whether hidden files may be touched (the server's setting).")

    def roots(self) -> list[Path]:
        return [Path(r).resolve() for r in (self.allowed_roots or [self.root_dir])]

    def resolve(self, path: Any, base: str, field: str = "path") -> Path:
        """The real path a request names, or 400/403: never a path outside the roots."""
        if not isinstance(path, str):
            raise path_error(field, f"'{field}' must be a string")
        if not path.strip():
            raise path_error(field, f"'{field}' must not be empty")
        if "\0" in path or len(path) > MAX_PATH:
            raise path_error(field, f"'{field}' contains NUL bytes or is too long")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise path_error(field, f"'{field}' is not valid Unicode text") from None
        real = Path(os.path.realpath(Path(base, os.path.expanduser(path))))
        roots = self.roots()
        if not is_within(real, roots):
            raise SandboxError(
                "PERMISSION_DENIED",
                f"Access denied: {path} is outside the allowed roots",
                {"path": path},
            )
        if not self.allow_hidden and self._hidden(real, roots):
            raise SandboxError(
                "PERMISSION_DENIED", f"Access denied: {path} is hidden", {"path": path}
            )
        return real

    @staticmethod
    def _hidden(real: Path, roots: list[Path]) -> bool:
        root = next(r for r in roots if real == r or r in real.parents)
        return any(part.startswith(".") for part in real.relative_to(root).parts)

    async def read(self, real: Path, shown: str, encoding: str | None) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            info = self._stat_file(real, shown, "file.read")
            if info.st_size > self.max_read_bytes:
                raise SandboxError(
                    "FILE_TOO_LARGE",
                    f"File too large: {shown} is {info.st_size} bytes; the limit is "
                    f"{self.max_read_bytes} (use /api/read/stream)",
                    {"path": shown, "size": info.st_size, "limit": self.max_read_bytes},
                )
            mime = sniff_mime(real)
            data = real.read_bytes()
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

        return await self._run(work)

    async def stream(self, real: Path, shown: str) -> AsyncIterator[dict[str, Any]]:
        """metadata, then chunks read one at a time (memory stays at one chunk), then complete."""
        info = await self._run(lambda: self._stat_file(real, shown, "file.stream"))
        mime = await self._run(lambda: sniff_mime(real))
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
        with await self._run(lambda: real.open("rb")) as file:
            while chunk := await self._run(lambda: file.read(self.chunk_bytes)):
                total += len(chunk)
                data = base64.b64encode(chunk).decode("ascii") if binary else decoder.decode(chunk)
                yield {"type": "chunk", "data": data}
        if not binary and (tail := decoder.decode(b"", final=True)):
            yield {"type": "chunk", "data": tail}
        yield {"type": "complete", "bytesRead": total}

    async def write(self, real: Path, shown: str, content: str, encoding: str | None) -> None:
        if encoding == "base64":
            if not _BASE64.match(content):
                raise _invalid_base64()
            try:
                data = base64.b64decode(content, validate=False)
            except (binascii.Error, ValueError):
                raise _invalid_base64() from None
        elif encoding in (None, "utf-8", "utf8"):
            data = content.encode("utf-8", "surrogatepass")
        else:
            raise validation_error("encoding", "encoding must be 'utf-8' or 'base64'")
        await self._run(lambda: self._write_atomically(real, shown, data))

    def _write_atomically(self, real: Path, shown: str, data: bytes) -> None:
        """Write beside the target, then rename over it: readers never see half a file."""
        if real.is_dir():
            raise SandboxError("IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown})
        blocking = next((p for p in real.parents if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise SandboxError(
                "NOT_DIRECTORY", f"Not a directory: {blocking} (in {shown})", {"path": shown}
            )
        real.parent.mkdir(parents=True, exist_ok=True)
        mode = real.stat().st_mode & 0o7777 if real.exists() else NEW_FILE_MODE
        fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                self._write_bytes(file, data)
            os.chmod(temp, mode)
            os.replace(temp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    @staticmethod
    def _write_bytes(file: Any, data: bytes) -> None:
        file.write(data)
        file.flush()

    async def delete(self, real: Path, shown: str) -> None:
        def work() -> None:
            if not real.exists() and not real.is_symlink():
                raise not_found(shown, "file.delete")
            if real.is_dir():
                raise SandboxError(
                    "IS_DIRECTORY",
                    f"Cannot delete directory with deleteFile() at '{shown}'. "
                    f"Use exec('rm -rf {shown}') instead.",
                    {"path": shown},
                )
            real.unlink()

        await self._run(work)

    async def move(self, source: Path, shown: str, target: Path) -> None:
        def work() -> None:
            if not source.exists():
                raise not_found(shown, "file.move", "Source file")
            if not target.parent.is_dir():
                raise not_found(str(target.parent), "file.move", "Destination directory")
            shutil.move(source, target)

        await self._run(work)

    async def mkdir(self, real: Path, shown: str, recursive: bool) -> None:
        def work() -> None:
            if recursive:
                if real.exists() and not real.is_dir():
                    raise SandboxError(
                        "NOT_DIRECTORY",
                        f"Path exists and is not a directory: {shown}",
                        {"path": shown},
                    )
                real.mkdir(parents=True, exist_ok=True)
                return
            if real.exists():
                raise SandboxError("FILE_EXISTS", f"Path already exists: {shown}", {"path": shown})
            if not real.parent.is_dir():
                raise not_found(shown, "file.mkdir", "Parent directory of")
            real.mkdir()

        await self._run(work)

    async def list(
        self, real: Path, shown: str, recursive: bool, include_hidden: bool
    ) -> list[dict[str, Any]]:
        hidden_ok = include_hidden and self.allow_hidden

        def work() -> list[dict[str, Any]]:
            if not real.exists():
                raise not_found(shown, "file.list", "Directory")
            if not real.is_dir():
                raise SandboxError(
                    "NOT_DIRECTORY", f"Path is not a directory: {shown}", {"path": shown}
                )
            files: list[dict[str, Any]] = []
            todo = [real]
            while todo:
                directory = todo.pop(0)
                with os.scandir(directory) as entries:
                    for entry in sorted(entries, key=lambda e: e.name):
                        if entry.name.startswith(".") and not hidden_ok:
                            continue
                        info = entry.stat(follow_symlinks=False)
                        kind = entry_type(info)
                        relative = os.path.relpath(entry.path, real)
                        files.append(
                            _describe(entry.name, Path(shown, relative), relative, kind, info)
                        )
                        if recursive and kind == "directory":
                            todo.append(Path(entry.path))
            return files

        return await self._run(work)

    async def exists(self, real: Path) -> bool:
        return await self._run(lambda: real.exists() or real.is_symlink())

    def _stat_file(self, real: Path, shown: str, operation: str) -> os.stat_result:
        try:
            info = real.stat()
        except FileNotFoundError:
            raise not_found(shown, operation) from None
        if stat.S_ISDIR(info.st_mode):
            raise SandboxError("IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown})
        return info

    async def _run(self, work: Callable[[], Any]) -> Any:
        """Blocking file work off the event loop; OS errors become FILESYSTEM_ERROR."""
        try:
            return await asyncio.to_thread(work)
        except SandboxError:
            raise
        except PermissionError as exc:
            raise SandboxError("PERMISSION_DENIED", f"Permission denied: {exc.filename}") from None
        except OSError as exc:
            if exc.errno in _CLIENT_ERRORS:
                code = _CLIENT_ERRORS[exc.errno]
                raise SandboxError(
                    code, f"{exc.strerror}: {exc.filename}", {"errno": exc.errno}
                ) from None
            raise SandboxError(
                "FILESYSTEM_ERROR",
                f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "),
                {"errno": exc.errno},
            ) from None


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


def _invalid_base64() -> SandboxError:
    error = validation_error("content", "content is not valid base64")
    error.context["validationErrors"][0]["code"] = "INVALID_BASE64"
    return error
