"""Files, confined to the allowed roots: docs/api.md, "Files"."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext.files.backups import ArchiveOptions, BackupManager, parse_upload_parts
from jupyter_interp_ext.files.git import CloneRequest, GitManager, redact, repo_name
from jupyter_interp_ext.files.manager import FileManager
from jupyter_interp_ext.files.watching import WatchManager, WatchOptions
from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.events import READ_ERROR
from jupyter_interp_ext.protocol.validation import optional_bool, optional_str

from .base import SandboxHandler

AUTH_RESOURCE = "contents"


class FilesHandler(SandboxHandler):
    """Files inside the roots, authorized on Jupyter's `contents`."""

    auth_resource = AUTH_RESOURCE

    @property
    def files(self) -> FileManager:
        return self.settings["interp_file_manager"]

    async def directory(self, body: dict[str, Any], field: str = "path") -> tuple[str, str]:
        """(real path, shown path) of an existing directory inside the roots."""
        real, shown = self.path(body, field)
        return await self.files.real_directory(real, shown), shown

    async def new_entry(self, body: dict[str, Any], field: str) -> tuple[str, str]:
        """(real path, shown path) for an entry that may not exist yet: its parent must."""
        real, shown = self.path(body, field)
        return await self.files.new_entry(real, shown), shown

    @property
    def git(self) -> GitManager:
        return self.settings["interp_git_manager"]

    @property
    def watches(self) -> WatchManager:
        return self.settings["interp_watch_manager"]

    def path(self, body: dict[str, Any], field: str = "path") -> tuple[str, Any]:
        """(absolute path, path as the client wrote it); relative paths follow the session's
        current directory (read from its shell at once, never waiting behind a command)."""
        if self.contexts.remote and not self.files.kernels_share_disk:
            raise ProtocolError(
                "FILES_NOT_SHARED",
                "The kernels run behind a Gateway, on another machine: a file written or read "
                "here would not be theirs. Set FileManager.kernels_share_disk=True if they "
                "mount this server's files at the same paths.",
                {"path": body.get(field)},
            )
        shown = body.get(field)
        base = "/"
        if isinstance(shown, str) and shown and not os.path.isabs(os.path.expanduser(shown)):
            base = self.shell_sessions.current_dir(self.session_id(body))
        return self.files.check(shown, base, field), shown


class ReadHandler(FilesHandler):
    """`POST /api/read`: a whole file, as text or base64."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body)
        self.write_json(await self.files.read(real, shown, optional_str(body, "encoding")))


class ReadStreamHandler(FilesHandler):
    """metadata → chunk… → complete; errors arrive inside the stream, as upstream sends them."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body)
        await self.files.confine(real, shown)  # refused before the stream, as upstream does
        await self.stream_events(self._events(real, shown))

    async def _events(self, real: str, shown: str) -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in self.files.stream(real, shown):
                yield event
        except ProtocolError as exc:
            yield {"type": READ_ERROR, "error": exc.message, "code": exc.code}


class WriteHandler(FilesHandler):
    """`POST /api/write`: write a file whole (replaced only once written)."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body)
        content = body.get("content")
        if not isinstance(content, str):
            raise validation_error("content", "'content' must be a string")
        await self.files.write(real, shown, content, optional_str(body, "encoding"))
        self.write_json({"path": shown})


class DeleteHandler(FilesHandler):
    """`POST /api/delete`: delete a file."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        real, shown = self.path(await self.json_body())
        await self.files.delete(real, shown)
        self.write_json({"path": shown})


class MoveHandler(FilesHandler):
    """`/api/rename` ({oldPath, newPath}) and `/api/move` ({sourcePath, destinationPath})."""

    def initialize(self, source: str, target: str) -> None:
        self.source_field, self.target_field = source, target

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        source, shown = self.path(body, self.source_field)
        target, new_shown = self.path(body, self.target_field)
        moved_to = await self.files.move(source, shown, target, new_shown)
        self.write_json({"path": shown, "newPath": moved_to})


class MkdirHandler(FilesHandler):
    """`POST /api/mkdir`: make a folder (and its parents, if asked)."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body)
        recursive = optional_bool(body, "recursive")
        created = await self.files.mkdir(real, shown, recursive)
        self.write_json({"path": shown, "recursive": recursive, "created": created})


class ListFilesHandler(FilesHandler):
    """`POST /api/list-files`: a folder's entries (recursively, if asked)."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise validation_error("options", "'options' must be an object")
        files, truncated = await self.files.list(
            real,
            shown,
            optional_bool(options, "recursive"),
            optional_bool(options, "includeHidden"),
        )
        self.write_json(
            {"path": shown, "files": files, "count": len(files), "truncated": truncated}
        )


class ExistsHandler(FilesHandler):
    """`POST /api/exists`: whether a path exists."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        real, shown = self.path(await self.json_body())
        self.write_json({"path": shown, "exists": await self.files.exists(real, shown)})


class WatchHandler(FilesHandler):
    """`watching`, then `event`s as files under the directory change (see files/watching.py)."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        root, shown = await self.directory(body)
        options = WatchOptions.parse(body)
        self.watches.check_room()
        folders = await self.watches.folders_to_watch(root, shown, options)
        await self.stream_events(self.watches.watch(root, shown, options, folders))


class WatchCheckHandler(FilesHandler):
    """`POST /api/watch/check`: whether a tree changed since a version."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        root, shown = await self.directory(body)
        since = optional_str(body, "since")
        self.write_json(await self.watches.check(root, shown, WatchOptions.parse(body), since))


class GitCheckoutHandler(FilesHandler):
    """Clone a repository into the roots (see files/git.py)."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        request = CloneRequest.parse(body)
        local_path = request.local_path()
        # A local repository is read, so it must be ours to read (relative: session's dir).
        local = self.path({**body, "repoUrl": local_path}, "repoUrl") if local_path else None
        if body.get("targetDir") is None:  # absent or null: the repository's name
            body = {**body, "targetDir": repo_name(request.repo_url)}
        target, shown = await self.new_entry(body, "targetDir")
        env = self.shell_sessions.base_environment({})
        branch = await self.git.clone(request, target, shown, env, self.may_run_commands(), local)
        self.write_json(
            {
                "repoUrl": redact(request.repo_url),
                "branch": request.branch or branch,
                "targetDir": shown,
            }
        )


class BackupsHandler(FilesHandler):
    """Archive jobs: they stop as soon as their caller is answered or leaves."""

    _job: threading.Event | None = None

    @property
    def backups(self) -> BackupManager:
        return self.settings["interp_backup_manager"]

    def job(self) -> threading.Event:
        self._job = threading.Event()
        return self._job

    def on_connection_close(self) -> None:
        if self._job is not None:
            self._job.set()
        super().on_connection_close()


class BackupCreateHandler(BackupsHandler):
    """Archive a directory (honouring .gitignore when asked, and `excludes`)."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        source, source_shown = await self.directory(body, "dir")
        archive, shown = await self.new_entry(body, "archivePath")
        options = ArchiveOptions.parse(body)

        def work(cancelled: threading.Event) -> int:
            return self.backups.create(source, source_shown, archive, shown, options, cancelled)

        size = await self.backups.run_job(work, shown, self.job())
        self.write_json({"sizeBytes": size, "archivePath": shown})


class BackupRestoreHandler(BackupsHandler):
    """Unpack an archive into a directory, refusing anything that would escape it."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body()
        real, archive_shown = self.path(body, "archivePath")
        await self.files.confine(real, archive_shown)
        target, shown = await self.new_entry(body, "dir")
        climbing = self.may_run_commands()

        def work(cancelled: threading.Event) -> None:
            self.backups.restore(real, archive_shown, target, shown, climbing, cancelled)

        await self.backups.run_job(work, shown, self.job())
        self.write_json({"dir": shown})


class BackupUploadHandler(BackupsHandler):
    """PUT an archive's parts to pre-signed URLs of allowed origins."""

    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = await self.json_body()
        real, shown = self.path(body, "archivePath")
        await self.files.confine(real, shown)
        parts = parse_upload_parts(body)
        self.write_json({"parts": await self.backups.upload(real, shown, parts)})
