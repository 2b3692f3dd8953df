"""Validation of request fields: typed reading of JSON bodies, so handlers never index raw
dicts, and the facts (patterns, limits) that the OpenAPI description states from here."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError, validation_error

MAX_DEPTH = 64  # no request of this API nests deeper than a few levels
MAX_PATH_CHARS = 4096  # PATH_MAX: no file name the system takes is longer
MAX_ID_CHARS = 128
MAX_LABELS = 16  # labels on one context, session or process
MAX_LABEL_CHARS = 256  # a label's value
# Session and process ids: they travel in URLs and headers, so no slashes, spaces or controls.
ID_CHARS = f"[A-Za-z0-9._:@+=-]{{1,{MAX_ID_CHARS}}}"
ID_PATTERN = f"^{ID_CHARS}$"
# Names a shell can export (anything else would be injected into its script).
ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
# Text fields never hold NUL (no path, command or variable can), and "not blank" means some
# character other than NUL and ASCII white space. Written so that Python and JSON Schema
# (ECMA-262) read these patterns alike.
NO_NUL_PATTERN = "^[^\\x00]*$"
_NON_BLANK_CHAR = "[^\\x00\\t\\n\\v\\f\\r ]"
NOT_BLANK_PATTERN = f"^[^\\x00]*{_NON_BLANK_CHAR}[^\\x00]*$"
# Bodies larger than this are decoded on a worker thread, not on the event loop.
THREAD_PARSE_BYTES = 64 * 1024

# Base64 as `btoa` writes it (padded), with white space anywhere, as `base64` wraps lines.
_B64_SPACE = "[\\t\\n\\r ]*"
_B64_CHAR = f"[A-Za-z0-9+/]{_B64_SPACE}"
_B64_PADDED = f"{_B64_CHAR * 2}={_B64_SPACE}={_B64_SPACE}|{_B64_CHAR * 3}={_B64_SPACE}"
BASE64_PATTERN = f"^{_B64_SPACE}(?:{_B64_CHAR * 4})*(?:{_B64_PADDED})?$"
_B64_WHITE_SPACE = re.compile("[\\t\\n\\r ]+")

_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_NON_BLANK = re.compile(_NON_BLANK_CHAR)


def is_blank(value: str) -> bool:
    """Whether a string holds nothing but white space (NUL is refused on its own)."""
    return _NON_BLANK.search(value) is None


def decode_json(raw: bytes) -> Any:
    """A body's JSON value, or the 400 that explains why there is none."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise validation_error("body", f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise _nested_too_deep() from None
    if _too_deep(value):
        raise _nested_too_deep()
    return value


def _nested_too_deep() -> ProtocolError:
    return validation_error("body", f"the body nests deeper than {MAX_DEPTH} levels")


def _too_deep(value: Any) -> bool:
    todo = [(value, 1)]
    while todo:
        current, depth = todo.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(current, dict):
            todo.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            todo.extend((item, depth + 1) for item in current)
    return False


def as_json_object(value: Any, raw: bytes, *, required: bool) -> dict[str, Any]:
    """The decoded body as an object (an empty body is `{}` if allowed)."""
    if not raw.strip():
        if required:
            raise validation_error("body", "a JSON object body is required")
        return {}
    if not isinstance(value, dict):
        raise validation_error("body", "the body must be a JSON object")
    return value


def required_str(body: dict[str, Any], field: str, *, allow_empty: bool = True) -> str:
    """A string field that must be present."""
    if field not in body or body[field] is None:
        raise validation_error(field, f"'{field}' is required")
    return _as_str(body, field, allow_empty=allow_empty)


def optional_str(body: dict[str, Any], field: str) -> str | None:
    """A string field that may be absent or null."""
    if body.get(field) is None:
        return None
    return _as_str(body, field, allow_empty=True)


def _as_str(body: dict[str, Any], field: str, *, allow_empty: bool) -> str:
    value = body[field]
    if not isinstance(value, str):
        raise validation_error(field, f"'{field}' must be a string")
    if not allow_empty and is_blank(value):
        raise validation_error(field, f"'{field}' must not be empty")
    if "\x00" in value:
        raise validation_error(field, f"'{field}' must not contain NUL bytes")
    _require_unicode(value, field)
    return value


def _require_unicode(value: str, field: str) -> None:
    """JSON can carry lone surrogates, which no file name, command or variable can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise validation_error(field, f"'{field}' is not valid Unicode text") from None


def optional_milliseconds(
    body: dict[str, Any], field: str, *, zero_means_none: bool = False
) -> float | None:
    """A positive duration in milliseconds, returned in seconds (with `zero_means_none`, 0 is
    accepted too: no limit)."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise validation_error(field, f"'{field}' must be a number of milliseconds")
    if value < 0 or (value == 0 and not zero_means_none):
        raise validation_error(field, f"'{field}' must be greater than 0")
    return value / 1000


def optional_env(body: dict[str, Any], field: str) -> dict[str, str]:
    """Environment variables: an object of string values whose names a shell can export
    (null values are dropped, as the official client does)."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation_error(field, f"'{field}' must be an object of strings")
    result: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        if not isinstance(item, str):
            raise validation_error(f"{field}.{key}", f"'{field}.{key}' must be a string")
        if "\x00" in item or "\x00" in key:
            raise validation_error(f"{field}.{key}", "names and values must not contain NUL")
        _require_unicode(key + item, f"{field}.{key}")
        result[key] = item
    validate_env_names(result, field)
    return result


def decode_base64(value: str, field: str) -> bytes:
    """The bytes of a base64 text that matches BASE64_PATTERN (checked once white space is
    gone, which is the same and much faster over megabytes)."""
    compact = _B64_WHITE_SPACE.sub("", value)
    padding = len(compact) - len(compact.rstrip("="))
    try:
        if len(compact) % 4 or padding > 2:
            raise ValueError("not padded as btoa pads")
        return base64.b64decode(compact, validate=True)  # refuses anything but digits
    except (binascii.Error, ValueError):
        error = validation_error(field, f"{field} is not valid base64")
        error.context["validationErrors"][0]["code"] = "INVALID_BASE64"
        raise error from None


def validate_env_names(env: Mapping[str, str], field: str) -> None:
    """Refuse names a shell could not export."""
    for name in env:
        if not _ENV_NAME.match(name):
            raise validation_error(f"{field}.{name}", f"'{name}' is not a valid variable name")


_ID = re.compile(ID_PATTERN)


def check_id(value: str, field: str) -> str:
    """A session or process id, or a 400 that says what an id may be."""
    if not _ID.match(value):
        raise validation_error(
            field,
            f"'{field}' must be 1-{MAX_ID_CHARS} letters, digits or . _ : @ + = - "
            "(it is used in URLs and headers)",
        )
    return value


def optional_id(body: dict[str, Any], field: str) -> str | None:
    value = optional_str(body, field)
    return None if value is None else check_id(value, field)


def optional_labels(body: dict[str, Any], field: str = "labels") -> dict[str, str]:
    """Labels a caller puts on what it creates, to find it again (the Python client marks what
    a sandbox owns): at most MAX_LABELS, names as ids, values strings of at most
    MAX_LABEL_CHARS."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise validation_error(
            field, f"'{field}' must be an object of at most {MAX_LABELS} strings"
        )
    for name, item in value.items():
        if not _ID.match(name):
            raise validation_error(
                field, f"label names must be 1-{MAX_ID_CHARS} letters, digits or . _ : @ + = -"
            )
        if not isinstance(item, str) or len(item) > MAX_LABEL_CHARS or "\x00" in item:
            raise validation_error(
                f"{field}.{name}",
                f"'{field}.{name}' must be a string of at most {MAX_LABEL_CHARS} characters",
            )
        _require_unicode(item, f"{field}.{name}")
    return dict(value)


def string_list(body: dict[str, Any], field: str) -> list[str]:
    """A list of strings (globs, names), empty when absent."""
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(field, f"'{field}' must be a list of strings")
    for item in value:
        _require_unicode(item, field)
        if "\x00" in item:
            raise validation_error(field, f"'{field}' must not contain NUL bytes")
    return list(value)


def is_whole(value: Any, least: int = 0) -> bool:
    """A JSON whole number (`2`, or `2.0`, which JSON Schema counts as an integer) >= least."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value == int(value) and value >= least


def optional_bool(body: dict[str, Any], field: str) -> bool:
    """A boolean flag, false when absent."""
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise validation_error(field, f"'{field}' must be true or false")
    return value


@dataclass(frozen=True)
class CommandRequest:
    """The body of /api/execute, /api/execute/stream and /api/process/start, validated."""

    command: str
    env: dict[str, str]
    cwd: str | None
    timeout: float | None
    process_id: str | None
    background: bool

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CommandRequest:
        command = required_str(body, "command")
        if is_blank(command):
            raise ProtocolError(
                "INVALID_COMMAND", "Command must not be empty", {"command": command}
            )
        origin = optional_str(body, "origin")
        if origin not in (None, "user", "internal"):
            raise validation_error("origin", "'origin' must be 'user' or 'internal'")
        return cls(
            command=command,
            env=optional_env(body, "env"),
            cwd=optional_str(body, "cwd"),
            timeout=optional_milliseconds(body, "timeoutMs"),
            process_id=optional_id(body, "processId"),
            background=optional_bool(body, "background"),
        )
