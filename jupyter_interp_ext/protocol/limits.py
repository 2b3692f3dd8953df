"""The first N bytes plus a notice: every byte limit on output (runs, commands, notebook cells,
process logs) cuts the same way and says so in the same words."""

from __future__ import annotations

from pathlib import Path


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def utf8_prefix(text: str, limit: int) -> str:
    """The longest start of `text` whose UTF-8 form fits in `limit` bytes (whole characters;
    only the part that can fit is ever encoded)."""
    head = text[:limit]
    if head.isascii():
        return head
    return head.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def truncation_notice(dropped: int, limit: int) -> str:
    """The one wording of "output was cut", wherever a byte limit cut it."""
    return f"[output truncated: {dropped} bytes dropped after the {limit}-byte limit]"


class CappedBytes:
    """The first `limit` bytes of an output, and a count of the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if room > 0:
            self.parts.append(data[:room])
            self.size += min(room, len(data))
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        text = b"".join(self.parts).decode("utf-8", "replace")
        if self.dropped:
            text += "\n" + truncation_notice(self.dropped, self.limit)
        return text


def read_capped(path: Path, limit: int) -> str:
    """An output file as text, cut (with a notice) past `limit` bytes ("" if there is none)."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
            size = path.stat().st_size
    except FileNotFoundError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    if size > limit:
        text += "\n" + truncation_notice(size - limit, limit)
    return text
