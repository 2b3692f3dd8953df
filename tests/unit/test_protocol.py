"""The wire format's pure parts: validators, limits, MIME names, event framing."""

from __future__ import annotations

import json

import pytest

from jupyter_interp_ext.protocol.errors import ProtocolError
from jupyter_interp_ext.protocol.limits import (
    CappedBytes,
    read_capped,
    truncation_notice,
    utf8_prefix,
    utf8_size,
)
from jupyter_interp_ext.protocol.mimes import CHART_MIME, FORMATS, RESULT_KEYS
from jupyter_interp_ext.protocol.sse import frame
from jupyter_interp_ext.protocol.validation import (
    CommandRequest,
    check_id,
    decode_json,
    optional_env,
    optional_milliseconds,
    required_str,
)


def fields(error: ProtocolError) -> list[str]:
    return [e["field"] for e in error.body()["context"]["validationErrors"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "command"),
        ({"command": 1}, "command"),
        ({"command": "ls", "timeoutMs": -1}, "timeoutMs"),
        ({"command": "ls", "timeoutMs": "soon"}, "timeoutMs"),
        ({"command": "ls", "env": {"A B": "1"}}, "env.A B"),
        ({"command": "ls", "env": ["A"]}, "env"),
        ({"command": "ls", "origin": "robot"}, "origin"),
        ({"command": "ls", "processId": "a/b"}, "processId"),
    ],
)
def test_a_bad_command_body_names_its_field(body, field):
    with pytest.raises(ProtocolError) as refused:
        CommandRequest.parse(body)
    assert refused.value.status == 400 and fields(refused.value) == [field]


def test_a_good_command_body_reads_as_sent():
    request = CommandRequest.parse(
        {"command": "ls", "timeoutMs": 1500, "env": {"A": "1", "B": None}, "background": True}
    )
    assert (request.command, request.timeout, request.background) == ("ls", 1.5, True)
    assert request.env == {"A": "1"}  # null means "leave it unset"


def test_blank_commands_and_ids_are_refused():
    with pytest.raises(ProtocolError) as blank:
        CommandRequest.parse({"command": "   "})
    assert blank.value.code == "INVALID_COMMAND"
    assert check_id("proc-1_a.b", "id") == "proc-1_a.b"
    with pytest.raises(ProtocolError):
        check_id("../x", "id")


def test_scalars_and_json():
    assert required_str({"a": ""}, "a") == ""
    with pytest.raises(ProtocolError):
        required_str({"a": ""}, "a", allow_empty=False)
    assert optional_milliseconds({}, "t") is None
    assert optional_milliseconds({"t": 250}, "t") == 0.25
    assert optional_env({"e": {"X": "1"}}, "e") == {"X": "1"}
    assert decode_json(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(ProtocolError):
        decode_json(b"{not json")
    with pytest.raises(ProtocolError):
        decode_json(b"[" * 10_000 + b"]" * 10_000)  # nested past any sane depth


def test_limits_cut_whole_characters_and_say_so(tmp_path):
    assert utf8_size("aé€𝄞") == 10
    assert [utf8_prefix("aé€𝄞", n) for n in (1, 2, 3, 6, 10)] == ["a", "a", "aé", "aé€", "aé€𝄞"]
    capped = CappedBytes(4)
    for part in (b"ab", b"cdef", b"g"):
        capped.add(part)
    assert capped.text() == "abcd\n" + truncation_notice(3, 4)
    log = tmp_path / "out"
    log.write_bytes(b"0123456789")
    assert read_capped(log, 4) == "0123\n" + truncation_notice(6, 4)
    assert read_capped(tmp_path / "none", 4) == ""


def test_mime_names_map_both_ways():
    assert all(RESULT_KEYS[mime] == name for name, mime in FORMATS.items())
    assert RESULT_KEYS[CHART_MIME] == "chart" and RESULT_KEYS["image/png"] == "png"


def test_events_are_framed_as_ascii_json():
    framed = frame({"type": "stdout", "text": "héllo 𝄞\n"})
    assert framed.isascii() and framed.startswith(b"data: ") and framed.endswith(b"\n\n")
    assert json.loads(framed[6:]) == {"type": "stdout", "text": "héllo 𝄞\n"}
    assert frame({"n": 1}) == b'data: {"n":1}\n\n'
