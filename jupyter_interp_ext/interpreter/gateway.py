"""In-process kernel clients for kernels behind a Gateway (Kernel Gateway, Enterprise Gateway).

jupyter_server's own `GatewayKernelClient` opens its websocket without the Gateway's
headers, so a Gateway that requires a token refuses it; this one sends them.
"""

from __future__ import annotations

from threading import Thread
from typing import Any

import websocket
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelClient, GatewayKernelManager
from jupyter_server.utils import url_escape, url_path_join


class AuthenticatedGatewayKernelClient(GatewayKernelClient):
    """A Gateway kernel client whose websocket carries the Gateway's auth headers."""

    async def start_channels(  # type: ignore[override]  # a coroutine, as in its base
        self,
        shell: bool = True,
        iopub: bool = True,
        stdin: bool = True,
        hb: bool = True,
        control: bool = True,
    ) -> None:
        gateway = GatewayClient.instance()
        url = url_path_join(
            gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels"
        )
        headers = gateway.load_connection_args().get("headers", {})
        self.channel_socket = websocket.create_connection(
            url,
            timeout=gateway.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            header=[f"{name}: {value}" for name, value in headers.items()],
            sslopt={
                "ca_certs": gateway.ca_certs,
                "certfile": gateway.client_cert,
                "keyfile": gateway.client_key,
            },
        )
        await ensure_async(
            AsyncKernelClient.start_channels(  # type: ignore[func-returns-value]
                self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control
            )
        )
        self.response_router = Thread(target=self._route_responses, daemon=True)
        self.response_router.start()


def gateway_client(kernel: GatewayKernelManager) -> AsyncKernelClient:
    """A client for a Gateway kernel, configured as the kernel manager would configure one."""
    settings: dict[str, Any] = {
        **kernel.get_connection_info(session=True),
        "connection_file": kernel.connection_file,
        "parent": kernel,
        "kernel_id": kernel.kernel_id,
    }
    return AuthenticatedGatewayKernelClient(**settings)
