"""Kernel channels read as messages arrive, each message received, checked and parsed once.

jupyter_client's asyncio channel polls its socket anew for every message: a future, a timer
and a reader registration per `get_msg`, a large share of the server's time per run with many
busy contexts. Here a channel reads its socket from the event loop whenever it is readable, into
a queue `get_msg` takes from; whoever else must see each message (`on_message`: the kernel's
activity, see `activity.py`) sees it as it is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from jupyter_interp_ext.protocol.timers import in_own_context

# Messages taken from the socket in one turn of the loop before others get theirs.
BATCH = 64


class PushedChannel(AsyncZMQSocketChannel):
    """An asyncio kernel channel whose socket is read when readable, not polled per message.

    Messages wait in a queue as bounded as the socket's own (its receive high-water mark), so
    a channel nobody reads for a while holds what it held before, no more."""

    def __init__(self, socket: zmq.asyncio.Socket, session: Session, loop: Any = None) -> None:
        super().__init__(socket, session, loop)
        self.on_message: Callable[[dict[str, Any]], None] | None = None
        self.on_close: list[Callable[[], None]] = []
        self.log = logging.getLogger(__name__)  # the server's, once the client is opened
        self._messages: deque[dict[str, Any]] = deque(maxlen=socket.rcvhwm or None)
        self._waiters: list[asyncio.Future[None]] = []
        # Synchronous calls on the same socket: reading without a future per message.
        self._reader: zmq.Socket[bytes] = zmq.Socket.shadow(socket.underlying)
        self._loop = asyncio.get_running_loop()
        self._fd = socket.FD
        # In a context of its own: the reader lives as long as the channel, and the context a
        # channel is opened in may be a request's (timers.py).
        in_own_context(self._loop.add_reader, self._fd, self._read)
        self._loop.call_soon(self._read)  # the FD signals changes only: read what is there

    def _read(self) -> None:
        if self.socket is None:
            return
        for _ in range(BATCH):
            try:
                parts = self._reader.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:  # closed under us
                return
            self._take(parts)
        self._loop.call_soon(self._read)  # more may be waiting: after others had a turn

    def _take(self, parts: list[bytes]) -> None:
        _, message_parts = self.session.feed_identities(parts)
        try:
            msg = self.session.deserialize(message_parts)
        except Exception as exc:  # a bad signature or a malformed message: not the kernel's
            self.log.warning("Dropped a kernel message that failed its check: %s", exc)
            return
        if self.on_message is not None:
            self.on_message(msg)
        self._messages.append(msg)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def send(self, msg: dict[str, Any]) -> None:
        assert self.socket is not None
        # On the synchronous shadow: Session.send would make one of its own for every message.
        self.session.send(self._reader, msg)
        # A send can take in what arrived meanwhile without the socket's FD signalling it.
        self._loop.call_soon(self._read)

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The next message; `queue.Empty` if none came within `timeout` seconds. A closed
        channel cancels its callers, as zmq.asyncio does when its socket closes."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while not self._messages:
            if self.socket is None:
                raise asyncio.CancelledError("the channel is closed")
            left = None if deadline is None else deadline - self._loop.time()
            if left is not None and left <= 0:
                raise queue.Empty
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            timer = None if left is None else self._loop.call_later(left, _settle, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        return self._messages.popleft()

    async def get_msgs(self) -> list[dict[str, Any]]:  # type: ignore[override]
        messages = list(self._messages)
        self._messages.clear()
        return messages

    async def msg_ready(self) -> bool:  # type: ignore[override]
        return bool(self._messages)

    def close(self) -> None:
        if self.socket is not None:
            self._loop.remove_reader(self._fd)
            for waiter in self._waiters:
                waiter.cancel()
            for closed in self.on_close:
                closed()
        super().close()

    stop = close


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
