"""A notebook per context: what the API ran, in order, with its outputs, for a person to open.

Each context gets a notebook in a visible folder; the context's row in the server's sessions
points at it, so JupyterLab opening it attaches to the context's own kernel. Runs are appended as
cells by a writer task per notebook, never by the run itself:

- when jupyter-collaboration has the notebook open (a browser shows it), cells and outputs go
  into its shared document as they stream (at most every `live_interval`), and the
  collaboration server saves the file;
- otherwise the file is written through the server's ContentsManager after each run, in a
  pause between runs (at most every `save_interval`), so this works with any contents manager.

The file is the truth: if anyone else wrote it since our last write (a person, the
collaboration server), it is read back and our new cells are merged into it by cell id, so a
person's cells are never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from tornado.web import HTTPError
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, Unicode, validate
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext.protocol.timestamps import now_iso

from .cells import (
    AGENT_KEY,
    CellRecord,
    RunRecord,
    ended_cell,
    new_context_notebook,
    outputs_size,
    trim_oldest,
)

if TYPE_CHECKING:
    from .live import LiveCopy

# Why a context's notebook ends (its last cell says so).
DELETED = "deleted through the sandbox API"
SHUT_DOWN_ELSEWHERE = (
    "its kernel was shut down outside the sandbox API (in JupyterLab or through /api/kernels)"
)
SERVER_STOPPED = "the server stopped"

# The most of the server's time one notebook's writes may take, however big it grows.
WRITE_SHARE = 0.02
# A file write waits for a pause between runs this long (an agent thinks between runs), so
# that it does not delay one; under a steady stream of runs, it waits at most MAX_WRITE_DELAY.
QUIET_SECONDS = 0.2
MAX_WRITE_DELAY = 10.0


class ContextNotebooks(LoggingConfigurable):
    """Creates each context's notebook and keeps it written."""

    enabled = Bool(
        True, help="Give each code context a notebook that records its runs (cells, outputs)."
    ).tag(config=True)

    folder = Unicode(
        "sandbox",
        help="Folder of the contexts' notebooks, as a path of the server's contents (relative "
        "to its root, as JupyterLab's file browser shows it); created when needed.",
    ).tag(config=True)

    keep_on_delete = Bool(
        True,
        help="Keep a deleted context's notebook, with a last cell saying when and why it "
        "ended; False deletes the notebook with the context.",
    ).tag(config=True)

    max_output_bytes = Int(
        5 * 1024 * 1024,
        help="Output bytes one notebook keeps of the API's runs; the oldest runs' outputs are "
        "replaced by a note beyond it, and one run keeps at most half of it.",
    ).tag(config=True)

    save_interval = Float(
        2.0,
        help="Shortest time between two writes of one notebook's file; runs that end in "
        "between are written together. A big notebook waits longer: 50 times its last "
        "write's duration (a write serialises and validates the whole notebook, and the runs "
        "it overlaps wait for it).",
    ).tag(config=True)

    live_interval = Float(
        0.1,
        help="With jupyter-collaboration and the notebook open: shortest time between two "
        "updates of its shared document while code runs.",
    ).tag(config=True)

    contents_manager = AnyTrait(help="The server's ContentsManager (any implementation).")
    live_documents = AnyTrait(
        None,
        allow_none=True,
        help="async (path) → the notebook's shared document if jupyter-collaboration has it "
        "open, else None; None without jupyter-collaboration.",
    )

    @validate("folder")
    def _relative(self, proposal: dict) -> str:
        return proposal["value"].strip("/")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._notebooks: dict[str, NotebookWriter] = {}
        self._folder_ready: asyncio.Future | None = None

    def open(
        self, context_id: str, language: str, kernel_name: str, display_name: str
    ) -> str | None:
        """Start the notebook of a new context; its path (None when notebooks are off). The
        file is written by the notebook's writer, so creating a context does not wait."""
        if not self.enabled:
            return None
        created = datetime.now(timezone.utc)
        name = f"{language}-{created:%Y%m%d-%H%M%S}-{context_id[:8]}.ipynb"
        path = f"{self.folder}/{name}" if self.folder else name
        nb = new_context_notebook(context_id, language, kernel_name, display_name, now_iso())
        self._notebooks[context_id] = NotebookWriter(self, path, nb)
        return path

    def record_run(self, context_id: str, code: str) -> RunRecord | None:
        """A new cell for a run of `code` in the context's notebook (None if it has none)."""
        notebook = self._notebooks.get(context_id)
        return notebook.start_run(code) if notebook is not None else None

    async def close(self, context_id: str, why: str, keep: bool | None = None) -> None:
        """The context ended: its notebook gets a last cell saying when and why, and is
        written one last time (or deleted: `keep` False, default `keep_on_delete`)."""
        notebook = self._notebooks.pop(context_id, None)
        if notebook is not None:
            await notebook.close(why, keep=self.keep_on_delete if keep is None else keep)

    async def ensure_folder(self) -> None:
        """Create the folder (and its parents) once; concurrent callers share the work."""
        if self._folder_ready is None:
            self._folder_ready = asyncio.ensure_future(self._make_folder())
        try:
            await asyncio.shield(self._folder_ready)
        except Exception:
            self._folder_ready = None  # try again next time
            raise

    async def _make_folder(self) -> None:
        manager = self.contents_manager
        parts = [p for p in self.folder.split("/") if p]
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if not await ensure_async(manager.dir_exists(path)):
                await ensure_async(manager.save({"type": "directory"}, path))

    def check_inside_root(self, path: str) -> None:
        """Refuse a notebook whose file would land outside the server's root: Jupyter's file
        contents manager follows links, and the folder may have been swapped for one. (Other
        contents managers keep no files of their own to check.)"""
        manager = self.contents_manager
        to_os_path = getattr(manager, "_get_os_path", None)
        root = getattr(manager, "root_dir", None)
        if to_os_path is None or not root:
            return
        real = os.path.realpath(to_os_path(path))
        real_root = os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root:
            raise PermissionError(f"{path} leads outside the server's root (to {real})")

    async def shutdown(self) -> None:
        for context_id in list(self._notebooks):
            await self.close(context_id, SERVER_STOPPED)


class NotebookWriter:
    """One context's notebook: the cells in memory and a writer task that keeps the file (or
    the shared document) up to date."""

    def __init__(self, owner: ContextNotebooks, path: str, nb: dict[str, Any]) -> None:
        self.owner = owner
        self.path = path
        self.nb = nb
        self.saved_at: Any = None  # the file's last_modified after our last write
        self.unsaved: dict[str, CellRecord] = {}  # changed since the last file write
        self.unsynced: dict[str, CellRecord] = {}  # changed since the last live update
        self.running: dict[str, RunRecord] = {}
        self.sizes: dict[str, int] = {}  # our code cells' output bytes, oldest first
        self.live: LiveCopy | None = None
        self._file_due = True
        self._closing = asyncio.Event()  # set when the context ends: write now, then stop
        self._discarded = False  # the context ended and its notebook is deleted, not written
        self._failed = False
        self._last_run = 0.0  # when a run last started or ended (monotonic)
        self._wake = asyncio.Event()
        for cell in nb["cells"]:
            self._changed(CellRecord(cell), structural=True)
        self._writer = asyncio.ensure_future(self._keep_written())

    def start_run(self, code: str) -> RunRecord:
        record = RunRecord(code, self.owner.max_output_bytes // 2, on_change=self._run_changed)
        self.nb["cells"].append(record.cell)
        self.running[record.id] = record
        self.sizes[record.id] = 0
        self._last_run = time.monotonic()
        self._changed(record, structural=True)
        return record

    def _run_changed(self, record: RunRecord) -> None:
        """A run's cell got output (or ended): new output only needs a live update; an ended
        run needs the file written too."""
        self.sizes[record.id] = record.size
        if record.ended:
            self.running.pop(record.id, None)
            self._last_run = time.monotonic()
            for trimmed in trim_oldest(
                self.nb["cells"], self.sizes, self.owner.max_output_bytes, set(self.running)
            ):
                self._changed(trimmed, structural=True)
        self._changed(record, structural=record.ended)

    def _changed(self, record: CellRecord, structural: bool) -> None:
        self.unsaved[record.id] = record
        self.unsynced[record.id] = record
        self._file_due = self._file_due or structural
        self._wake.set()

    async def close(self, why: str, keep: bool) -> None:
        for record in list(self.running.values()):  # the kernel is gone: say so in each
            record.end(
                {
                    "type": "error",
                    "ename": "KernelShutDown",
                    "evalue": f"The context ended while this code ran: {why}",
                    "traceback": [],
                }
            )
        self._discarded = not keep
        if keep:
            last = CellRecord(ended_cell(now_iso(), why))
            self.nb["cells"].append(last.cell)
            self._changed(last, structural=True)
        self._closing.set()
        self._wake.set()
        # The writer ends by itself (after a write in progress), never by cancellation.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._writer), 30)
        if self._discarded:
            with contextlib.suppress(Exception):
                await ensure_async(self.owner.contents_manager.delete(self.path))

    async def _keep_written(self) -> None:
        """Wait for changes; send them to the shared document if a browser has the notebook
        open, else write the file once a structural change (a run started or ended) is due.
        The context's end cuts the wait between two writes short."""
        owner = self.owner
        ended = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._discarded:
                    return
                started = time.monotonic()
                live = await self._write_changes(ended)
                if self._closing.is_set() and not self._wake.is_set():
                    return
                # A big notebook's write takes long (nbformat validates and serialises all of
                # it): waiting in proportion keeps its share of the server's time bounded.
                spent = time.monotonic() - started
                pause = owner.live_interval if live else owner.save_interval
                await asyncio.wait({ended}, timeout=max(pause, spent / WRITE_SHARE))
        finally:
            ended.cancel()

    async def _write_changes(self, ended: asyncio.Future) -> bool:
        """One update; whether it went to a shared document (a browser has it open)."""
        live = False
        try:
            live = await self._update_live()
            if self._file_due and (not live or self._closing.is_set()):
                await self._quiet(ended)
                await self._write_file()
            self._failed = False
        except Exception as error:
            if not self._failed:  # say it once, not at every change
                self.owner.log.warning("Could not write notebook %s: %s", self.path, error)
            self._failed = True
        return live

    async def _quiet(self, ended: asyncio.Future) -> None:
        """Wait until no run has gone on for `QUIET_SECONDS` (a file write delays the runs it
        overlaps), but no more than `MAX_WRITE_DELAY`, and not once the context has ended."""
        deadline = time.monotonic() + MAX_WRITE_DELAY
        while not ended.done():
            now = time.monotonic()
            quiet_for = now - self._last_run
            if now >= deadline or (not self.running and quiet_for >= QUIET_SECONDS):
                return
            wait = QUIET_SECONDS if self.running else QUIET_SECONDS - quiet_for
            await asyncio.wait({ended}, timeout=min(wait, deadline - now))

    async def _update_live(self) -> bool:
        """Copy changes into the notebook's shared document; False when nobody has it open."""
        if self.owner.live_documents is None or self.saved_at is None:
            return False
        document = await self.owner.live_documents(self.path)
        if document is None:
            self.live = None
            return False
        from .live import LiveCopy

        if self.live is None or self.live.document is not document:
            self.live = LiveCopy(document)
            # A document loaded from the file has our saved cells: find them, then add ours.
            self.unsynced = {**self.unsaved, **self.running, **self.unsynced}
        records, self.unsynced = self.unsynced, {}
        self.live.apply(records.values())
        self.unsaved.clear()
        self._file_due = False
        return True

    async def _write_file(self) -> None:
        manager = self.owner.contents_manager
        self.owner.check_inside_root(self.path)  # its folder too, before creating it
        await self.owner.ensure_folder()
        if self.saved_at is not None:
            current = await _stat(manager, self.path)
            if current is not None and current["last_modified"] != self.saved_at:
                model = await ensure_async(manager.get(self.path, content=True, type="notebook"))
                self._merge_into(model["content"])
        self._file_due = False
        pending, self.unsaved = self.unsaved, {}
        try:
            model = {"type": "notebook", "format": "json", "content": self.nb}
            saved = await ensure_async(manager.save(model, self.path))
        except BaseException:
            self.unsaved = {**pending, **self.unsaved}
            self._file_due = True
            raise
        self.saved_at = saved["last_modified"]
        if self.live is None:
            # A document opened from now on is loaded from this file: only what changes after
            # it (in `unsaved`) and runs in progress need copying into it.
            self.unsynced.clear()

    def _merge_into(self, nb: dict[str, Any]) -> None:
        """Someone else wrote the file: it becomes our notebook, with our cells changed since
        our last write (and running ones) put back by id, or appended when not in it."""
        cells = nb["cells"]
        index = {cell.get("id"): i for i, cell in enumerate(cells)}
        for record in {**self.unsaved, **self.running}.values():
            if record.id in index:
                cells[index[record.id]] = record.cell
            else:
                cells.append(record.cell)
        ours = {
            cell["id"]: outputs_size(cell)
            for cell in cells
            if cell["cell_type"] == "code" and AGENT_KEY in cell.get("metadata", {})
        }
        self.sizes = ours
        self.nb = nb


async def _stat(manager: Any, path: str) -> dict[str, Any] | None:
    try:
        return await ensure_async(manager.get(path, content=False))
    except HTTPError as error:
        if error.status_code == 404:
            return None
        raise


def collaboration_documents(serverapp: Any) -> Callable[[str], Any] | None:
    """The shared-document lookup of jupyter-collaboration when it runs in this server."""
    point = serverapp.extension_manager.extension_points.get("jupyter_server_ydoc")
    extension = getattr(point, "app", None)
    if extension is None or not hasattr(extension, "get_document"):
        return None

    async def live_document(path: str) -> Any:
        return await extension.get_document(
            path=path, content_type="notebook", file_format="json", copy=False
        )

    return live_document
