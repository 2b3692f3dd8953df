"""Big output text kept as the kernel encoded it (`RawText`): cut, counted and decoded as the
decoded text would be, and kept the same in a notebook."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from jupyter_client.session import Session

from jupyter_interp_ext.interpreter import kernel_session
from jupyter_interp_ext.interpreter.kernel_session import session_like
from jupyter_interp_ext.interpreter.raw_text import RawText, stream_content
from jupyter_interp_ext.notebooks.cells import RunRecord

ALPHABET = 'ab \n\t\r\b\f\\/"x'


def test_pieces_cut_and_count_as_the_decoded_text_would():
    rng = random.Random(7)
    for trial in range(4000):
        text = "".join(rng.choice(ALPHABET[: 10 + trial % 3]) for _ in range(rng.randint(0, 50)))
        spliced = stream_content(orjson.dumps({"name": "stderr", "text": text}))
        if '"' in text and trial % 2:
            continue  # with quotes the check for escaped ones is exercised, not the cutting
        assert spliced is not None, text
        name, raw = spliced
        assert (name, raw.text(), raw.utf8_size()) == ("stderr", text, len(text))
        size = rng.randint(1, 7)
        pieces = list(raw.pieces(size))
        assert [(p.text(), n) for p, n in pieces] == [
            (text[i : i + size], len(text[i : i + size])) for i in range(0, len(text), size)
        ]
        for piece, _ in pieces:  # the kernel's bytes are what encoding the piece writes
            assert piece.spliced(b"", b"") == orjson.dumps(piece.text())[1:-1]


def test_text_from_a_unicode_escape_on_is_left_to_decode():
    text = "a\tb" * 4 + "\x1b[31mred" + "c" * 9
    _, raw = stream_content(orjson.dumps({"name": "stdout", "text": text}))
    pieces = list(raw.pieces(5))
    assert [n for _, n in pieces] == [5, 5, None]
    assert "".join(p.text() for p, _ in pieces) == text
    assert raw.utf8_size() == len(text)


@pytest.mark.parametrize(
    "content",
    [
        {"name": "stdout", "text": "caf\u00e9"},  # not ASCII: events escape it
        {"text": "abc", "name": "stdout"},  # another layout
        {"name": "stdout", "text": "abc", "more": "x"},  # more than the text after it
        {"name": "display", "text": "abc"},
    ],
)
def test_other_stream_contents_are_decoded(content):
    assert stream_content(orjson.dumps(content)) is None
    assert stream_content(json.dumps(content, ensure_ascii=False).encode()) is None


def test_the_session_leaves_only_big_stream_text_undecoded():
    kernel = Session(key=b"secret")
    ours = session_like(kernel)

    def received(msg_type: str, content: dict) -> dict:
        msg = kernel.msg(msg_type, content)
        return ours.deserialize(kernel.serialize(msg)[1:])

    big = "x\n" * kernel_session.SPLICE_FROM_BYTES
    text = received("stream", {"name": "stdout", "text": big})["content"]["text"]
    assert isinstance(text, RawText) and text.text() == big
    assert received("stream", {"name": "stdout", "text": "small"})["content"]["text"] == "small"
    assert received("display_data", {"data": {"text/plain": big}})["content"]["data"] == {
        "text/plain": big
    }


def test_the_notebook_keeps_the_same_of_spliced_text():
    text = "line\twith\\escapes\n" * 3000
    raw = stream_content(orjson.dumps({"name": "stdout", "text": text}))[1]
    decoded, spliced = RunRecord("print()", 10_000), RunRecord("print()", 10_000)
    decoded.add({"msg_type": "stream", "content": {"name": "stdout", "text": text}})
    spliced.add_text("stdout", raw, raw.utf8_size())
    for record in (decoded, spliced):
        record.end({"type": "execution_complete", "execution_count": 1})
    assert spliced.cell["outputs"] == decoded.cell["outputs"]
    assert "[44000 more bytes" in spliced.cell["outputs"][-1]["text"][-1]
