"""Directory archives: create (tar, compressed with gzip, zstd or lz4), restore safely, and
upload an archive's parts to pre-signed URLs.

Both directions work on held directory descriptors (`trees`), never by path name after the
first confined walk, so renames meanwhile cannot send them outside the roots. Creation walks
the directory with the files API's rules (no hidden entries unless the server allows them,
`.gitignore` read as data when asked, `excludes`) and publishes the archive by a rename only
when it is whole. A restore unpacks into a private staging folder outside the roots with
tarfile's `data` filter (no absolute paths, no `..`, no devices, no set-uid bits) plus ours
(hidden names, links that could point out of the roots, size and entry caps), then moves the
entries into the target: a refused archive changes nothing. Jobs run on a bounded pool of their
own and stop once their caller has been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import os
import secrets
import stat
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

from traitlets import Float, Instance, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError, limit_reached, validation_error
from jupyter_interp_ext.protocol.validation import is_whole, optional_bool, string_list

from . import trees
from .confinement import open_in
from .gitignore import IgnoreRules, rules_for
from .manager import NEW_FILE_MODE, WRITE_SUFFIX, FileManager, matches_glob

T = TypeVar("T")
RATIO_FLOOR_BYTES = 64 * 1024 * 1024  # any archive may unpack this far, whatever its ratio


def _zstd() -> Any:
    """zstandard, imported when an archive first needs it (not at every server start)."""
    import zstandard

    return zstandard


def _lz4() -> Any:
    """lz4's frame format, imported when an archive first needs it."""
    import lz4.frame

    return lz4.frame


# Compression name → (opens a compressing writer on a file, the format's magic bytes).
COMPRESSIONS: dict[str, tuple[Callable[[IO[bytes]], Any], bytes]] = {
    "gzip": (lambda f: gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6), b"\x1f\x8b"),
    "zstd": (lambda f: _zstd().ZstdCompressor().stream_writer(f), b"\x28\xb5\x2f\xfd"),
    "lz4": (lambda f: _lz4().LZ4FrameFile(f, mode="wb"), b"\x04\x22\x4d\x18"),
}
_READERS: dict[str, Callable[[IO[bytes]], Any]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "zstd": lambda f: _zstd().ZstdDecompressor().stream_reader(f),
    "lz4": lambda f: _lz4().LZ4FrameFile(f, mode="rb"),
}


@dataclass(frozen=True)
class ArchiveOptions:
    """How `/api/backup/create` archives: compression, excluded globs, `.gitignore` rules."""

    compression: str
    excludes: list[str]
    gitignore: bool

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ArchiveOptions:
        return cls(
            compression_of(body), string_list(body, "excludes"), optional_bool(body, "gitignore")
        )


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


class Abandoned(Exception):
    """The job's caller was answered (timed out) or left: its work stops and publishes nothing."""


class RestoreRefused(tarfile.FilterError):
    """An archive member this server will not unpack."""

    status = 400


class RestoreTooLarge(RestoreRefused):
    status = 413


class BackupManager(LoggingConfigurable):
    """Creates and restores archives, and uploads them where the configuration allows."""

    upload_origins = List(
        Unicode(),
        help="Origins (scheme://host[:port]) that /api/backup/upload-parts may PUT to. Empty "
        "(the default): every upload is refused, so the route cannot reach internal addresses.",
    ).tag(config=True)

    upload_timeout = Int(300, help="Seconds one part's upload may take.").tag(config=True)

    jobs = Int(
        2,
        help="Archives created or restored at once, on threads of their own (the files API's "
        "pool stays free for reads and writes).",
    ).tag(config=True)

    max_waiting = Int(
        8, help="Archive jobs that may wait for a thread; more are answered 429."
    ).tag(config=True)

    job_timeout = Float(
        600.0,
        help="Seconds one archive job may take (0: no limit). Then the request is answered 500 "
        "and the job stops, publishing nothing.",
    ).tag(config=True)

    max_restore_bytes = Int(
        4 * 1024**3, help="Bytes a restored archive may unpack to; more is refused with 413."
    ).tag(config=True)

    max_restore_entries = Int(
        200_000, help="Entries a restored archive may hold; more is refused with 413."
    ).tag(config=True)

    max_restore_ratio = Int(
        200,
        help="How many times its own size an archive may unpack to, beyond its first 64 MiB "
        "(a compression bomb is refused with 413 long before max_restore_bytes); 0: no limit.",
    ).tag(config=True)

    files = Instance(FileManager)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = ThreadPoolExecutor(max(1, self.jobs), thread_name_prefix="sandbox-backup")
        self._pending = 0

    async def run_job(
        self, work: Callable[[threading.Event], T], shown: str, cancelled: threading.Event
    ) -> T:
        """Run `work` on the archive pool; 429 when too many wait, 500 past `job_timeout`.
        However the request ends, `cancelled` is set, so work still going stops."""
        if self._pending >= max(1, self.jobs) + self.max_waiting:
            raise limit_reached("archive jobs", self.max_waiting, "BackupManager.max_waiting")
        self._pending += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, work, cancelled)
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.job_timeout or None)
        except asyncio.TimeoutError:
            raise ProtocolError(
                "FILESYSTEM_ERROR",
                f"Archive job on {shown} did not finish within {self.job_timeout:g} s "
                "(BackupManager.job_timeout); it was stopped",
                {"path": shown},
            ) from None
        except OSError as exc:
            raise self.files.protocol_error(exc, shown) from None
        finally:
            cancelled.set()

    def _release(self) -> None:
        self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def create(
        self,
        source: str,
        source_shown: str,
        archive: str,
        archive_shown: str,
        options: ArchiveOptions,
        cancelled: threading.Event,
    ) -> int:
        """Archive the directory `source`; the archive replaces `archive` only when whole. Its
        size in bytes."""
        confinement = self.files.confinement
        rules = rules_for(confinement, source, source_shown) if options.gitignore else None
        excludes = options.excludes
        if os.path.commonpath([archive, source]) == source:  # an earlier archive stays out
            excludes = [*excludes, os.path.relpath(archive, source)]
        top = confinement.open_directory(source, source_shown)
        try:
            with confinement.locate(archive, archive_shown) as location:
                if not location.name:
                    raise _is_directory(archive_shown)
                folder, name = os.dup(location.dir_fd), location.name
            try:
                return self._write_archive(
                    top, folder, name, options.compression, excludes, rules, cancelled
                )
            finally:
                os.close(folder)
        except BaseException:
            metrics.BACKUPS.labels("create", "failed").inc()
            raise
        finally:
            os.close(top)

    def _write_archive(
        self,
        top: int,
        folder: int,
        name: str,
        compression: str,
        excludes: list[str],
        rules: IgnoreRules | None,
        cancelled: threading.Event,
    ) -> int:
        temporary = f".archive-{secrets.token_hex(4)}{WRITE_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600, dir_fd=folder)
        itself = os.fstat(fd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as raw:
                compressed = COMPRESSIONS[compression][0](raw)
                with compressed, tarfile.open(fileobj=compressed, mode="w|") as tar:
                    if rules is not None:
                        rules.read_from(top, ())
                    keep = partial(self._archived, excludes, rules, top)
                    for entry in trees.walk(top, keep):
                        if cancelled.is_set():
                            raise Abandoned
                        _add(tar, entry, itself)
            os.fchmod(fd, NEW_FILE_MODE)
            size = os.fstat(fd).st_size
            if cancelled.is_set():
                raise Abandoned
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
        finally:
            os.close(fd)
        metrics.BACKUPS.labels("create", "ok").inc()
        return size

    def _archived(
        self, excludes: list[str], rules: IgnoreRules | None, top: int, entry: trees.Entry
    ) -> bool:
        """Whether an entry goes into an archive: what the files API may read (no hidden
        names unless the server allows them; directories, files and links only), not
        excluded, not ignored by git's rules. A kept directory's `.gitignore` is read here,
        before its entries are decided."""
        if entry.name.startswith(".") and not self.files.allow_hidden:
            return False
        if not (entry.is_dir or entry.is_file or entry.is_link):
            return False  # sockets, FIFOs, devices: no archive of ours carries them
        if matches_glob(entry.relative, excludes):
            return False
        if rules is None:
            return True
        if rules.ignored(entry.parts, entry.is_dir):
            return False
        if entry.is_dir:
            with contextlib.suppress(OSError):
                child = os.open(entry.name, trees.DIR_FLAGS, dir_fd=entry.parent_fd)
                try:
                    rules.read_from(child, entry.parts)
                finally:
                    os.close(child)
        return True

    def restore(
        self,
        archive: str,
        archive_shown: str,
        target: str,
        shown: str,
        links_may_climb: bool,
        cancelled: threading.Event,
    ) -> None:
        """Unpack `archive` into the directory `target` (created if missing), or refuse it
        whole. Links that climb above their own folder are kept only when `links_may_climb`
        (a caller who may run commands could make them anyway); any kept link stays inside
        the restored tree."""
        fd, info, _ = self.files.open_file(archive, archive_shown)
        try:
            with self.files.staging() as (staging, staging_fd):
                with os.fdopen(fd, "rb", closefd=False) as raw:
                    self._unpack(raw, info.st_size, staging, links_may_climb, cancelled)
                with self.files.confinement.locate(target, shown, make_parents=True) as location:
                    if not location.exists:
                        os.mkdir(location.name, dir_fd=location.dir_fd)
                    into = open_in(location, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    for name in sorted(os.listdir(staging_fd)):
                        if cancelled.is_set():
                            raise Abandoned
                        if trees.exists(into, name):
                            trees.remove(into, name)
                        trees.move(staging_fd, name, into, name)
                finally:
                    os.close(into)
        except RestoreRefused as exc:
            metrics.BACKUPS.labels("restore", "refused").inc()
            raise _refused(archive_shown, str(exc), exc.status) from None
        except tarfile.FilterError as exc:
            metrics.BACKUPS.labels("restore", "refused").inc()
            raise _refused(archive_shown, str(exc)) from None
        except (tarfile.TarError, EOFError, _zstd().ZstdError, RuntimeError) as exc:
            metrics.BACKUPS.labels("restore", "failed").inc()
            raise _refused(archive_shown, f"it could not be read ({exc})") from None
        except BaseException:
            metrics.BACKUPS.labels("restore", "failed").inc()
            raise
        finally:
            os.close(fd)
        metrics.BACKUPS.labels("restore", "ok").inc()

    def _unpack(
        self,
        raw: IO[bytes],
        size: int,
        staging: str,
        links_may_climb: bool,
        cancelled: threading.Event,
    ) -> None:
        head = raw.read(4)
        kind = next((k for k, (_, magic) in COMPRESSIONS.items() if head.startswith(magic)), None)
        raw.seek(0)
        if kind is None:
            raise RestoreRefused("it is not an archive this server writes")
        admit = _Admission(self, self._byte_budget(size), links_may_climb, cancelled)
        with _READERS[kind](raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(staging, filter=admit)

    def _byte_budget(self, archive_size: int) -> tuple[int, str]:
        """How many bytes an archive of this size may unpack to, and the setting that says so."""
        if self.max_restore_ratio:
            by_ratio = RATIO_FLOOR_BYTES + self.max_restore_ratio * archive_size
            if by_ratio < self.max_restore_bytes:
                return by_ratio, "BackupManager.max_restore_ratio"
        return self.max_restore_bytes, "BackupManager.max_restore_bytes"

    def check_upload(self, url: str) -> None:
        """400 for a URL with spaces or control characters (Python would quietly drop some),
        403 unless its origin is one the configuration allows."""
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            raise validation_error("parts", "a part's url holds spaces or control characters")
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()
        allowed = {o.rstrip("/").lower() for o in self.upload_origins}
        if parts.scheme not in ("http", "https") or origin not in allowed:
            raise ProtocolError(
                "PERMISSION_DENIED",
                f"Uploads to {origin} are not allowed (BackupManager.upload_origins)",
                {"origin": origin},
            )

    async def upload(
        self, archive: str, shown: str, parts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """PUT each part's byte range of the archive at `archive` (inside the roots); the ETag
        each answer gave, in part order."""
        fd, info, _ = await self.files.run_io(lambda: self.files.open_file(archive, shown), shown)
        try:
            return await self._upload_parts(fd, info.st_size, parts)
        finally:
            os.close(fd)

    async def _upload_parts(
        self, archive: int, size: int, parts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        for part in parts:
            self.check_upload(part["url"])
            if part["offset"] < 0 or part["size"] < 0 or part["offset"] + part["size"] > size:
                raise validation_error(
                    "parts", f"part {part['partNumber']} lies outside the archive"
                )
        import httpx  # only uploads need it: not imported at every server start

        uploaded = []
        async with httpx.AsyncClient(timeout=self.upload_timeout) as client:
            for part in sorted(parts, key=lambda p: p["partNumber"]):
                data = os.pread(archive, part["size"], part["offset"])
                answer = await client.put(part["url"], content=data)
                if answer.status_code >= 300:
                    raise ProtocolError(
                        "BACKUP_CREATE_FAILED",
                        f"Upload of part {part['partNumber']} was answered {answer.status_code}",
                        {"partNumber": part["partNumber"], "status": answer.status_code},
                    )
                uploaded.append(
                    {"partNumber": part["partNumber"], "etag": answer.headers.get("etag", "")}
                )
        metrics.BACKUPS.labels("upload", "ok").inc()
        return uploaded


class _Admission:
    """The filter each member of a restored archive passes: tarfile's `data` filter, then ours."""

    def __init__(
        self,
        manager: BackupManager,
        budget: tuple[int, str],
        links_may_climb: bool,
        cancelled: threading.Event,
    ):
        self.manager = manager
        self.max_bytes, self.bytes_setting = budget
        self.links_may_climb = links_may_climb
        self.cancelled = cancelled
        self.entries = 0
        self.bytes = 0

    def __call__(self, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if self.cancelled.is_set():
            raise Abandoned
        if member.name.startswith(("/", os.sep)):  # an archive of ours never holds one
            raise tarfile.AbsolutePathError(member)
        names = [part for part in member.name.split("/") if part not in ("", ".")]
        if not self.manager.files.allow_hidden and any(n.startswith(".") for n in names):
            raise RestoreRefused(
                f"{member.name} is hidden, and the server does not allow hidden files"
            )
        if member.issym() and not self.links_may_climb and trees.climbs_above(member.linkname, 0):
            raise RestoreRefused(
                f"the link {member.name} -> {member.linkname} leads out of its folder (only a "
                "caller who may run commands may restore such links)"
            )
        self.entries += 1
        self.bytes += member.size if member.isfile() else 0
        manager = self.manager
        if self.entries > manager.max_restore_entries:
            raise RestoreTooLarge(
                f"it holds more than {manager.max_restore_entries} entries "
                "(BackupManager.max_restore_entries)"
            )
        if self.bytes > self.max_bytes:
            raise RestoreTooLarge(
                f"it unpacks to more than {self.max_bytes} bytes ({self.bytes_setting})"
            )
        return tarfile.data_filter(member, path)


def _add(tar: tarfile.TarFile, entry: trees.Entry, archive: os.stat_result) -> None:
    """Add one walked entry: a file is opened from its held directory, never by path, and the
    archive being written is never added to itself."""
    info = tarfile.TarInfo(entry.relative)
    if entry.is_dir:
        info.type = tarfile.DIRTYPE
        _stamp(info, entry.info)
        tar.addfile(info)
        return
    if entry.is_link:
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(entry.name, dir_fd=entry.parent_fd)
        _stamp(info, entry.info)
        tar.addfile(info)
        return
    try:
        fd = os.open(entry.name, trees.FILE_FLAGS, dir_fd=entry.parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):  # gone, or swapped for a link
            return
        raise
    with os.fdopen(fd, "rb") as file:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) == (
            archive.st_dev,
            archive.st_ino,
        ):
            return
        _stamp(info, opened)
        info.size = opened.st_size
        tar.addfile(info, file)


def _stamp(info: tarfile.TarInfo, st: os.stat_result) -> None:
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid, info.gid = st.st_uid, st.st_gid


def _is_directory(shown: str) -> ProtocolError:
    return ProtocolError("IS_DIRECTORY", f"Path is a directory: {shown}", {"path": shown})


def _refused(shown: str, why: str, status: int = 400) -> ProtocolError:
    return ProtocolError(
        "BACKUP_RESTORE_FAILED",
        f"Archive {shown} refused: {why}",
        {"archivePath": shown},
        status=status,
    )


def parse_upload_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
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
