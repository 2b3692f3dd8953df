"""Putting a context's cells into the shared document of a notebook open with RTC.

jupyter-collaboration keeps one shared (Yjs) document per open notebook, synchronised with every
browser that shows it and saved to the file by the collaboration server. A running cell's new
output is sent as an append to that document, never as a rewrite of the cell, so a long run
costs each browser only the new text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Map, Text

from .cells import CellRecord

log = logging.getLogger(__name__)


@dataclass
class _Held:
    """What the shared document holds of one cell."""

    ycell: Map
    revision: int
    outputs: int  # outputs copied
    chunks: int  # text chunks copied of the last output, when it is a stream


class LiveCopy:
    """The cells this extension wrote into one shared notebook document."""

    def __init__(self, document: Any) -> None:
        self.document = document  # a jupyter_ydoc YNotebook
        self._held: dict[str, _Held] = {}
        self._removed: set[str] = set()

    def apply(self, records: Iterable[CellRecord]) -> None:
        """Bring the document up to date with `records`, in one transaction (one update for
        the browsers). A cell a person deleted from the document stays deleted."""
        with self.document.ydoc.transaction():
            for record in records:
                if record.id in self._removed:
                    continue
                try:
                    self._apply(record)
                except Exception:  # the cell was removed from the document under us
                    log.debug("Cell %s is no longer in the shared document", record.id)
                    self._held.pop(record.id, None)
                    self._removed.add(record.id)

    def _apply(self, record: CellRecord) -> None:
        cell = record.cell
        held = self._held.get(record.id)
        if held is None:
            held = self._place(record)
        elif cell["cell_type"] == "code":
            if held.revision != record.revision:
                _replace_outputs(held.ycell, cell["outputs"])
            else:
                _extend_outputs(held, cell["outputs"])
        if cell["cell_type"] == "code":
            if held.ycell.get("execution_count") != cell["execution_count"]:
                held.ycell["execution_count"] = cell["execution_count"]
            state = "idle" if record.ended else "running"
            if held.ycell.get("execution_state") != state:
                held.ycell["execution_state"] = state
        held.revision = record.revision
        _mark_copied(held, cell.get("outputs", []))

    def _place(self, record: CellRecord) -> _Held:
        """The cell's place in the document: found by id (the file the document was loaded
        from had it), else appended."""
        cells = self.document.ycells
        for ycell in cells:
            if ycell.get("id") == record.id:
                if record.cell["cell_type"] == "code":
                    _replace_outputs(ycell, record.cell["outputs"])
                break
        else:
            self.document.append_cell(record.cell)
            ycell = cells[len(cells) - 1]
        held = _Held(ycell, record.revision, 0, 0)
        self._held[record.id] = held
        return held


def _youtput(output: dict[str, Any]) -> Map:
    """An output as the shared notebook model holds it (a stream's text is shared text)."""
    if output["output_type"] == "stream":
        return Map({**output, "text": Text("".join(output["text"]))})
    return Map(dict(output))


def _replace_outputs(ycell: Map, outputs: list[dict[str, Any]]) -> None:
    youtputs = ycell.get("outputs")
    if not isinstance(youtputs, Array):
        ycell["outputs"] = Array([_youtput(o) for o in outputs])
        return
    youtputs.clear()
    youtputs.extend([_youtput(o) for o in outputs])


def _extend_outputs(held: _Held, outputs: list[dict[str, Any]]) -> None:
    """Send what was added since the last copy: the end of a growing stream, new outputs."""
    youtputs = held.ycell["outputs"]
    if held.outputs and outputs[held.outputs - 1]["output_type"] == "stream":
        chunks = outputs[held.outputs - 1]["text"]
        if len(chunks) > held.chunks:
            text = youtputs[held.outputs - 1]["text"]
            text += "".join(chunks[held.chunks :])
    for output in outputs[held.outputs :]:
        youtputs.append(_youtput(output))


def _mark_copied(held: _Held, outputs: list[dict[str, Any]]) -> None:
    held.outputs = len(outputs)
    last = outputs[-1] if outputs else None
    held.chunks = len(last["text"]) if last is not None and last["output_type"] == "stream" else 0
