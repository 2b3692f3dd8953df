"""Previews: a web app a sandbox process serves, reached through the server, at arm's length
from the person's session.

`{base_url}{prefix}/preview/{port}/…` proxies to a loopback port with jupyter-server-proxy's
handler (HTTP and websockets), but only
- for a caller who may run commands (`execute` on `terminals`): what answers is a program's;
- to a port that a live sandbox process listens on (a background process, a session's shell,
  a context's kernel, or anything they started), never another local service;
- without the caller's `Cookie`, `Authorization` and XSRF header, which would let the app act
  as the person, and without the app's `Set-Cookie`, which would plant cookies on the
  server's origin;
- answered with `Content-Security-Policy: sandbox …`, so the app's pages run in an opaque
  origin: their scripts cannot read the server's cookies nor call its API as the person,
  although they are served from the server's address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from jupyter_server.utils import url_path_join
from jupyter_server_proxy.handlers import LocalProxyHandler
from tornado import httputil, web

from jupyter_interp_ext.shells.process_tree import descendants, listening_sockets, ports_held

# The app may run scripts, forms, pop-ups and downloads, in an origin of its own.
SANDBOX_POLICY = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
_CALLER_HEADERS = ("Cookie", "Authorization", "X-XSRFToken", "X-CSRFToken")


def listened_on_by(port: int, roots: Iterable[int]) -> bool:
    """Whether one of the processes `roots`, or one they started, listens on `port`."""
    sockets = {name: p for name, p in listening_sockets().items() if p == port}
    if not sockets:
        return False
    roots = list(roots)
    return bool(ports_held({*roots, *descendants(*roots)}, sockets))


class _Sandboxed(web.OutputTransform):
    """The app's response as it leaves: in a sandboxed origin, setting no cookies."""

    def transform_first_chunk(
        self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        headers["Content-Security-Policy"] = SANDBOX_POLICY
        if "Set-Cookie" in headers:
            del headers["Set-Cookie"]
        return status_code, headers, chunk


class PreviewHandler(LocalProxyHandler):
    """A sandbox process's web app, proxied with the checks above."""

    def initialize(self, prefix: str, **kwargs: Any) -> None:
        self.preview_prefix = prefix

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        await super().prepare(*args, **kwargs)  # authenticated, as every Jupyter route
        if not self.authorizer.is_authorized(self, self.current_user, "execute", "terminals"):
            raise web.HTTPError(403, "Previews need the right to run commands")
        port = int(self.path_args[0])
        roots = self.settings["interp_sandbox_pids"]()
        if not await asyncio.to_thread(listened_on_by, port, roots):
            raise web.HTTPError(
                404, f"No sandbox process listens on port {port}: only their ports are previewed"
            )
        self.proxy_base = url_path_join(self.preview_prefix, "preview", str(port))
        # The proxy replaces the response's headers wholesale: a transform sees the last word.
        self._transforms = [*self._transforms, _Sandboxed(self.request)]  # type: ignore[has-type]

    def proxy_request_headers(self) -> Any:
        headers = super().proxy_request_headers()
        for name in _CALLER_HEADERS:
            headers.pop(name, None)
        return headers


def preview_route(prefix: str) -> tuple[str, type, dict[str, Any]]:
    """The route, under the server's base_url (which the extension adds)."""
    return (
        url_path_join("/", prefix, r"preview/(\d+)(/.*|)"),
        PreviewHandler,
        {"prefix": prefix, "absolute_url": False},
    )
