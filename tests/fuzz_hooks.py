"""Schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis

# Server-side failures the protocol answers with a 5xx on purpose: a session command that timed
# out, an OS error while touching files, a process that could not start.
EXPECTED_5XX = {"COMMAND_EXECUTION_ERROR", "FILESYSTEM_ERROR", "STREAM_START_ERROR"}


@schemathesis.check
def no_unexpected_server_error(ctx, response, case) -> None:
    """Any 5xx must be one the protocol prescribes, in the protocol's error body."""
    if response.status_code < 500:
        return
    body = response.json()
    assert body.get("code") in EXPECTED_5XX, f"unexpected {response.status_code}: {body}"
    assert body.get("httpStatus") == response.status_code, body
