"""How the client reaches a server: where it is and the token (`Settings`), how an answer is
read (`answer`: the JSON, or the error it describes) and what a failed connection is."""

from __future__ import annotations

import json
import os
import socket
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from .errors import (
    InvalidArgumentException,
    PermissionDeniedError,
    SandboxStoppedError,
    TransportError,
    error_from_answer,
)

RETRIES = 3  # attempts for a safe request whose connection failed
RETRY_PAUSE = 0.2  # seconds, doubled after each failed attempt
# A request goes out as headers then body: without TCP_NODELAY the body can wait for an ACK.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class Settings:
    """Where the server is and how to authenticate, from arguments or the environment."""

    def __init__(
        self,
        server_url: str | None,
        token: str | None,
        prefix: str,
        timeout: float | httpx.Timeout,
    ) -> None:
        url = server_url or os.environ.get("JUPYTER_SERVER_URL")
        if not url:
            raise InvalidArgumentException("give server_url (or set JUPYTER_SERVER_URL)")
        self.prefix = prefix.strip("/")
        self.serve(url)
        token = token if token is not None else os.environ.get("JUPYTER_TOKEN")
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        # The token authenticates every request: Jupyter's login cookie, set on each answer,
        # would only add parsing here and a second check on the server.
        self.cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        # Streams wait as long as the work they follow (keep-alives arrive every 10 s).
        self.long_timeout = httpx.Timeout(
            connect=self.timeout.connect,
            read=None,
            write=self.timeout.write,
            pool=self.timeout.pool,
        )

    def serve(self, url: str) -> None:
        """Send every call to the API of the server at `url`."""
        if url.rstrip("/").endswith(f"/{self.prefix}"):
            raise InvalidArgumentException(
                f"{url} ends with the API prefix: give the server's own URL (drop "
                f"/{self.prefix}; the JavaScript client is the one that takes it)"
            )
        self.base_url = f"{url.rstrip('/')}/{self.prefix}/"


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the error the server described."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 300:  # a redirect is never this API's answer
        if body is None and "x-jupyterhub-version" in response.headers:
            # A page of the Hub's own: the request reached the Hub, not the sandbox's server
            # (a stopped server's POST gets the Hub's 403 page, its GET a redirect).
            raise SandboxStoppedError(
                "SERVER_NOT_RUNNING",
                f"the sandbox's server is not running (the Hub answered {response.status_code})",
                response.status_code,
                {},
            )
        if isinstance(body, dict) and _hub_refused(response, body):
            raise PermissionDeniedError(
                "NO_ACCESS",
                "the token has no rights on this sandbox, or it does not exist (the Hub tells "
                f"the two apart to nobody): {body['message']}",
                403,
                {},
            )
        raise error_from_answer(response.status_code, body, response.reason_phrase)
    return body


def _hub_refused(response: httpx.Response, body: dict[str, Any]) -> bool:
    """A Hub's 404 for what the token's scopes do not cover (JupyterHub says "No access to
    resources or resources not found"; a server that is simply absent is a 404 without it)."""
    return (
        response.status_code == 404
        and "x-jupyterhub-version" in response.headers
        and str(body.get("message") or "").startswith("No access to resources")
    )


def event_of(data: str) -> dict[str, Any]:
    """One SSE event's JSON object."""
    event: dict[str, Any] = json.loads(data)
    return event


def transport_error(exc: httpx.HTTPError, base_url: str) -> TransportError:
    """What a connection that failed (or broke) is to the caller."""
    return TransportError(f"cannot talk to {base_url}: {type(exc).__name__}: {exc}")
