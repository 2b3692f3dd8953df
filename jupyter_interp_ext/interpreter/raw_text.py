"""Stream text kept as the kernel sent it: the body of a JSON string, never decoded.

A kernel's `stream` message carries its text as a JSON string; the event the client gets
carries the same text as a JSON string again. Where the kernel's bytes are already what the
event would hold, the server splices them into the event as they are: no 50 MB decode into a
`str`, no 50 MB encode back. That is so for ASCII text whose escapes are all two bytes long
(`\\n`, `\\t`, `\\\\`, `\\"`...), which ipykernel's json and orjson packers and Deno's serde_json
all write exactly as `encode` does. Text that is not ASCII (events carry it as `\\u` escapes)
is decoded as before; so is the rest of a text from the first `\\u` escape on.

The bytes are worked on a piece at a time, as events are sent, with C-speed searches and no
copy until a piece goes into its event: every backslash starts an escape except the second of
a `\\\\` pair, and `bytes.count` finds the pairs left to right just as they were escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from jupyter_interp_ext.protocol.limits import utf8_size

# Below this size a stream message is decoded as usual: splicing saves nothing worth a branch.
SPLICE_FROM_BYTES = 64 * 1024

_STREAM_HEAD = re.compile(rb'\{\s*"name"\s*:\s*"(stdout|stderr)"\s*,\s*"text"\s*:\s*"')
_STREAM_TAIL = re.compile(rb'"\s*\}\s*$')
_UNICODE_ESCAPE = b"\\u"


@dataclass(frozen=True, slots=True)
class RawText:
    """`data[start:end]`: text as the body of a JSON string (ASCII, and quotes escaped)."""

    data: bytes
    start: int
    end: int

    def text(self) -> str:
        """The text itself (decoded only here)."""
        raw = self.data[self.start : self.end]
        return orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("ascii")

    def spliced(self, head: bytes, tail: bytes) -> bytes:
        """`head`, these bytes, `tail`: an event's JSON, made with one copy."""
        return b"".join((head, memoryview(self.data)[self.start : self.end], tail))

    def utf8_size(self) -> int:
        """The text's size in UTF-8: counted, or, past a `\\u` escape, decoded and measured."""
        if self.data.find(_UNICODE_ESCAPE, self.start, self.end) >= 0:
            return utf8_size(self.text())
        return _count_chars(self.data, self.start, self.end)

    def prefix(self, chars: int) -> tuple[RawText, int | None]:
        """The first `chars` characters (all of it if shorter) and how many it has: see
        `pieces` for what None means."""
        return next(self.pieces(chars), (RawText(self.data, self.start, self.start), 0))

    def pieces(self, chars: int) -> Iterator[tuple[RawText, int | None]]:
        """The text in pieces of `chars` characters (the last one shorter), each with its
        length, cut as slicing the decoded text would cut it, worked out one at a time. From
        a `\\u` escape on, the rest comes as one last piece of length None: to be decoded."""
        data, start, size = self.data, self.start, self.end
        while start < size and chars > 0:
            end, counted = start, 0
            while counted < chars and end < size:
                grown = _escape_end(data, start, min(size, end + chars - counted))
                if data.find(_UNICODE_ESCAPE, max(start, end - 1), grown) >= 0:
                    yield RawText(data, start, size), None
                    return
                counted += _count_chars(data, end, grown)
                end = grown
            yield RawText(data, start, end), counted
            start = end


def stream_content(content: bytes) -> tuple[str, RawText] | None:
    """A stream message's (name, text) from its packed content, if its text can be spliced."""
    head = _STREAM_HEAD.match(content)
    tail = _STREAM_TAIL.search(content, len(content) - 16)
    if head is None or tail is None or not content.isascii():
        return None
    text = RawText(content, head.end(), tail.start())
    if content.find(b'"', text.start, text.end) >= 0 and not _all_quotes_escaped(text):
        return None  # more than one string: not a plain stream message
    return head.group(1).decode(), text


def _all_quotes_escaped(text: RawText) -> bool:
    """Whether every quote in the text is escaped (after the `\\\\` pairs are taken out, a
    quote is escaped exactly when a backslash is just before it)."""
    raw = text.data[text.start : text.end].replace(b"\\\\", b"")
    return raw.count(b'"') == raw.count(b'\\"')


def _count_chars(data: bytes, start: int, end: int) -> int:
    """Characters in `data[start:end]`, which starts and ends between two-byte escapes: one
    per byte, less one per escape (its backslashes, less the pairs they make)."""
    if data.find(b"\\", start, end) < 0:
        return end - start
    backslashes = data.count(b"\\", start, end)
    pairs = data.count(b"\\\\", start, end) if data.find(b"\\\\", start, end) >= 0 else 0
    return end - start - backslashes + pairs


def _escape_end(data: bytes, start: int, end: int) -> int:
    """`end`, moved past the escape it cuts in two, if any (`start` is between escapes)."""
    if end <= start or data[end - 1] != ord("\\"):
        return end
    before = data[start:end]
    run = len(before) - len(before.rstrip(b"\\"))
    if run % 2 == 0:  # even: the run ends with a pair's second byte
        return end
    return end + (5 if data[end : end + 1] == b"u" else 1)
