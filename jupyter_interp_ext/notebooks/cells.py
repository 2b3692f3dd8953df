"""A context's record as nbformat: one code cell per run, built from the kernel's messages.

Nothing here does I/O; `notebooks.py` decides when and where cells are written. Every cell and
output is valid nbformat 4.5 as built, so the notebook is valid at every write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from nbformat import v4

from jupyter_interp_ext.interpreter.raw_text import RawText
from jupyter_interp_ext.protocol.events import RUN_COMPLETE
from jupyter_interp_ext.protocol.limits import utf8_prefix, utf8_size
from jupyter_interp_ext.protocol.timestamps import now_iso

# Cell metadata key marking the cells this extension wrote (the others are a person's).
AGENT_KEY = "jupyter_interp_ext"


def output_size(output: dict[str, Any]) -> int:
    """Bytes an output takes in the notebook (text as UTF-8, JSON values as JSON)."""
    kind = output["output_type"]
    if kind == "stream":
        return sum(utf8_size(chunk) for chunk in output["text"])
    if kind == "error":
        return utf8_size(output["evalue"]) + sum(utf8_size(line) for line in output["traceback"])
    return sum(
        utf8_size(value) if isinstance(value, str) else len(json.dumps(value))
        for value in output.get("data", {}).values()
    )


def stream_output(name: str, text: str) -> dict[str, Any]:
    """A stream output whose text is a list of chunks (valid nbformat: a multiline string may
    be a list), so that appending to a long stream never copies what came before."""
    return {"output_type": "stream", "name": name, "text": [text]}


def outputs_size(cell: dict[str, Any]) -> int:
    return sum(output_size(output) for output in cell.get("outputs", ()))


class CellRecord:
    """A cell this extension keeps up to date; `revision` changes whenever its outputs change
    other than by growing at the end (a live copy must then be replaced, not extended)."""

    ended = True  # a cell that is not a run in progress

    def __init__(self, cell: dict[str, Any]) -> None:
        self.cell = cell
        self.revision = 0

    @property
    def id(self) -> str:
        return self.cell["id"]


class RunRecord(CellRecord):
    """The code cell of one run: its source, outputs as the kernel sends them, execution count.

    A run keeps at most `max_bytes` of output in the notebook; what does not fit is counted and
    a final note says so (the API itself delivers the whole output).
    """

    def __init__(
        self, code: str, max_bytes: int, on_change: Callable[[RunRecord], None] | None = None
    ) -> None:
        super().__init__(
            {
                # What nbformat's new_code_cell builds, without validating it (a run's cost).
                "id": uuid.uuid4().hex[:8],
                "cell_type": "code",
                "metadata": {AGENT_KEY: {"ran_by": "api", "started": now_iso()}},
                "execution_count": None,
                "source": code,
                "outputs": [],
            }
        )
        self.max_bytes = max_bytes
        self.on_change = on_change
        self.size = 0
        self.dropped = 0
        self.ended = False
        self._clear_on_next_output = False
        self._displays: dict[str, list[dict[str, Any]]] = {}

    def add(self, msg: dict[str, Any]) -> None:
        """Take one iopub message of this run."""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "execute_input":
            self.cell["execution_count"] = content.get("execution_count")
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_on_next_output = True
            else:
                self._clear()
        elif kind == "update_display_data":
            self._update_display(content)
        elif kind == "stream":
            self._add_text(content.get("name", "stdout"), content.get("text", ""))
        elif kind in ("execute_result", "display_data", "error"):
            self._add_output(_rich_output(kind, content), content)
        else:
            return
        if self.on_change is not None:
            self.on_change(self)

    def end(self, terminal: dict[str, Any] | None) -> None:
        """The run is over; `terminal` is its last API event (None: it ended without one)."""
        if self.ended:
            return
        self.ended = True
        outputs = self.cell["outputs"]
        if self.dropped:
            note = (
                f"\n[{self.dropped} more bytes of output are not kept in this notebook "
                f"(at most {self.max_bytes} per run); the API delivered them]\n"
            )
            outputs.append(stream_output("stderr", note))
        if terminal is not None and terminal["type"] == RUN_COMPLETE:
            if self.cell["execution_count"] is None:
                self.cell["execution_count"] = terminal.get("execution_count")
        elif terminal is not None and not any(o["output_type"] == "error" for o in outputs):
            # Ended by the server (timeout, disconnect, kernel lost): no error came from the
            # kernel, so the notebook says why here.
            outputs.append(
                {
                    "output_type": "error",
                    "ename": terminal.get("ename", "Error"),
                    "evalue": terminal.get("evalue", ""),
                    "traceback": list(terminal.get("traceback") or []),
                }
            )
        self.cell["metadata"][AGENT_KEY]["ended"] = now_iso()
        if self.on_change is not None:
            self.on_change(self)

    def _room(self) -> int:
        return max(0, self.max_bytes - self.size)

    def add_text(self, stream: str, text: RawText, size: int | None) -> None:
        """Take the text of one stream message the run kept as the kernel encoded it (`size`
        bytes in UTF-8, if the run counted them all): decoded only as far as this notebook
        keeps it."""
        if self._clear_on_next_output:
            self._clear()
        kept, chars = text.prefix(self._room())
        if size is None or chars is None:
            self._add_text(stream, text.text())
        else:
            self.dropped += size - chars
            self._add_text(stream, kept.text())
        if self.on_change is not None:
            self.on_change(self)

    def _add_text(self, name: str, text: str) -> None:
        if self._clear_on_next_output:
            self._clear()
        size = utf8_size(text)
        if size > self._room():
            text = utf8_prefix(text, self._room())
            kept = utf8_size(text)
            self.dropped += size - kept
            size = kept
        if not text:
            return
        self.size += size
        outputs = self.cell["outputs"]
        last = outputs[-1] if outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"].append(text)
        else:
            outputs.append(stream_output(name, text))

    def _add_output(self, output: dict[str, Any], content: dict[str, Any]) -> None:
        if self._clear_on_next_output:
            self._clear()
        size = output_size(output)
        if size > self._room():
            self.dropped += size  # a rich output is kept whole or not at all
            return
        self.size += size
        self.cell["outputs"].append(output)
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id:
            self._displays.setdefault(display_id, []).append(output)

    def _update_display(self, content: dict[str, Any]) -> None:
        """`update_display_data` replaces the data of every output shown with that display id
        in this run."""
        display_id = (content.get("transient") or {}).get("display_id")
        if not isinstance(display_id, str):
            return
        for output in self._displays.get(display_id, []):
            before = output_size(output)
            output["data"] = content.get("data", {})
            output["metadata"] = content.get("metadata", {})
            self.size += output_size(output) - before
            self.revision += 1

    def _clear(self) -> None:
        self._clear_on_next_output = False
        self.cell["outputs"] = []
        self.size = 0
        self._displays.clear()
        self.revision += 1


def _rich_output(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    if kind == "error":
        return {
            "output_type": "error",
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": list(content.get("traceback") or []),
        }
    output = {
        "output_type": kind,
        "data": content.get("data", {}),
        "metadata": content.get("metadata", {}),
    }
    if kind == "execute_result":
        output["execution_count"] = content.get("execution_count")
    return output


def trim_oldest(
    cells: list[dict[str, Any]], sizes: dict[str, int], budget: int, keep: set[str]
) -> list[CellRecord]:
    """Replace the outputs of this extension's oldest cells with a note until its cells' outputs
    fit `budget`; `sizes` (cell id → output bytes, oldest first) is kept up to date and cells in
    `keep` (runs in progress) are left alone. A person's cells are never touched."""
    total = sum(sizes.values())
    if total <= budget:
        return []
    by_id = {cell.get("id"): cell for cell in cells}
    trimmed: list[CellRecord] = []
    for cell_id in list(sizes):
        if total <= budget:
            break
        cell = by_id.get(cell_id)
        if cell_id in keep or cell is None or not sizes[cell_id]:
            continue
        note = stream_output(
            "stderr",
            f"[{sizes[cell_id]} bytes of output trimmed: this notebook keeps at most {budget} "
            "bytes of the API's outputs, newest first]\n",
        )
        cell["outputs"] = [note]
        total -= sizes[cell_id]
        sizes[cell_id] = 0  # the note itself is not counted against the budget
        record = CellRecord(cell)
        record.revision = -1  # never the revision of a live copy: it is replaced whole
        trimmed.append(record)
    return trimmed


def new_context_notebook(
    context_id: str, language: str, kernel_name: str, display_name: str, created: str
) -> dict[str, Any]:
    """The notebook of a new context: kernel metadata for Lab, and a cell saying what it is."""
    header = v4.new_markdown_cell(
        f"# Sandbox context: {language}\n\n"
        f"Context `{context_id}` was created through the sandbox API at {created}. Each run of "
        "code through the API appears below as a cell with its outputs. This notebook is "
        "attached to the context's own kernel: cells you run here share its variables with "
        "the API's runs.",
        metadata={AGENT_KEY: {"context_id": context_id}},
    )
    return v4.new_notebook(
        cells=[header],
        metadata={
            "kernelspec": {"name": kernel_name, "display_name": display_name, "language": language},
            "language_info": {"name": language},
            AGENT_KEY: {"context_id": context_id, "created": created},
        },
    )


def ended_cell(when: str, why: str) -> dict[str, Any]:
    """The last cell of a context's notebook: when and why the context ended."""
    return v4.new_markdown_cell(
        f"**Context ended** at {when}: {why}.", metadata={AGENT_KEY: {"ended": when}}
    )
