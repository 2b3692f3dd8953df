"""Shared fixtures: a real Jupyter server (pytest-jupyter) with the extension, and API helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jupyter_server.gateway.gateway_client import GatewayClient

from jupyter_interp_ext.testing import server_config

pytest_plugins = ["pytest_jupyter.jupyter_server", "jupyter_interp_ext.pytest_plugin"]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config()


@pytest.fixture
def server(api, jp_serverapp, jp_http_port, jp_base_url) -> dict[str, str]:
    """How to reach the test's server (`api` makes it listen)."""
    return {
        "server_url": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "token": jp_serverapp.identity_provider.token,
    }


@pytest.fixture(autouse=True)
def project_kernelspecs(jp_environ, monkeypatch) -> None:
    """pytest-jupyter hides installed kernelspecs; the repo's `kernels/` holds ours."""
    monkeypatch.setenv("JUPYTER_PATH", str(REPO))


def pytest_runtest_setup(item) -> None:
    """The Gateway client is a process-wide singleton: drop the one an earlier test's server
    configured, so each server (gateway or not) configures its own."""
    GatewayClient.clear_instance()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (`report_call`), for fixtures that keep
    artifacts of a failed test (browser screenshots)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
