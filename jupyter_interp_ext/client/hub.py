"""Sandboxes on a JupyterHub: each sandbox id is a named server of the token's user.

Only the Hub's REST API is used (`/hub/api`): who the token belongs to, the user's servers,
starting one (and following its progress), stopping it, removing it. Each is a `calls.Call`
with an absolute URL, carried out by the same clients as every other call. JupyterHub 6 names
servers as "safe slugs": 1-30 of a-z, 0-9 and -, starting with a letter, not ending with -
and with no --; ids are checked before any request.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

from . import calls
from .errors import InvalidArgumentException, SandboxError

SERVER_NAME = re.compile(r"^(?=.{1,30}$)[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
STOP_POLL = 0.2  # seconds between looks at a server that is still stopping


def hub_settings(hub_url: str | None, token: str | None) -> tuple[str, str] | None:
    """(Hub URL ending in /, token) from the arguments or `JUPYTERHUB_URL` and
    `JUPYTERHUB_API_TOKEN`; None when no Hub is named (a plain Jupyter server then)."""
    url = hub_url or os.environ.get("JUPYTERHUB_URL")
    if not url:
        return None
    token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise InvalidArgumentException("a Hub needs a token: give token (or JUPYTERHUB_API_TOKEN)")
    return url.rstrip("/") + "/", token


def checked_name(sandbox_id: str) -> str:
    """A sandbox id that can be a Hub server's name, or InvalidArgumentException."""
    if not SERVER_NAME.match(sandbox_id):
        raise InvalidArgumentException(
            f"{sandbox_id!r} is not a sandbox id on a Hub: 1-30 of a-z, 0-9 and -, starting "
            "with a letter, not ending with - and with no --"
        )
    return sandbox_id


def new_id() -> str:
    """A fresh sandbox id (valid on a Hub and as a label alike: a letter, then hex)."""
    return "s" + secrets.token_hex(10)


@dataclass(frozen=True)
class HubProgress:
    """One step of a sandbox's server starting, as the Hub reports it."""

    progress: int
    message: str
    ready: bool = False
    failed: bool = False


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as `Sandbox.list()` finds it: its id, its `state` (`running`, `paused`,
    `pending`), and on a Hub, when it started and was last active and its template."""

    sandbox_id: str
    state: str
    started_at: str | None = None
    last_activity: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class HubServer:
    """Where a sandbox's server lives: the Hub, its user, its name."""

    hub_url: str
    user: str
    name: str

    @property
    def api(self) -> str:
        """The server's resource in the Hub's REST API."""
        return urljoin(self.hub_url, f"hub/api/users/{quote(self.user)}/servers/{self.name}")

    @property
    def server_url(self) -> str:
        """The server's own URL, as the sandbox API client takes it."""
        return urljoin(self.hub_url, f"user/{quote(self.user)}/{self.name}/")


def whoami(hub_url: str) -> calls.Call[str]:
    """`GET /hub/api/user`: the name of the token's user."""
    return calls.Call("GET", "", url=urljoin(hub_url, "hub/api/user"), parse=lambda a: a["name"])


def server_model(server: HubServer) -> calls.Call[dict[str, Any]]:
    """`GET /hub/api/users/{user}/servers/{name}`: the server's state (404: no such sandbox)."""
    return calls.Call("GET", "", url=server.api, safe=True)


def start(server: HubServer, template: str | None) -> calls.Call[None]:
    """`POST .../servers/{name}`: start (or create) it, then follow `progress`. Without a
    template, a stopped server starts with the options it had. A template is sent under
    both names deployments read it by: `template` (deploy/jupyterhub_config.py) and `profile`
    (KubeSpawner's profile list, as Zero to JupyterHub configures it)."""
    options = None if template is None else {"template": template, "profile": template}
    body = {"user_options": options}
    return calls.Call("POST", "", body, url=server.api, parse=lambda a: None, long=True)


def progress(server: HubServer) -> calls.Call[Any]:
    """`GET .../servers/{name}/progress`: the start's events, to the end (a stream)."""
    return calls.Call("GET", "", url=server.api + "/progress", long=True)


def stop(server: HubServer, remove: bool) -> calls.Call[None]:
    """`DELETE .../servers/{name}`: stop it, keeping it (and its files), or remove it."""
    body = {"remove": True} if remove else None
    return calls.Call("DELETE", "", body, url=server.api, parse=lambda a: None, long=True)


def list_servers(hub_url: str, user: str) -> calls.Call[list[SandboxInfo]]:
    """The user's named servers, stopped ones too."""
    url = urljoin(hub_url, f"hub/api/users/{quote(user)}")

    def parse(answer: dict[str, Any]) -> list[SandboxInfo]:
        return [
            SandboxInfo(
                name,
                state_of(model),
                model.get("started"),
                model.get("last_activity"),
                (model.get("user_options") or {}).get("template"),
            )
            for name, model in sorted((answer.get("servers") or {}).items())
            if name  # the default server is no sandbox
        ]

    return calls.Call(
        "GET", "", params={"include_stopped_servers": "1"}, url=url, parse=parse, safe=True
    )


def progress_step(event: dict[str, Any]) -> HubProgress:
    """A progress event, typed; a failed start raises with the Hub's message."""
    step = HubProgress(
        int(event.get("progress") or 0),
        str(event.get("message") or ""),
        bool(event.get("ready")),
        bool(event.get("failed")),
    )
    if step.failed:
        raise SandboxError("SPAWN_FAILED", step.message or "the sandbox failed to start", 500, {})
    return step


def state_of(model: dict[str, Any]) -> str:
    """A Hub server's state as a sandbox's: `pending` (starting or stopping), `running`,
    `paused`."""
    return "pending" if model.get("pending") else "running" if model.get("ready") else "paused"
