"""The server's logger makes only the records one of its handlers writes."""

from __future__ import annotations

import io
import logging

from jupyter_interp_ext.app import raise_to_what_handlers_take


def logger_with(name: str, *levels: int) -> tuple[logging.Logger, list[io.StringIO]]:
    log = logging.getLogger(name)
    log.propagate, log.handlers = False, []
    log.setLevel(logging.DEBUG)  # as traitlets leaves an application's logger
    streams = []
    for level in levels:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setLevel(level)
        log.addHandler(handler)
        streams.append(stream)
    return log, streams


def test_debug_records_no_handler_writes_are_not_made():
    log, (stream,) = logger_with("interp-test-info", logging.INFO)
    raise_to_what_handlers_take(log)
    assert not log.isEnabledFor(logging.DEBUG)
    log.debug("dropped")
    log.info("kept")
    assert stream.getvalue() == "kept\n"


def test_a_handler_that_takes_debug_still_gets_it():
    log, (info, debug) = logger_with("interp-test-debug", logging.INFO, logging.DEBUG)
    raise_to_what_handlers_take(log)
    log.debug("detail")
    assert (info.getvalue(), debug.getvalue()) == ("", "detail\n")


def test_a_logger_that_passes_records_up_is_left_alone():
    log, _ = logger_with("interp-test-propagate", logging.WARNING)
    log.propagate = True  # its parents' handlers may want every record
    raise_to_what_handlers_take(log)
    assert log.level == logging.DEBUG
