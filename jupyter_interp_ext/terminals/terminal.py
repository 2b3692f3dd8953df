"""One of Jupyter's terminals (terminado) as the sandbox serves it: its output numbered so
that a client that reconnects resumes where it was, its readers' screen sizes, its end.

Terminado reads the terminal on the event loop and hands every read to each object in the
terminal's `clients` (JupyterLab's websockets are such clients); a `SandboxTerminal` is one
more, so what a person types in JupyterLab and what an agent types are one stream."""

from __future__ import annotations

import asyncio
import codecs
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from jupyter_interp_ext import metrics
from jupyter_interp_ext.shells.processes import Chunk, OutputBuffer

# Ctrl-C as the terminal's line discipline reads it: the foreground job gets SIGINT.
INTERRUPT = "\x03"


@dataclass(frozen=True)
class Exited:
    """How the terminal's program ended (`signal`: the number that ended it, if one did)."""

    code: int
    signal: int | None = None

    def to_json(self) -> dict[str, Any]:
        exit: dict[str, Any] = {"code": self.code, "timedOut": False}
        if self.signal is not None:
            exit["signal"] = self.signal
        return exit

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return str(self.signal)


@dataclass(frozen=True)
class Truncated:
    """Some output after the reader's cursor is no longer kept."""


class SandboxTerminal:
    """A Jupyter terminal's output since the sandbox first saw it (what terminado had kept
    before that included), bounded to `limit` characters, and the sizes its readers asked
    for (the terminal takes the smallest, as Jupyter sizes a terminal shown in two places)."""

    def __init__(self, name: str, pty: Any, limit: int) -> None:
        self.name = name
        self.pty = pty  # terminado's PtyWithClients
        self.output = OutputBuffer(limit)
        self.seq = 0
        self.exited: Exited | None = None
        self.sizes: dict[object, tuple[int, int]] = {}
        self._changed = asyncio.Event()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for text in pty.read_buffer:
            self._record(text)
        pty.clients.append(self)

    @property
    def pid(self) -> int:
        return int(self.pty.ptyproc.pid)

    @property
    def alive(self) -> bool:
        return self.exited is None

    @property
    def cursor(self) -> str:
        """Where a reader that has everything so far is."""
        return str(self.seq)

    # Terminado's side (it calls these on every client of the terminal).

    @property
    def size(self) -> tuple[int | None, int | None]:
        """The smallest (rows, cols) a reader asked for; none: this client does not count."""
        if not self.sizes:
            return None, None
        return min(r for r, _ in self.sizes.values()), min(c for _, c in self.sizes.values())

    def on_pty_read(self, text: str) -> None:
        self._record(text)

    def on_pty_died(self) -> None:
        process = self.pty.ptyproc
        code, sig = process.exitstatus, process.signalstatus
        self.exited = Exited(128 + sig if code is None and sig else code or 0, sig)
        self._wake()

    def _record(self, text: str) -> None:
        if text:
            self.seq += 1
            self.output.append(self.seq, text)
            metrics.TERMINAL_OUTPUT_CHARS.inc(len(text))
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # The sandbox's side.

    def write(self, data: bytes | str) -> None:
        """Type into the terminal (bytes are UTF-8, possibly split across calls)."""
        if not self.alive:
            return
        text = data if isinstance(data, str) else self._decoder.decode(data)
        if text:
            self.pty.ptyproc.write(text)

    def interrupt(self) -> None:
        self.write(INTERRUPT)

    def resize(self, reader: object, rows: int, cols: int) -> None:
        """`reader` shows the terminal at this size; the terminal fits the smallest one."""
        self.sizes[reader] = (rows, cols)
        if self.alive:
            self.pty.resize_to_smallest()

    def forget(self, reader: object) -> None:
        self.sizes.pop(reader, None)

    def since(self, cursor: str | None) -> tuple[int, bool, list[Chunk]]:
        """Where a reader at `cursor` is (None, or a cursor not ours: before all that is
        kept), whether some output after it is gone, and the output kept after it."""
        seq = int(cursor) if cursor is not None and cursor.isdigit() else -1
        if not 0 <= seq <= self.seq:
            chunks = list(self.output.chunks)
            start = chunks[0].seq - 1 if chunks else self.seq
            return start, self.output.dropped_seq > start or cursor is not None, chunks
        return seq, self.output.dropped_seq > seq, self.output.after(seq)

    async def follow(self, cursor: str | None) -> AsyncIterator[Chunk | Truncated | Exited]:
        """The output after `cursor`, then live output as it comes, then the end."""
        seen, lost, chunks = self.since(cursor)
        while True:
            changed = self._changed
            if lost:
                yield Truncated()
            for chunk in chunks:
                yield chunk
                seen = chunk.seq
            if seen >= self.seq:
                if self.exited is not None:
                    yield self.exited
                    return
                await changed.wait()
            lost = self.output.dropped_seq > seen
            chunks = self.output.after(seen)
