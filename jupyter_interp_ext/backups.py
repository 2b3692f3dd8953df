"""Directory archives: create (tar, compressed with gzip, zstd or lz4), restore safely, and
upload an archive's parts to pre-signed URLs.

Restores extract with tarfile's `data` filter (no absolute paths, no `..`, no links leading
out, no devices, no set-uid bits) into a fresh directory beside the target, which replaces the
target's entries only when the whole archive was read: a refused archive changes nothing.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import lz4.frame
import zstandard
from traitlets import Int, List, Unicode
from traitlets.config import LoggingConfigurable

from . import metrics
from .errors import SandboxError, validation_error
from .files import matches_glob
from .validation import is_whole

# Compression name → (opens a compressing writer on a file, the format's magic bytes).
COMPRESSIONS: dict[str, tuple[Callable[[IO[bytes]], IO[bytes]], bytes]] = {
    "gzip": (lambda f: gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6), b"\x1f\x8b"),
    "zstd": (lambda f: zstandard.ZstdCompressor().stream_writer(f), b"\x28\xb5\x2f\xfd"),
    "lz4": (lambda f: lz4.frame.LZ4FrameFile(f, mode="wb"), b"\x04\x22\x4d\x18"),
}
_READERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "zstd": lambda f: zstandard.ZstdDecompressor().stream_reader(f),
    "lz4": lambda f: lz4.frame.LZ4FrameFile(f, mode="rb"),
}


def compression_of(body: dict[str, Any]) -> str:
    """The requested compression (`{"format": …}` as the official client sends it, or a
    plain name); gzip by default."""
    value = body.get("compression")
    name = value.get("format") if isinstance(value, dict) else value
    name = name or "gzip"
    if not isinstance(name, str) or name not in COMPRESSIONS:
        raise validation_error(
            "compression", f"compression must be one of {', '.join(COMPRESSIONS)}"
        )
    return name


class BackupManager(LoggingConfigurable):
    """Creates and restores archives, and uploads them where the configuration allows."""

    upload_origins = List(
        Unicode(),
        help="Origins (scheme://host[:port]) that /api/backup/upload-parts may PUT to. Empty "
        "(the default): every upload is refused, so the route cannot reach internal addresses.",
    ).tag(config=True)

    upload_timeout = Int(300, help="Seconds one part's upload may take.").tag(config=True)

    def create(self, source: str, archive: str, compression: str, members: Iterable[str]) -> int:
        """Write `members` (paths relative to `source`) to `archive` atomically; its size."""
        folder = os.path.dirname(archive)
        handle, temporary = tempfile.mkstemp(prefix=".archive-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as raw:
                compressed = COMPRESSIONS[compression][0](raw)
                with compressed, tarfile.open(fileobj=compressed, mode="w|") as tar:
                    for relative in members:
                        tar.add(os.path.join(source, relative), arcname=relative, recursive=False)
            os.replace(temporary, archive)
        except BaseException:
            os.unlink(temporary)
            metrics.BACKUPS.labels("create", "failed").inc()
            raise
        metrics.BACKUPS.labels("create", "ok").inc()
        return os.path.getsize(archive)

    def restore(self, archive: str, shown: str, target: str) -> None:
        """Unpack `archive` into `target` (created if missing), or refuse it whole."""
        parent = os.path.dirname(target)
        staging = tempfile.mkdtemp(prefix=".restore-", dir=parent)
        try:
            with open(archive, "rb") as raw:
                head = raw.read(4)
                kind = next(
                    (k for k, (_, magic) in COMPRESSIONS.items() if head.startswith(magic)), None
                )
                raw.seek(0)
                if kind is None:
                    raise _refused(shown, "it is not an archive this server writes")
                with _READERS[kind](raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                    tar.extractall(staging, filter=_refuse_escapes)
            os.makedirs(target, exist_ok=True)
            for name in os.listdir(staging):
                destination = os.path.join(target, name)
                if os.path.isdir(destination) and not os.path.islink(destination):
                    shutil.rmtree(destination)
                elif os.path.lexists(destination):
                    os.unlink(destination)
                os.rename(os.path.join(staging, name), destination)
        except tarfile.FilterError as exc:
            metrics.BACKUPS.labels("restore", "refused").inc()
            raise _refused(shown, str(exc)) from None
        except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError, RuntimeError) as exc:
            metrics.BACKUPS.labels("restore", "failed").inc()
            raise _refused(shown, f"it could not be read ({exc})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        metrics.BACKUPS.labels("restore", "ok").inc()

    def check_upload(self, url: str) -> None:
        """403 unless the URL's origin is one the configuration allows."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()
        allowed = {o.rstrip("/").lower() for o in self.upload_origins}
        if parts.scheme not in ("http", "https") or origin not in allowed:
            raise SandboxError(
                "PERMISSION_DENIED",
                f"Uploads to {origin} are not allowed (BackupManager.upload_origins)",
                {"origin": origin},
            )

    async def upload_parts(
        self, archive: str, size: int, parts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """PUT each part's byte range of `archive` (`size` bytes); the ETag each answer gave,
        in part order."""
        for part in parts:
            self.check_upload(part["url"])
            if part["offset"] < 0 or part["size"] < 0 or part["offset"] + part["size"] > size:
                raise validation_error(
                    "parts", f"part {part['partNumber']} lies outside the archive"
                )
        uploaded = []
        async with httpx.AsyncClient(timeout=self.upload_timeout) as client:
            for part in sorted(parts, key=lambda p: p["partNumber"]):
                with open(archive, "rb") as file:
                    file.seek(part["offset"])
                    data = file.read(part["size"])
                answer = await client.put(part["url"], content=data)
                if answer.status_code >= 300:
                    raise SandboxError(
                        "BACKUP_CREATE_FAILED",
                        f"Upload of part {part['partNumber']} was answered {answer.status_code}",
                        {"partNumber": part["partNumber"], "status": answer.status_code},
                    )
                uploaded.append(
                    {"partNumber": part["partNumber"], "etag": answer.headers.get("etag", "")}
                )
        metrics.BACKUPS.labels("upload", "ok").inc()
        return uploaded


def _refuse_escapes(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, except that an absolute name is refused, not made relative:
    an archive of ours never holds one, so it was made to escape."""
    if member.name.startswith(("/", os.sep)):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, path)


def _refused(shown: str, why: str) -> SandboxError:
    return SandboxError(
        "BACKUP_RESTORE_FAILED",
        f"Archive {shown} refused: {why}",
        {"archivePath": shown},
        status=400,
    )


def members(source: str, excludes: list[str], keep: set[str] | None) -> list[str]:
    """Paths under `source` to archive, relative, parents first: not matching `excludes`
    (globs on the path or the name), and within `keep` when given (git's non-ignored files;
    their directories are kept too)."""
    kept_dirs = {str(parent) for path in keep or () for parent in PurePath(path).parents}
    found = []
    for directory, folders, files in os.walk(source):
        folders.sort()
        for name in sorted(folders) + sorted(files):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, source)
            if matches_glob(relative, excludes):
                if name in folders:
                    folders.remove(name)
                continue
            is_dir = name in folders
            if not (is_dir or os.path.islink(path) or os.path.isfile(path)):
                continue  # sockets, FIFOs, devices: no archive of ours carries them
            if keep is not None and relative not in keep and not (is_dir and relative in kept_dirs):
                if is_dir:
                    folders.remove(name)
                continue
            found.append(relative)
    return found


def upload_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `parts` of an upload request: partNumber, url, offset and size each."""
    parts = body.get("parts")
    if not isinstance(parts, list) or not parts:
        raise validation_error("parts", "'parts' must be a non-empty list")
    checked = []
    for part in parts:
        if not isinstance(part, dict):
            raise validation_error("parts", "each part must be an object")
        numbers = [part.get(k) for k in ("partNumber", "offset", "size")]
        if not all(map(is_whole, numbers)) or not isinstance(part.get("url"), str):
            raise validation_error("parts", "each part needs a partNumber, url, offset and size")
        checked.append(
            {"url": part["url"], **{k: int(part[k]) for k in ("partNumber", "offset", "size")}}
        )
    return checked
