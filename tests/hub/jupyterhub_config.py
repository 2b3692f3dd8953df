"""The tests' Hub: the reference deployment (deploy/jupyterhub_config.py) as it is, plus what
a test on loopback needs: its state in the test's folder, free ports, users made by an admin
service (whose token the tests hold) rather than by logging in."""

from __future__ import annotations

import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined] # noqa: F821 (JupyterHub's config loader)
load_subconfig(  # type: ignore[name-defined] # noqa: F821
    str(Path(__file__).resolve().parents[2] / "deploy" / "jupyterhub_config.py")
)

STATE = Path(os.environ["SANDBOX_HUB_STATE"])
c.JupyterHub.db_url = f"sqlite:///{STATE / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "cookie_secret")
c.JupyterHub.pid_file = str(STATE / "hub.pid")
c.JupyterHub.hub_port = int(os.environ["SANDBOX_HUB_API_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['SANDBOX_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services.append(
    {"name": "tests", "api_token": os.environ["SANDBOX_HUB_ADMIN_TOKEN"]},
)
c.JupyterHub.load_roles.append(
    {"name": "tests", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["tests"]},
)
