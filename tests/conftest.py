"""Shared fixtures: a real Jupyter server (pytest-jupyter) with the extension, and API helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.gateway.gateway_client import GatewayClient
from playwright.sync_api import Page, sync_playwright

from jupyter_interp_ext.testing import ServerProcess, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server", "jupyter_interp_ext.pytest_plugin"]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"


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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `jupyter server` in a child process, with JupyterLab and jupyter-collaboration as
    installed (their server extensions are enabled by their own configuration files), and
    this extension: for the browser tests."""
    server = ServerProcess.in_folder(tmp_path / "lab")
    yield server
    server.stop()


def browser_page(request: pytest.FixtureRequest, *flags: str) -> Iterator[Page]:
    """A page of Debian's headless Chromium with these command-line `flags`, driven by
    Playwright; a failing test leaves a screenshot of it in `test-artifacts/`."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", *flags]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from browser_page(request)


@pytest.fixture
def page_of_an_app(request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page for a web app at the server's origin that Playwright stands in for (answering
    one URL there): Chromium's local-network check is off, as it would refuse the stand-in
    page, whose address it does not know, a connection to loopback that the app, served from
    the server's own address, would be allowed."""
    yield from browser_page(request, "--disable-features=LocalNetworkAccessChecks")


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
