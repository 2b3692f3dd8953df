"""A person in JupyterLab watches an agent: a real `jupyter server` with JupyterLab and
jupyter-collaboration, a real headless Chromium, the Python client as the agent.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright
for Python. A failing test leaves a screenshot of the page in `test-artifacts/`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page

from jupyter_interp_ext.client import PtySize, Sandbox
from jupyter_interp_ext.testing import ServerProcess, wait_for

pytestmark = pytest.mark.slow  # every test here takes seconds

WAIT_MS = 30_000


def kernels(lab: ServerProcess) -> list[dict[str, Any]]:
    return json.loads(lab.request("GET", "/api/kernels", prefix=""))


def test_a_person_watches_and_takes_over_in_jupyterlab(lab: ServerProcess, page: Page) -> None:
    agent = Sandbox(f"http://127.0.0.1:{lab.port}/", token=lab.token)
    context = agent.create_code_context(language="python")
    assert context.notebook is not None

    page.goto(f"http://127.0.0.1:{lab.port}/lab/tree/{context.notebook}?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=WAIT_MS)
    # Lab attached to the context's own kernel: one kernel, now with the page's connection.
    wait_for(lambda: [k["connections"] for k in kernels(lab)] == [2], "Lab's kernel connection")
    assert kernels(lab)[0]["id"] == context.id
    # The Running panel shows the context as one kernel, with its notebook, and nothing else.
    page.click("[data-id='jp-running-sessions']")
    panel = page.locator("#jp-running-sessions")
    panel.get_by_text(f"({context.id[:8]})").first.wait_for(timeout=WAIT_MS)
    assert set(re.findall(r"\(([0-9a-f]{8})\)", panel.inner_text())) == {context.id[:8]}
    page.click("[data-id='jp-running-sessions']")  # closed again

    # The agent's runs appear in the page, with their outputs: text, then an image.
    agent.run_code("total = 40\nprint('from the agent:', total)", context=context)
    outputs = page.locator(".jp-OutputArea-output")
    outputs.filter(has_text="from the agent: 40").wait_for(timeout=WAIT_MS)
    agent.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('drawn by the agent')\n"
        "plt.show()",
        context=context,
    )
    page.locator(".jp-OutputArea-output img").first.wait_for(timeout=WAIT_MS)

    # The person runs a cell in the page; the agent sees its variable.
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below the agent's last one
    page.keyboard.press("Enter")
    page.keyboard.type("from_the_person = total + 2")
    page.keyboard.press("Shift+Enter")

    def persons_value() -> str | None:
        result = agent.run_code("globals().get('from_the_person')", context=context)
        return result.text if result.text not in (None, "None") else None

    assert wait_for(persons_value, "the person's variable", seconds=30) == "42"

    # The person's cell stays where they put it, and the agent's next run goes after it.
    agent.run_code("print('after the person')", context=context)
    outputs.filter(has_text="after the person").wait_for(timeout=WAIT_MS)
    sources = page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").all_inner_texts()
    person = next(i for i, s in enumerate(sources) if "from_the_person" in s)
    assert "after the person" in sources[-1] and person < len(sources) - 1
    agent.close()


def test_a_person_opens_the_agents_terminal_in_jupyterlab(lab: ServerProcess, page: Page) -> None:
    """The agent's terminal is one of the server's: the Running panel lists it by its
    session's name, opening it shows what the agent typed, and what the person types the
    agent reads."""
    agent = Sandbox(f"http://127.0.0.1:{lab.port}/", token=lab.token)
    shown: list[bytes] = []
    terminal = agent.pty.create(PtySize(rows=24, cols=80), on_data=shown.append, session="agent")
    terminal.send_stdin("echo typed-by-the-agent-$((6*7))\r")
    wait_for(lambda: b"typed-by-the-agent-42" in b"".join(shown), "the agent's echo")

    # The screen is drawn on a canvas: the person's screen-reader setting puts its text in
    # the page too.
    settings = {"raw": json.dumps({"screenReaderMode": True})}
    lab.request("PUT", "/lab/api/settings/@jupyterlab/terminal-extension:plugin", settings, "")
    page.goto(f"http://127.0.0.1:{lab.port}/lab?token={lab.token}")
    page.click("[data-id='jp-running-sessions']")
    running = page.locator("#jp-running-sessions")
    running.get_by_text("sandbox_agent").first.wait_for(timeout=WAIT_MS)
    running.get_by_text("sandbox_agent").first.click()
    screen = page.locator(".jp-Terminal .xterm-accessibility-tree")
    screen.filter(has_text="typed-by-the-agent-42").wait_for(timeout=WAIT_MS)

    page.locator(".jp-Terminal .xterm-screen").click()
    page.keyboard.type("echo typed-by-the-person-$((40+2))\n")
    wait_for(lambda: b"typed-by-the-person-42" in b"".join(shown), "the person's echo")
    terminal.disconnect()
    agent.close()
