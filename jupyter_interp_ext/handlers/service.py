"""Liveness, version and the OpenAPI description: docs/api.md, "Utility"."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.protocol.errors import ProtocolError

from .base import SandboxHandler
from .openapi import document

AUTH_RESOURCE = "api"


class ServiceHandler(SandboxHandler):
    """Routes about the service itself, authorized on Jupyter's `api`."""

    auth_resource = AUTH_RESOURCE


class PingHandler(ServiceHandler):
    """`GET /api/ping`: liveness."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"status": "healthy", "message": "pong"})


class VersionHandler(ServiceHandler):
    """`GET /api/version`: the package's version."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"version": __version__})


class OpenAPIHandler(ServiceHandler):
    """`GET /api/openapi.json`: the OpenAPI description of every route."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        prefix = self.settings["interp_prefix"]
        self.finish(document(url_path_join(self.base_url, prefix)))


class NotFoundHandler(ServiceHandler):
    """Any other path under the prefix: the protocol's 404 body instead of an HTML page."""

    @web.authenticated
    def prepare_not_found(self, **path: str) -> None:
        raise ProtocolError("UNKNOWN_ERROR", "The requested endpoint was not found", status=404)

    get = post = put = delete = patch = prepare_not_found
