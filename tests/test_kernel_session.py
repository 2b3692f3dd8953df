"""Our kernel clients' session reads messages as jupyter_client's does, except header dates."""

from __future__ import annotations

import pytest
from jupyter_client.session import Session

from jupyter_interp_ext.interpreter.kernel_session import header_time, session_like


def signed(sender: Session) -> list[bytes]:
    msg = sender.msg("stream", {"name": "stdout", "text": "hé"})
    return sender.serialize(msg)[1:]  # without the delimiter, as feed_identities leaves it


def test_messages_read_the_same_with_dates_as_text() -> None:
    sender = Session(key=b"secret")
    receiver = session_like(sender)
    parts = signed(sender)
    lean, full = receiver.deserialize(list(parts)), Session(key=b"secret").deserialize(parts)
    assert lean["content"] == full["content"] == {"name": "stdout", "text": "hé"}
    assert (lean["msg_type"], lean["msg_id"]) == (full["msg_type"], full["msg_id"])
    assert isinstance(lean["header"]["date"], str)
    assert header_time(lean["header"]["date"]) == full["header"]["date"]


def test_forged_unsigned_and_replayed_messages_are_refused() -> None:
    sender = Session(key=b"secret")
    receiver = session_like(sender)
    parts = signed(sender)
    receiver.deserialize(list(parts))
    with pytest.raises(ValueError, match="Duplicate Signature"):
        receiver.deserialize(list(parts))
    parts = signed(sender)
    forged = [*parts[:4], parts[4].replace(b"stdout", b"stderr")]
    with pytest.raises(ValueError, match="Invalid Signature"):
        receiver.deserialize(forged)
    with pytest.raises(ValueError, match="Unsigned"):
        receiver.deserialize([b"", *signed(sender)[1:]])
    with pytest.raises(ValueError, match="Invalid Signature"):
        receiver.deserialize(signed(Session(key=b"another key")))
