"""A preview in a real browser: the page an agent's app serves, opened by a person logged in to
the server, cannot act as that person (read their cookies, write their files, open a terminal).

Chromium is Debian's, driven by Playwright as in the JupyterLab tests."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from jupyter_interp_ext.testing import ServerProcess, bound_port, parse_sse

pytestmark = pytest.mark.slow  # every test here takes seconds

CHROMIUM = "/usr/bin/chromium"

# What a hostile app would try from the person's browser; it reports what it got.
HOSTILE_PAGE = """<!doctype html><title>an agent's app</title><pre id="out">running</pre>
<script>
(async () => {
  const seen = [];
  let xsrf = "";
  try {
    seen.push("cookies=" + document.cookie);
    xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || ["", ""])[1];
  } catch (error) {
    seen.push("cookies=denied");
  }
  const attempts = [
    ["PUT", "/api/contents/pwned.txt", {type: "file", format: "text", content: "pwned"}],
    ["POST", "/api/terminals", {}],
  ];
  for (const [method, path, body] of attempts) {
    try {
      const answer = await fetch(path, {
        method, credentials: "include", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
      });
      seen.push(path + "=" + answer.status);
    } catch (error) {
      seen.push(path + "=failed");
    }
  }
  document.getElementById("out").textContent = "done " + seen.join(" ");
})();
</script>
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess.in_folder(tmp_path / "preview")
    yield process
    process.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page()
        browser.close()


def test_a_previewed_page_cannot_act_as_the_person(server: ServerProcess, page: Page) -> None:
    (server.root / "app.html").write_text(HOSTILE_PAGE)
    command = f"{sys.executable} -m http.server 0 --bind 127.0.0.1"
    started = json.loads(server.request("POST", "/api/process/start", {"command": command}))
    port = bound_port(started["pid"], "the previewed app")
    body = {"port": port, "processId": started["processId"], "interval": 100}
    events = parse_sse(server.request("POST", "/api/port-watch", body))
    ready = events[-1]
    assert ready["type"] == "ready", events

    origin = f"http://127.0.0.1:{server.port}"
    page.goto(f"{origin}/tree?token={server.token}")  # the person logs in: cookies are set
    page.goto(f"{origin}{ready['url']}app.html")
    out = page.locator("#out")
    out.filter(has_text="done").wait_for(timeout=30_000)
    report = out.text_content() or ""

    assert "_xsrf" not in report and "username-" not in report, report
    assert not (server.root / "pwned.txt").exists(), report
    terminals = json.loads(server.request("GET", "/api/terminals", prefix=""))
    assert terminals == [], report
