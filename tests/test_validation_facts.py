"""The patterns the OpenAPI description states are the ones the validators apply.

The description takes them from `validation.py`; where a validator checks a fact without its
pattern (base64, for speed), both are compared here on many strings. tests/test_fuzz.py checks
the same agreement through a live server.
"""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp_ext.handlers.openapi import document
from jupyter_interp_ext.protocol.errors import ProtocolError
from jupyter_interp_ext.protocol.validation import (
    BASE64_PATTERN,
    MAX_PATH_CHARS,
    NOT_BLANK_PATTERN,
    decode_base64,
    is_blank,
)

BASE64 = re.compile(BASE64_PATTERN)


def accepts_base64(text: str) -> bool:
    try:
        decode_base64(text, "content")
    except ProtocolError:
        return False
    return True


@given(st.text(alphabet="AZaz09+/=\t\n\r -_", max_size=16))
def test_base64_validator_and_pattern_agree(text):
    assert accepts_base64(text) == bool(BASE64.match(text))


@given(st.binary(max_size=64), st.integers(0, 80))
def test_base64_as_clients_write_it_is_accepted(data, wrap):
    encoded = base64.b64encode(data).decode()
    if wrap:  # as `base64` wraps its lines
        encoded = "\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    assert decode_base64(encoded, "content") == data


@given(st.text(max_size=8))
def test_blank_check_and_pattern_agree(text):
    if "\x00" not in text:
        assert is_blank(text) == (re.match(NOT_BLANK_PATTERN, text) is None)


def test_the_description_states_the_validators_facts():
    body = document("/sandbox")["paths"]["/api/read"]["post"]["requestBody"]
    path = body["content"]["application/json"]["schema"]["properties"]["path"]
    assert (path["maxLength"], path["pattern"]) == (MAX_PATH_CHARS, NOT_BLANK_PATTERN)
