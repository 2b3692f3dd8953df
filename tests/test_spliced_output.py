"""Big output text spliced from the kernel's bytes into events: the client cannot tell it from
text decoded and encoded again (same bytes, same event sizes, same output limit)."""

from __future__ import annotations

import json
import re

import orjson
import pytest

from jupyter_interp_ext.interpreter import kernel_session
from jupyter_interp_ext.interpreter.execution import EVENT_CHARS
from jupyter_interp_ext.protocol.sse import encode

TEXTS = [  # what the kernel prints, as Python expressions
    "'x' * 3_000_000",
    "'a\\tb\\\\c\\r\\n' * 700_000",  # escapes, pieces cut between them
    "'q\"' * 600_000",  # quotes: checked to be escaped, then spliced
    "'é' * 1_100_000",  # not ASCII: decoded
    "'plain\\n' * 300_000 + '\\x1b[0m' + 'tail\\n' * 300_000",  # spliced, then decoded
]


async def raw_events(jp_fetch, context_id: str, code: str) -> list[bytes]:
    response = await jp_fetch(
        "sandbox",
        "api",
        "execute",
        "code",
        method="POST",
        body=json.dumps({"context_id": context_id, "code": code}),
        request_timeout=120,
    )
    return re.findall(rb"^data: (.*)$", response.body, re.MULTILINE)


def without_time(body: bytes) -> bytes:
    return re.sub(rb'"timestamp":[0-9.]+', b"", body)


@pytest.mark.slow
@pytest.mark.parametrize("expression", TEXTS)
async def test_clients_get_the_same_bytes_spliced_or_not(api, jp_fetch, monkeypatch, expression):
    context_id = (await api.create("python"))["contextId"]
    code = f"print({expression})"
    spliced = await raw_events(jp_fetch, context_id, code)
    monkeypatch.setattr(kernel_session, "SPLICE_FROM_BYTES", 1 << 62)  # decode everything
    decoded = await raw_events(jp_fetch, context_id, code)
    assert list(map(without_time, spliced[:-1])) == list(map(without_time, decoded[:-1]))
    events = [orjson.loads(body) for body in spliced]
    assert [encode(event) for event in events] == spliced  # as encoding them writes them
    stdout = [e["text"] for e in events if e["type"] == "stdout"]
    assert all(len(text) == EVENT_CHARS for text in stdout[:-1])
    assert "".join(stdout) == eval(expression) + "\n"


@pytest.mark.slow
async def test_the_output_limit_cuts_spliced_text_at_the_same_place(api, jp_serverapp):
    limit = 2 * EVENT_CHARS + 5
    jp_serverapp.web_app.settings["interp_execution_manager"].max_output_bytes = limit
    context_id = (await api.create("python"))["contextId"]
    events = await api.run(context_id, "print('ab\\\\\\n' * 1_000_000)")
    stdout = "".join(e["text"] for e in events if e["type"] == "stdout")
    assert stdout == ("ab\\\n" * 1_000_000)[:limit]
    dropped = 4_000_001 - limit
    assert f"{dropped} bytes dropped after the {limit}-byte limit" in events[-2]["text"]
