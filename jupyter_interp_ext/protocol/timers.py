"""Timers that do not keep the request that set them alive.

A timer holds the context it was made in until it is due, even once cancelled (the event loop
keeps a cancelled timer until then, or until it sweeps its heap), and Jupyter keeps each
request's handler in a context variable (`CallContext`). So every `asyncio.wait(...,
timeout=...)` or `asyncio.sleep` a request makes keeps its handler, request, connection and
buffers alive that long after the response ended, for the garbage collector to walk: with 8
contexts running short cells, about a hundred ended requests at any time. These timers run in a
context of their own instead, as does whatever `in_own_context` schedules (a task, a reader)
that outlives the request which starts it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Collection
from typing import Any, TypeVar

T = TypeVar("T")


def in_own_context(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a new, empty context: a task, reader or timer it makes holds
    that context, not the request's."""
    return contextvars.Context().run(function, *args)


def call_later(delay: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
    """`loop.call_later` in a context of its own."""
    return in_own_context(asyncio.get_running_loop().call_later, delay, callback, *args)


async def first_done(futures: Collection[asyncio.Future[Any]], timeout: float | None) -> None:
    """Wait until one of `futures` is done or `timeout` seconds have passed (None: no limit),
    as `asyncio.wait(..., return_when=FIRST_COMPLETED)` does; nothing is cancelled."""
    if any(future.done() for future in futures):
        return
    waiter = asyncio.get_running_loop().create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in futures:
        future.add_done_callback(wake)
    timer = None if timeout is None else call_later(timeout, wake)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for future in futures:
            future.remove_done_callback(wake)
