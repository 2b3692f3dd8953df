"""Port readiness: wait until a server a process started answers on a loopback port."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import validation_error
from jupyter_interp_ext.protocol.validation import is_whole, optional_id, optional_str

from .processes import BackgroundProcess

MIN_INTERVAL, MAX_INTERVAL = 0.1, 10.0  # seconds between checks (the protocol's clamp)


@dataclass(frozen=True)
class PortCheck:
    """What "ready" means: a TCP connection, or an HTTP status within a range."""

    port: int
    http: bool
    path: str
    status_min: int
    status_max: int
    interval: float
    process_id: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> PortCheck:
        port = _integer(body, "port", None)
        if port is None or not 1 <= port <= 65535:
            raise validation_error("port", "'port' must be a TCP port number (1-65535)")
        mode = optional_str(body, "mode")
        if mode not in (None, "http", "tcp"):
            raise validation_error("mode", "'mode' must be 'http' or 'tcp'")
        path = "/" if body.get("path") is None else optional_str(body, "path")
        if not path or not path.startswith("/"):
            raise validation_error("path", "'path' must start with /")
        interval = _number(body, "interval", 500) / 1000
        return cls(
            port=port,
            http=mode != "tcp",
            path=path,
            status_min=_integer(body, "statusMin", 200),
            status_max=_integer(body, "statusMax", 399),
            interval=min(max(interval, MIN_INTERVAL), MAX_INTERVAL),
            process_id=optional_id(body, "processId"),
        )

    async def status(self, client: httpx.AsyncClient) -> int | None:
        """The HTTP status (0 for a TCP connection) when ready, else None."""
        if not self.http:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), self.interval
                )
            except (OSError, asyncio.TimeoutError):
                return None
            writer.close()
            return 0
        try:
            answer = await client.get(f"http://127.0.0.1:{self.port}{self.path}")
        except httpx.HTTPError:
            return None
        return (
            answer.status_code if self.status_min <= answer.status_code <= self.status_max else None
        )


def _number(body: dict[str, Any], field: str, default: float) -> float:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise validation_error(field, f"'{field}' must be a number")
    return value


def _integer(body: dict[str, Any], field: str, default: int | None) -> int:
    value = body.get(field)
    if value is None:
        return default  # type: ignore[return-value]
    if not is_whole(value, least=-(2**63)):
        raise validation_error(field, f"'{field}' must be a whole number")
    return int(value)


async def watch_port(
    check: PortCheck, process: BackgroundProcess | None, url: Callable[[int], str | None]
) -> AsyncIterator[dict[str, Any]]:
    """`watching`, then `ready` (with the port's URL through the server's proxy, when there is
    one), or `process_exited` if the given process ends first."""
    yield {"type": "watching", "port": check.port}
    async with httpx.AsyncClient(timeout=check.interval) as client:  # one for every check
        while True:
            if process is not None and process.exit_code is not None:
                metrics.PORT_WATCHES.labels("process_exited").inc()
                yield {"type": "process_exited", "port": check.port, "exitCode": process.exit_code}
                return
            status = await check.status(client)
            if status is not None:
                metrics.PORT_WATCHES.labels("ready").inc()
                ready: dict[str, Any] = {"type": "ready", "port": check.port}
                if check.http:
                    ready["statusCode"] = status
                if (address := url(check.port)) is not None:
                    ready["url"] = address
                yield ready
                return
            await asyncio.sleep(check.interval)
