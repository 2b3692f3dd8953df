"""Pre-started kernels per language, so creating a context is a hand-out, not a kernel start.

A language is pooled once it has been used (or from the start, if `prestart` names it) and is
drained again after `idle_seconds` without use, so a JupyterLab user who never calls the API
pays for no kernel. A pooled kernel that is shut down, restarted or culled through the server
(Lab's "Shut Down All", `/api/kernels`, the culler) leaves the pool at once, and a hand-out
checks each kernel again, so creating a context never fails because of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jupyter_client.asynchronous.client import AsyncKernelClient
from traitlets import Bool, Dict, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics

from .languages import default_pool_sizes


@dataclass
class PooledKernel:
    """A started kernel with its channels up, and the cwd/env it was started with."""

    kernel_id: str
    language: str
    client: AsyncKernelClient
    cwd: str
    env: dict[str, str]
    ready: asyncio.Future | None = None  # the kernel's `ready` when pooled: a restart replaces it
    jupyter_session_id: str | None = None  # its row in the server's sessions, labelled as pooled


StartKernel = Callable[[str], Awaitable[PooledKernel]]
StopKernel = Callable[[PooledKernel], Awaitable[None]]
IsUsable = Callable[[PooledKernel], bool]


class KernelPool(LoggingConfigurable):
    """Keeps `sizes[language]` ready kernels per language in use and refills in the background."""

    enabled = Bool(
        False,
        help="Keep pre-started kernels, so that creating a context is a hand-out (tens of ms) "
        "instead of a kernel start (about a second). Off by default: a person in JupyterLab "
        "then sees one kernel per context and nothing else; agent servers turn it on.",
    ).tag(config=True)

    sizes = Dict(
        default_pool_sizes(),
        help="Ready kernels kept per language once it is in use (0 or absent: none; contexts "
        "then start fresh).",
    ).tag(config=True)

    prestart = List(
        Unicode(),
        help="Languages pooled from the server's start, before any use (default: none, so an "
        "unused server runs no kernel of ours).",
    ).tag(config=True)

    idle_seconds = Float(
        900.0,
        help="A language whose contexts nobody created for this long is no longer pooled and "
        "its pooled kernels are shut down (0: keep pooling for good).",
    ).tag(config=True)

    def __init__(self, start: StartKernel, stop: StopKernel, usable: IsUsable, **kwargs) -> None:
        super().__init__(**kwargs)
        self._start = start
        self._stop = stop
        self._usable = usable
        self._ready: dict[str, list[PooledKernel]] = {}
        self._starting: dict[str, int] = {}
        self._last_used: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._reaper: asyncio.Task | None = None

    def fill(self) -> None:
        """Top every language in use up to its size, in the background."""
        if self._closed or not self.enabled:
            return
        for language in self._in_use():
            size = self.sizes.get(language, 0)
            missing = size - len(self._ready.get(language, [])) - self._starting.get(language, 0)
            for _ in range(max(0, missing)):
                self._background(self._add(language), language)
        if self.idle_seconds and self._reaper is None:
            self._reaper = asyncio.ensure_future(self._drain_idle_languages())

    def _in_use(self) -> list[str]:
        return [lang for lang in self.sizes if lang in self.prestart or lang in self._last_used]

    def _background(self, work: Awaitable[None], language: str | None = None) -> None:
        if language is not None:
            self._starting[language] = self._starting.get(language, 0) + 1
        task = asyncio.ensure_future(work)
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
        if self._closed or language not in self._in_use():
            await self._stop(kernel)
            return
        self._ready.setdefault(language, []).append(kernel)
        self._count(language)

    async def take(self, language: str) -> PooledKernel | None:
        """A usable ready kernel for `language` (None when there is none); the language is in
        use from now on, and the pool refills behind the hand-out."""
        if not self.enabled:
            return None
        self._last_used[language] = time.monotonic()
        ready = self._ready.get(language, [])
        kernel = None
        while ready and kernel is None:
            candidate = ready.pop(0)
            if self._usable(candidate):
                kernel = candidate
            else:
                self.log.info("Pooled kernel %s is gone; not handing it out", candidate.kernel_id)
                self._background(self._stop(candidate))
        self._count(language)
        self.fill()
        return kernel

    def evict(self, kernel_id: str, why: str) -> None:
        """A pooled kernel was shut down, restarted or culled elsewhere: drop it. It is replaced
        only when its language is next used: a person who shut kernels down to free memory
        ("Shut Down All" in JupyterLab) sees it stay free."""
        for language, kernels in self._ready.items():
            for kernel in [k for k in kernels if k.kernel_id == kernel_id]:
                kernels.remove(kernel)
                self.log.info(
                    "Pooled %s kernel %s %s; replaced when %s is next used",
                    language,
                    kernel_id,
                    why,
                    language,
                )
                self._background(self._stop(kernel))
                self._count(language)

    def ready_count(self, language: str) -> int:
        """Pooled kernels of `language` that are alive and as we started them."""
        return sum(1 for k in self._ready.get(language, []) if self._usable(k))

    def kernel_ids(self) -> set[str]:
        return {k.kernel_id for kernels in self._ready.values() for k in kernels}

    def _count(self, language: str) -> None:
        metrics.POOL_READY.labels(language).set(self.ready_count(language))

    async def _drain_idle_languages(self) -> None:
        """Stop pooling languages nobody used for `idle_seconds`."""
        while not self._closed:
            await asyncio.sleep(max(1.0, min(60.0, self.idle_seconds / 4)))
            now = time.monotonic()
            for language, used in list(self._last_used.items()):
                if now - used < self.idle_seconds:
                    continue
                del self._last_used[language]
                if language in self.prestart:
                    continue
                kernels = self._ready.pop(language, [])
                if kernels:
                    self.log.info(
                        "No %s context for %.0f s: shutting %d pooled kernels down",
                        language,
                        self.idle_seconds,
                        len(kernels),
                    )
                for kernel in kernels:
                    self._background(self._stop(kernel))
                self._count(language)

    async def shutdown(self) -> None:
        """Stop filling and shut every pooled kernel down."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        kernels = [k for kernels in self._ready.values() for k in kernels]
        for language in self._ready:
            metrics.POOL_READY.labels(language).set(0)
        self._ready.clear()
        await asyncio.gather(*(self._stop(k) for k in kernels), return_exceptions=True)
