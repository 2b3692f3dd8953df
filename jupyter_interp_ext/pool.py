"""Pre-started kernels per language, so creating a context is a hand-out, not a kernel start."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jupyter_client.asynchronous.client import AsyncKernelClient
from traitlets import Dict
from traitlets.config import LoggingConfigurable

from . import metrics


@dataclass
class PooledKernel:
    """A started kernel with its channels up, and the cwd/env it was started with."""

    kernel_id: str
    client: AsyncKernelClient
    cwd: str
    env: dict[str, str]


StartKernel = Callable[[str], Awaitable[PooledKernel]]
StopKernel = Callable[[PooledKernel], Awaitable[None]]


class KernelPool(LoggingConfigurable):
    """Keeps `sizes[language]` ready kernels per language and refills in the background."""

    sizes = Dict(
        {"python": 2, "javascript": 1, "typescript": 1},
        help="Ready kernels kept per language (0 or absent: none; contexts then start fresh).",
    ).tag(config=True)

    def __init__(self, start: StartKernel, stop: StopKernel, **kwargs) -> None:
        super().__init__(**kwargs)
        self._start = start
        self._stop = stop
        self._ready: dict[str, list[PooledKernel]] = {}
        self._starting: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    def fill(self) -> None:
        """Top every language up to its size, in the background."""
        for language, size in self.sizes.items():
            missing = size - len(self._ready.get(language, [])) - self._starting.get(language, 0)
            for _ in range(max(0, missing)):
                self._spawn(language)

    def _spawn(self, language: str) -> None:
        self._starting[language] = self._starting.get(language, 0) + 1
        task = asyncio.ensure_future(self._add(language))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _add(self, language: str) -> None:
        try:
            kernel = await self._start(language)
        except Exception:
            self.log.exception("Could not pre-start a %s kernel for the pool", language)
            return
        finally:
            self._starting[language] -= 1
        if self._closed:
            await self._stop(kernel)
            return
        self._ready.setdefault(language, []).append(kernel)
        metrics.POOL_READY.labels(language).set(self.ready_count(language))

    def take(self, language: str) -> PooledKernel | None:
        """A ready kernel for `language` (None when the pool is empty); refills behind it."""
        ready = self._ready.get(language)
        kernel = ready.pop(0) if ready else None
        metrics.POOL_READY.labels(language).set(self.ready_count(language))
        if language in self.sizes and not self._closed:
            self.fill()
        return kernel

    def ready_count(self, language: str) -> int:
        return len(self._ready.get(language, []))

    def kernel_ids(self) -> set[str]:
        return {k.kernel_id for kernels in self._ready.values() for k in kernels}

    async def shutdown(self) -> None:
        """Stop filling and shut every pooled kernel down."""
        self._closed = True
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        kernels = [k for kernels in self._ready.values() for k in kernels]
        for language in self._ready:
            metrics.POOL_READY.labels(language).set(0)
        self._ready.clear()
        await asyncio.gather(*(self._stop(k) for k in kernels), return_exceptions=True)
