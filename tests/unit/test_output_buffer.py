"""A process's output buffer: bounded memory, and followers resume where they were."""

from __future__ import annotations

from jupyter_interp_ext.shells.processes import OutputBuffer


def test_the_buffer_keeps_the_latest_characters_and_their_offsets():
    buffer = OutputBuffer(limit=5)
    for seq, text in enumerate(["abc", "def", "gh"], start=1):
        buffer.append(seq, text)
    assert buffer.text() == "defgh"
    assert (buffer.total, buffer.size, buffer.start) == (8, 5, 3)
    assert [(c.seq, c.offset, c.text) for c in buffer.chunks] == [(2, 3, "def"), (3, 6, "gh")]


def test_a_chunk_is_cut_when_only_part_of_it_fits():
    buffer = OutputBuffer(limit=4)
    buffer.append(1, "abcdef")
    assert [(c.seq, c.offset, c.text) for c in buffer.chunks] == [(1, 2, "cdef")]


def test_followers_get_what_came_after_what_they_saw():
    buffer = OutputBuffer(limit=100)
    for seq in (1, 3, 5):
        buffer.append(seq, f"<{seq}>")
    assert [c.seq for c in buffer.after(0)] == [1, 3, 5]
    assert [c.seq for c in buffer.after(3)] == [5]
    assert buffer.after(5) == []
