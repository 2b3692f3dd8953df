"""File watching: a stream of changes under a directory, and a cheap "did it change?" check.

Changes come from watchfiles (the Rust `notify` crate: inotify on Linux), never from polling.
It reports additions, modifications and deletions; a rename arrives as a delete and a create,
and a change of permissions as a modification.

notify follows symlinks into whatever they point at, with no option to stop it. So a recursive
watch is refused on a tree holding a link that leads outside the roots (a link to `/` would
spend the user's whole inotify budget and stream the names of outside files), folders watched
at once are counted against one budget, and an event whose real location is outside the roots
(a link made after the watch began) is never reported.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

from traitlets import Instance, Int
from traitlets.config import LoggingConfigurable
from watchfiles import Change, awatch

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError, limit_reached, validation_error
from jupyter_interp_ext.protocol.timestamps import now_iso
from jupyter_interp_ext.protocol.validation import optional_bool, string_list

from . import trees
from .manager import FileManager, is_write_temporary, matches_glob

EVENT_TYPES = ("create", "modify", "delete", "move_from", "move_to", "attrib")
_KINDS = {Change.added: "create", Change.modified: "modify", Change.deleted: "delete"}


@dataclass(frozen=True)
class WatchOptions:
    """What a watch or a check looks at: `include`/`exclude` are globs on the path relative to
    the watched directory (or on the file name)."""

    recursive: bool
    events: frozenset[str]
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> WatchOptions:
        events = string_list(body, "events") or list(EVENT_TYPES)
        unknown = set(events) - set(EVENT_TYPES)
        if unknown:
            raise validation_error("events", f"unknown event types: {', '.join(sorted(unknown))}")
        recursive = True if body.get("recursive") is None else optional_bool(body, "recursive")
        return cls(
            recursive,
            frozenset(events),
            tuple(string_list(body, "include")),
            tuple(string_list(body, "exclude")),
        )

    def wants(self, relative: str) -> bool:
        if not self.recursive and os.sep in relative:
            return False
        if matches_glob(relative, self.exclude):
            return False
        return not self.include or matches_glob(relative, self.include)


class WatchManager(LoggingConfigurable):
    """Runs the watchers of `/api/watch` (bounded) and answers `/api/watch/check`."""

    max_watchers = Int(32, help="Watch streams open at once (0: no limit); more get 429.").tag(
        config=True
    )

    debounce_ms = Int(50, help="Changes within this many milliseconds are sent together.").tag(
        config=True
    )

    max_fingerprint_entries = Int(
        100_000, help="Entries `/api/watch/check` reads at most before it answers `resync`."
    ).tag(config=True)

    max_watched_folders = Int(
        20_000,
        help="Folders all open watch streams may watch together (each is one inotify watch; "
        "Linux allows a user 8,192 or more in all); a watch that would pass it gets 429.",
    ).tag(config=True)

    files = Instance(FileManager)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._open = 0
        self._folders = 0

    def check_room(self) -> None:
        """429 before a stream opens when the watchers are all in use."""
        if self.max_watchers and self._open >= self.max_watchers:
            raise limit_reached("watchers", self.max_watchers, "WatchManager.max_watchers")

    async def folders_to_watch(self, root: str, shown: str, options: WatchOptions) -> int:
        """How many folders a watch of `root` holds (1 unless recursive); 403 for a link in
        the tree that leads outside the roots, 429 past the folder budget."""
        if options.recursive:
            count = await self.files.run_io(lambda: self._count_folders(root, shown), shown)
        else:
            count = 1
        if self.max_watched_folders and self._folders + count > self.max_watched_folders:
            raise limit_reached(
                "watched folders", self.max_watched_folders, "WatchManager.max_watched_folders"
            )
        return count

    def _count_folders(self, root: str, shown: str) -> int:
        confinement = self.files.confinement
        top = confinement.open_directory(root, shown)
        count = 1
        try:
            for entry in trees.walk(top):
                count += entry.is_dir
                if entry.is_link:
                    where = os.path.join(root, entry.relative)
                    link_shown = os.path.join(shown, entry.relative)
                    try:
                        confinement.locate(where, link_shown, hidden=True).close()
                    except (FileNotFoundError, NotADirectoryError):
                        pass  # a dangling link leads nowhere
                    except ProtocolError as exc:
                        raise ProtocolError(
                            "PERMISSION_DENIED",
                            f"Cannot watch {shown} recursively: the link {link_shown} leads "
                            "outside the allowed roots (watch the folders beside it instead)",
                            {"path": shown, "link": link_shown},
                        ) from exc
        finally:
            os.close(top)
        return count

    async def watch(
        self, root: str, shown: str, options: WatchOptions, folders: int
    ) -> AsyncIterator[dict[str, Any]]:
        """`watching`, then one `event` per change; `stopped` if the directory goes away. The
        watcher is released when the consumer stops reading (the client left). Callers call
        `check_room` and `folders_to_watch` first; a stream that lost a race for the last
        watcher ends at once."""
        if self.max_watchers and self._open >= self.max_watchers:
            yield {"type": "error", "error": "too many watchers (WatchManager.max_watchers)"}
            return
        self._open += 1
        self._folders += folders
        metrics.WATCHERS.set(self._open)
        stop = asyncio.Event()
        changes = awatch(
            root,
            recursive=options.recursive,
            stop_event=stop,
            debounce=self.debounce_ms,
            step=min(50, self.debounce_ms),
            yield_on_timeout=True,
            rust_timeout=500,
        )
        try:
            yield {"type": "watching", "path": shown, "watchId": token_hex(8)}
            async for batch in changes:
                for change, path in sorted(batch, key=lambda item: item[1]):
                    event = self._event(root, shown, options, change, path)
                    if event is not None and self._inside_roots(path):
                        yield event
                if not os.path.isdir(root):
                    yield {"type": "stopped", "reason": f"{shown} no longer exists"}
                    return
        finally:
            stop.set()
            self._open -= 1
            self._folders -= folders
            metrics.WATCHERS.set(self._open)

    def _inside_roots(self, path: str) -> bool:
        """Whether a changed path's folder really lies inside the roots (notify may have
        followed a link out of them)."""
        real = os.path.realpath(os.path.dirname(path))
        return any(
            os.path.commonpath([real, root]) == root for _, root in self.files.confinement.roots
        )

    @staticmethod
    def _event(
        root: str, shown: str, options: WatchOptions, change: Change, path: str
    ) -> dict[str, Any] | None:
        kind = _KINDS.get(change)
        relative = os.path.relpath(path, root)
        if kind not in options.events or relative == "." or not options.wants(relative):
            return None
        if is_write_temporary(os.path.basename(path)):  # the files API's own atomic write
            return None
        return {
            "type": "event",
            "eventType": kind,
            "path": os.path.join(shown, relative),
            "isDirectory": os.path.isdir(path),
            "timestamp": now_iso(),
        }

    async def check(
        self, root: str, shown: str, options: WatchOptions, since: str | None
    ) -> dict[str, Any]:
        """`unchanged`/`changed` against a version this handed out (a fingerprint of names,
        sizes and modification times, so it survives restarts); `resync` when `since` is not
        one, or the directory is too large to fingerprint. Every entry read counts against
        the bound, filtered out or not, and the walk runs on the files API's pool."""
        version = await self.files.run_io(lambda: self._fingerprint(root, shown, options), shown)
        if version is None:
            return {"status": "resync", "version": "", "reason": "too many entries"}
        if since is None or since == "":
            return {"status": "resync", "version": version, "reason": "no version given"}
        return {"status": "unchanged" if since == version else "changed", "version": version}

    def _fingerprint(self, root: str, shown: str, options: WatchOptions) -> str | None:
        top = self.files.confinement.open_directory(root, shown)
        digest = hashlib.sha256()
        seen = 0

        def counted(entry: trees.Entry) -> bool:
            nonlocal seen
            seen += 1
            return True

        try:
            for entry in trees.walk(top, counted, None if options.recursive else 1):
                if seen > self.max_fingerprint_entries:
                    return None
                if options.wants(entry.relative):
                    info = entry.info
                    line = f"{entry.relative}\0{info.st_mtime_ns}\0{info.st_size}\n"
                    digest.update(line.encode())
        finally:
            os.close(top)
        return digest.hexdigest()[:32]
