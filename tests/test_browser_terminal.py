"""The official client's terminal add-on (`@cloudflare/sandbox/xterm`'s `SandboxAddon`, 0.12.10,
unchanged) with a real xterm.js in headless Chromium, on a session's terminal over `/ws/pty`:
what a web page built on the official client shows a person.

The page is served at the server's own origin (Playwright answers for one URL there), so the
WebSocket passes Jupyter's origin check as a page of the server would; the token rides in the
URL, as a browser's WebSocket cannot set headers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from jupyter_interp_ext.testing import ServerProcess, wait_for

pytestmark = pytest.mark.slow  # it takes seconds

MODULES = Path(__file__).resolve().parent / "conformance" / "node_modules"
XTERM = MODULES / "@xterm" / "xterm" / "lib" / "xterm.js"
ADDON = MODULES / "@cloudflare" / "sandbox" / "dist" / "xterm" / "index.js"

DRIVER = """
const terminal = new Terminal({ cols: 100, rows: 30 });
terminal.open(document.getElementById("screen"));
window.terminal = terminal;
window.changes = [];
const addon = new SandboxAddon({
  getWebSocketUrl: ({ sessionId, origin }) =>
    `${origin}/sandbox/ws/pty?sessionId=${sessionId}&token=${window.TOKEN}`,
  onStateChange: (state, error) => window.changes.push([state, error ? error.message : null]),
  reconnect: false,
});
terminal.loadAddon(addon);
addon.connect({ sandboxId: "page", sessionId: "web" });
"""


def changes(page: Page) -> list[list[str | None]]:
    """The add-on's state changes so far, `[state, error message]` (none before the page's
    module has run)."""
    return list(page.evaluate("window.changes || []"))


def screen_text(page: Page) -> str:
    """What xterm.js shows, line by line (its buffer, as a person reads it)."""
    return str(
        page.evaluate(
            """() => {
              const buffer = window.terminal.buffer.active;
              const lines = [];
              for (let i = 0; i < buffer.length; i++) {
                lines.push(buffer.getLine(i).translateToString(true));
              }
              return lines.join("\\n");
            }"""
        )
    )


def test_the_official_terminal_addon_drives_a_session_terminal(
    lab: ServerProcess, page_of_an_app: Page
) -> None:
    (lab.root / "sub").mkdir()
    lab.request(
        "POST",
        "/api/execute",
        {"command": "cd sub && export MARK=from-the-session", "sessionId": "web"},
    )
    page = page_of_an_app
    origin = f"http://127.0.0.1:{lab.port}"

    def blank(route: Route) -> None:
        route.fulfill(
            content_type="text/html", body='<html><body><div id="screen"></div></body></html>'
        )

    page.route(f"{origin}/terminal-page", blank)
    page.goto(f"{origin}/terminal-page")
    page.evaluate(f"window.TOKEN = {json.dumps(lab.token)}")
    page.add_script_tag(path=str(XTERM))
    page.add_script_tag(content=ADDON.read_text() + DRIVER, type="module")
    wait_for(lambda: ["connected", None] in changes(page), "the add-on connected")
    # A person types once the shell shows its prompt, into the terminal they clicked.
    wait_for(lambda: re.search(r"[#$] $", screen_text(page), re.M), "the shell's prompt", 30)

    page.click("#screen")
    page.keyboard.type("echo $MARK in $(pwd); stty size\n")
    wait_for(
        lambda: f"from-the-session in {lab.root.resolve() / 'sub'}\n30 100" in screen_text(page),
        "the session's state at the page's size",
        30,
    )
    page.evaluate("window.terminal.resize(60, 20)")  # the add-on sends the new size
    page.keyboard.type("clear; stty size\n")
    wait_for(lambda: "20 60" in screen_text(page).splitlines(), "the new size", 30)
    page.keyboard.type("exit 7\n")
    wait_for(
        lambda: any(m == "Session exited with code 7" for _, m in changes(page)),
        "the add-on told of the exit",
        30,
    )
