"""JupyterHub on one host, one sandbox per named server: the reference deployment.

Each sandbox id is a named server of its user (`/user/<user>/<id>/`), started on demand, with
a root folder of its own (`<SANDBOX_ROOT>/<user>/<id>`) that outlives it: a paused or culled
sandbox comes back with its files (its kernels are new). The extension runs inside every
single-user server, so the whole Sandbox API (and the official JavaScript client) works under
`/user/<user>/<id>/sandbox`, behind the Hub's own authentication.

Settings come from the environment, so the tests run this same file:

- SANDBOX_HUB_IP / SANDBOX_HUB_PORT: where the proxy listens (127.0.0.1:8000).
- SANDBOX_ROOT: the folder holding every sandbox's files (/srv/sandboxes).
- SANDBOX_LIMIT: sandboxes per user (10; running or paused).
- SANDBOX_IDLE_TIMEOUT: seconds without activity before jupyterhub-idle-culler pauses a
  sandbox (3600; 0 turns culling off). Single-user servers report activity every
  JUPYTERHUB_ACTIVITY_INTERVAL (300 s), so this must stay well above that.
- SANDBOX_SPAWNER: "localprocess" (each Hub user a system user, the isolation a shared host
  needs) or "simple" (every sandbox as the Hub's own user: for a laptop or tests only).

Templates (E2B's `template`, the client's `Sandbox.create(template=...)`) are the
`SANDBOX_TEMPLATES` below: a name for the options its server starts with. An unknown template
fails the spawn with a message naming the known ones.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined] # noqa: F821 (JupyterHub's config loader)

ROOT = Path(os.environ.get("SANDBOX_ROOT", "/srv/sandboxes"))
IDLE_TIMEOUT = int(os.environ.get("SANDBOX_IDLE_TIMEOUT", "3600"))
SPAWNER = os.environ.get("SANDBOX_SPAWNER", "localprocess")
SANDBOX_TEMPLATES: dict[str, list[str]] = {
    "default": [],
    # The kernel pool on: a new context takes a started kernel instead of starting one.
    "warm": ["--KernelPool.enabled=True"],
}

c.JupyterHub.ip = os.environ.get("SANDBOX_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("SANDBOX_HUB_PORT", "8000"))
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = int(os.environ.get("SANDBOX_LIMIT", "10"))
# The proxy is configurable-http-proxy from npm, found on PATH or beside the Hub's state.
chp = shutil.which("configurable-http-proxy", path=os.environ.get("SANDBOX_CHP_PATH"))
if chp:
    c.ConfigurableHTTPProxy.command = [chp]

c.JupyterHub.spawner_class = SPAWNER
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
if SPAWNER == "simple":
    c.SimpleLocalProcessSpawner.home_dir_template = str(ROOT / "{username}")
    if os.geteuid() == 0:
        c.Spawner.args = ["--allow-root"]
# What a sandbox's server may do with the Hub token it holds: report activity and be reached
# (JupyterHub's `server` role). It cannot start, stop or reach any other server.
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60


def sandbox_folder(spawner) -> Path:  # type: ignore[no-untyped-def]
    """The sandbox's own root: `<root>/<user>/<server name>` (the default server: `_`)."""
    return ROOT / spawner.user.name / (spawner.name or "_")


def pre_spawn_hook(spawner) -> None:  # type: ignore[no-untyped-def]
    """Give the sandbox its folder (created once, kept across pauses) and its template."""
    template = (spawner.user_options or {}).get("template") or "default"
    if template not in SANDBOX_TEMPLATES:
        known = ", ".join(sorted(SANDBOX_TEMPLATES))
        raise ValueError(f"no template {template!r} here (known: {known})")
    folder = sandbox_folder(spawner)
    folder.mkdir(parents=True, exist_ok=True)
    if SPAWNER == "localprocess" and os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam(spawner.user.name)
        for path in (folder.parent, folder):
            os.chown(path, account.pw_uid, account.pw_gid)
    spawner.notebook_dir = str(folder)
    spawner.args = [*spawner.args, *SANDBOX_TEMPLATES[template]]


c.Spawner.pre_spawn_hook = pre_spawn_hook

if IDLE_TIMEOUT:
    c.JupyterHub.services = [
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={IDLE_TIMEOUT}",
                f"--cull-every={max(60, IDLE_TIMEOUT // 10)}",
            ],
        }
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    ]
