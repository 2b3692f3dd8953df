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


# Refusals that depend on the server's state, not on the request's form: which kernels are
# installed, which language a context runs.
STATEFUL_FIELDS = {"language"}


@schemathesis.check
def described_data_passes_validation(ctx, response, case) -> None:
    """A request the description calls valid is never refused as malformed: the validators and
    the description agree. (Schemathesis' own positive-data check would also demand success
    where the server's state refuses a well-formed request: reading a directory, a missing
    file.)"""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return
    body = response.json()
    if body.get("code") not in ("VALIDATION_FAILED", "INVALID_COMMAND"):
        return
    fields = {e.get("field") for e in body.get("context", {}).get("validationErrors", [])}
    assert fields <= STATEFUL_FIELDS, f"a described-as-valid request was refused: {body}"
