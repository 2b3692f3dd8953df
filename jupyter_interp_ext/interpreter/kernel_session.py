"""The kernel-message session of this extension's own kernel clients.

jupyter_client's `Session.deserialize` turns every date string in a message's `header` and
`parent_header` into a `datetime` with dateutil: two parses per message, five messages per `1+1`
run, the largest single cost of a run in the server's profile after the sockets themselves.
Nothing here needs them as datetimes (a stream event's timestamp is read with the standard
library's C parser), so this session leaves them as the strings the kernel sent and otherwise
checks and unpacks messages exactly as jupyter_client does: signature, replay, protocol version.
A big `stream` message's text is the one exception: it stays as the kernel encoded it
(`RawText`), to be spliced into events without a decode and an encode.
"""

from __future__ import annotations

from datetime import datetime
from hmac import compare_digest
from typing import Any

from jupyter_client.adapter import adapt
from jupyter_client.session import Session

from .raw_text import SPLICE_FROM_BYTES, stream_content

HEADER_PARTS = 5  # signature, header, parent header, metadata, content


class TextDateSession(Session):
    """A Session whose messages keep their header dates as ISO 8601 strings."""

    def deserialize(
        self, msg_list: list[Any], content: bool = True, copy: bool = True
    ) -> dict[str, Any]:
        if not copy:  # pyzmq Frames: the first parts are read as bytes, buffers stay views
            msg_list = [bytes(part.bytes) for part in msg_list[:HEADER_PARTS]] + list(
                msg_list[HEADER_PARTS:]
            )
        if len(msg_list) < HEADER_PARTS:
            raise TypeError(f"malformed message, must have at least {HEADER_PARTS} elements")
        if self.auth is not None:
            signature = msg_list[0]
            if not signature:
                raise ValueError("Unsigned Message")
            if signature in self.digest_history:
                raise ValueError(f"Duplicate Signature: {signature!r}")
            if content:
                self._add_digest(signature)
            if not compare_digest(signature, self.sign(msg_list[1:HEADER_PARTS])):
                raise ValueError(f"Invalid Signature: {signature!r}")
        header = self.unpack(msg_list[1])
        body = msg_list[4]
        if content:
            body = _spliced_stream(header, body) or self.unpack(body)
        message = {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": self.unpack(msg_list[2]),
            "metadata": self.unpack(msg_list[3]),
            "content": body,
            "buffers": [memoryview(part) for part in msg_list[HEADER_PARTS:]],
        }
        return adapt(message)


def _spliced_stream(header: dict[str, Any], content: bytes) -> dict[str, Any] | None:
    """A big stream message's content with its text left as the kernel encoded it."""
    if header.get("msg_type") != "stream" or len(content) < SPLICE_FROM_BYTES:
        return None
    spliced = stream_content(content)
    if spliced is None:
        return None
    name, text = spliced
    return {"name": name, "text": text}


def session_like(session: Session) -> TextDateSession:
    """A TextDateSession that signs and checks messages as `session` does (same key and
    scheme), with its own session id."""
    return TextDateSession(
        key=session.key,
        signature_scheme=session.signature_scheme,
        username=session.username,
        packer=session.packer,
        unpacker=session.unpacker,
    )


def header_time(value: Any) -> datetime | None:
    """A header date as a datetime, whichever session read the message (None if absent)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:  # Python 3.10's parser does not take a trailing Z
            return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            return None
    return None
