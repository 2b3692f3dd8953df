"""Connecting to a kernel in process and knowing when it can really take code."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import queue
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_server.gateway.managers import GatewayKernelManager

from .activity import ActivityRecorder
from .channels import PushedChannel
from .gateway import gateway_client
from .kernel_session import session_like

READY_PROBE_INTERVAL = 0.25
POLL_SECONDS = 1.0


async def open_client(kernel: Any, timeout: float) -> AsyncKernelClient:
    """A client on the kernel manager's shared ZMQ context, with iopub proven live.

    A `kernel_info_reply` alone does not prove our iopub subscription is up: an execute sent
    right after it can lose its output. So we resend `kernel_info_request` until an iopub message
    (its `status`, or ipykernel's `iopub_welcome`) has arrived as well.
    """
    if isinstance(kernel, GatewayKernelManager):
        client = gateway_client(kernel)
    else:
        client = kernel.client(
            context=kernel.context,
            session=session_like(kernel.session),
            shell_channel_class=PushedChannel,
            iopub_channel_class=PushedChannel,
        )
    # jupyter_client types it as returning None; a Gateway client's returns a coroutine.
    started = client.start_channels(  # type: ignore[func-returns-value]
        shell=True, iopub=True, stdin=False, hb=False, control=False
    )
    if inspect.isawaitable(started):  # a Gateway client opens its websocket here
        await started
    for channel in (client.shell_channel, client.iopub_channel):
        if isinstance(channel, PushedChannel):
            channel.log = kernel.log
    activity = ActivityRecorder.of(kernel)
    if activity is not None and isinstance(client.iopub_channel, PushedChannel):
        activity.take_over(client.iopub_channel)
    try:
        await wait_until_ready(client, timeout)
    except BaseException:
        client.stop_channels()
        raise
    return client


async def wait_until_ready(client: AsyncKernelClient, timeout: float) -> None:
    """Probe with `kernel_info_request` until both shell and iopub have answered one of our
    probes. Messages left over from before (a client kept across a kernel restart still holds
    the old kernel's) prove nothing: only an iopub message our probe caused, or the
    `iopub_welcome` of a fresh subscription, shows that output will reach us."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    probes: set[str] = set()
    iopub = asyncio.ensure_future(_iopub_answer(client, probes))
    reply = asyncio.ensure_future(_next_reply(client, "kernel_info_reply", probes))
    try:
        while True:
            probes.add(client.kernel_info())
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"kernel did not answer within {timeout:g} s")
            await asyncio.wait({iopub, reply}, timeout=min(READY_PROBE_INTERVAL, remaining))
            if iopub.done() and reply.done():
                iopub.result()
                reply.result()
                return
    finally:
        for task in (iopub, reply):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _iopub_answer(client: AsyncKernelClient, probes: set[str]) -> dict[str, Any]:
    while True:
        msg = await wait_for_message(client.get_iopub_msg)
        if msg["msg_type"] == "iopub_welcome" or msg["parent_header"].get("msg_id") in probes:
            return msg


async def wait_for_message(get: Callable[..., Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The next message of a channel, however long it takes (a Gateway client's channels give
    up after a second by default)."""
    while True:
        try:
            return await get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


async def _next_reply(client: AsyncKernelClient, msg_type: str, probes: set[str]) -> dict[str, Any]:
    while True:
        msg = await wait_for_message(client.get_shell_msg)
        if msg["msg_type"] == msg_type and msg["parent_header"].get("msg_id") in probes:
            return msg


async def reply_to(client: AsyncKernelClient, msg_id: str) -> dict[str, Any]:
    """The shell reply to one request, skipping stale replies to earlier probes."""
    while True:
        msg = await wait_for_message(client.get_shell_msg)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


async def run_silently(client: AsyncKernelClient, code: str, timeout: float) -> dict[str, Any]:
    """Run set-up code without history or output; raise if the kernel reports an error."""
    msg_id = client.execute(code, silent=True, store_history=False, stop_on_error=False)
    reply = await asyncio.wait_for(reply_to(client, msg_id), timeout)
    content = reply["content"]
    if content.get("status") != "ok":
        raise RuntimeError(f"{content.get('ename')}: {content.get('evalue')}")
    return content
