"""`{prefix}/mcp`: the MCP endpoint (jupyter_interp_ext/mcp_endpoint), behind the server's
own authentication; each tool asks the authorizer for what its REST route asks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.web import HTTPError

from jupyter_interp_ext.mcp_endpoint.service import McpService
from jupyter_interp_ext.protocol.errors import ProtocolError

from .base import to_sandbox_error
from .files import FilesHandler
from .interpreter import InterpreterHandler
from .processes import PortWatchHandler

# The JSON-RPC error code MCP clients read on a refused request (no request id to answer).
REFUSED = -32001


class McpHandler(InterpreterHandler, FilesHandler, PortWatchHandler):
    """Hands each request to the MCP transport once Jupyter knows who sent it. A caller with
    no valid credentials gets 401 and `WWW-Authenticate`, as MCP's HTTP transport expects."""

    left: asyncio.Future[None]

    @property
    def mcp(self) -> McpService:
        return self.settings["interp_mcp"]

    def holds(self, right: tuple[str, str]) -> bool:
        """Whether the caller holds `right` (an action on a resource) in Jupyter's authorizer."""
        action, resource = right
        return bool(self.authorizer.is_authorized(self, self.current_user, action, resource))

    def require(self, right: tuple[str, str]) -> None:
        """Refuse what the caller has no right to, as the REST route would (403)."""
        if not self.holds(right):
            action, resource = right
            raise ProtocolError(
                "PERMISSION_DENIED",
                f"User is not authorized to {action} on resource: {resource}.",
                status=403,
            )

    def check_xsrf_cookie(self) -> None:
        if getattr(self, "_jupyter_current_user", True) is None:
            raise HTTPError(401)
        super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        self.left = asyncio.get_running_loop().create_future()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        left = getattr(self, "left", None)  # (none yet when refused before `prepare`)
        if left is not None and not left.done():
            left.set_result(None)

    async def post(self) -> None:
        await self._serve()

    async def get(self) -> None:
        await self._serve()

    async def delete(self) -> None:
        await self._serve()

    async def _serve(self) -> None:
        if self.current_user is None:
            raise HTTPError(401)
        await self.mcp.serve(self, b"".join(self._chunks))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Refusals as a JSON-RPC error body; 401 names the scheme to send the token with."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = to_sandbox_error(exc, status_code)
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="jupyter"')
            error = ProtocolError(
                "UNAUTHORIZED",
                "Send the server's token: Authorization: Bearer <token>",
                status=401,
            )
        self.set_status(error.status)
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": REFUSED, "message": error.message}}
        self.finish(json.dumps(body))
