"""The server's long-lived objects kept out of the garbage collector's full passes.

A Jupyter server with this extension holds some 400,000 objects made as it starts (modules,
classes, traits, schemas, the MCP SDK's models) that live as long as the process does.
CPython's collector walks every one of them in each full (oldest generation) pass, and with
many contexts busy, short runs set off a full pass every few seconds: about 200 ms each, with
every stream of the server stalled meanwhile, and 10-15% of the server's CPU per run
(measured with 8 contexts busy, benchmarks/concurrency.py). `gc.freeze()` moves what lives at
that moment into a generation the collector skips; everything made later is collected as
before. What is garbage at that moment is collected first, so that it is not kept for good.
"""

from __future__ import annotations

import gc
import logging


def freeze_long_lived(log: logging.Logger) -> None:
    """Collect what is garbage now, then keep every object still alive out of later passes."""
    gc.collect()
    gc.freeze()
    log.debug("%d long-lived objects kept out of garbage collection", gc.get_freeze_count())
