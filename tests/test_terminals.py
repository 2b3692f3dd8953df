"""Terminals: `/ws/pty` (the official client 0.12's framing) and `/ws/terminal` (its next
one) on Jupyter's own terminals, driven by a WebSocket client the way the client's terminal
add-on drives them: an interactive shell and Python REPL, resize, Ctrl-C, exit, and a
connection dropped and resumed from its cursor."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
import websockets
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import AsyncHTTPClient

from jupyter_interp_ext.pytest_plugin import SHELL_PROMPT, alive, wait_until
from jupyter_interp_ext.testing import server_config

READ_SECONDS = 30


class Screen:
    """One WebSocket to a terminal: what it showed (bytes) and the control messages it got;
    in the `/ws/terminal` framing, each chunk's bytes are checked against its header."""

    def __init__(self, ws: Any, chunked: bool) -> None:
        self.ws = ws
        self.chunked = chunked
        self.shown = b""
        self.controls: list[dict[str, Any]] = []
        self.cursor: str | None = None
        self._expected: int | None = None  # byteLength announced for the next binary frame

    async def receive(self) -> None:
        message = await asyncio.wait_for(self.ws.recv(), READ_SECONDS)
        if isinstance(message, bytes):
            if self.chunked:
                assert self._expected == len(message), "a chunk's bytes follow its header"
                self._expected = None
            self.shown += message
            return
        control = json.loads(message)
        self.controls.append(control)
        if control["type"] == "chunk":
            assert self._expected is None, "two chunk headers in a row"
            self._expected = control["byteLength"]
            self.cursor = control["cursor"]

    async def until(self, pattern: bytes | str) -> re.Match[bytes]:
        """Read until `pattern` (a regular expression over what was shown) is on screen."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        while (found := regex.search(self.shown)) is None:
            try:
                await self.receive()
            except TimeoutError:
                raise AssertionError(f"{pattern!r} not shown in {self.shown[-500:]!r}") from None
        return found

    async def control(self, kind: str, nth: int = 1) -> dict[str, Any]:
        """Read until the `nth` control message of this type arrives."""
        while len(found := [c for c in self.controls if c["type"] == kind]) < nth:
            await self.receive()
        return found[nth - 1]

    async def type(self, text: str) -> None:
        await self.ws.send(text.encode())

    async def send_control(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))


def ws_url(api, route: str, **query: str) -> str:
    return (
        api.url.replace("http://", "ws://")
        + f"/ws/{route}?"
        + "&".join(f"{k}={v}" for k, v in query.items())
    )


def connect(api, route: str, **query: str) -> Any:
    return websockets.connect(ws_url(api, route, **query), additional_headers=api.headers)


async def run(api, command: str, session: str) -> dict[str, Any]:
    status, data = await api.call("POST", "api/execute", {"command": command, "sessionId": session})
    assert status == 200, data
    return data


async def terminal_names(api) -> list[str]:
    response = await api._fetch("api", "terminals", method="GET")
    return [t["name"] for t in json.loads(response.body)]


async def test_pty_runs_an_interactive_python_in_the_session(api, jp_root_dir):
    (jp_root_dir / "work").mkdir()
    await run(api, "cd work && export GREETING=hello", "agent")
    async with connect(api, "pty", sessionId="agent", cols="100", rows="30") as ws:
        screen = Screen(ws, chunked=False)
        await screen.control("ready")
        await screen.type("echo $GREETING from $(pwd); stty size\r")
        await screen.until(rf"hello from {jp_root_dir.resolve() / 'work'}\r\n30 100")

        await screen.send_control({"type": "resize", "cols": 50, "rows": 20})
        await screen.type("stty size\r")
        await screen.until(r"\r20 50\r\n")

        await screen.type("python3 -q\r")
        await screen.until(r">>> $")
        await screen.type("6 * 7\r")
        await screen.until(r"\r\n42\r\n>>> $")
        await screen.type("while True: pass\r\r")
        await screen.until(r"\.\.\. \r\n$")  # the loop runs
        await screen.type("\x03")
        await screen.until(r"KeyboardInterrupt\r\n>>> $")
        await screen.type("exit()\r")
        await screen.until(SHELL_PROMPT)

        assert "sandbox_agent" in await terminal_names(api)
        metrics = (await api._fetch("metrics", method="GET")).body.decode()
        assert re.search(r'^sandbox_terminal_connections\{route="pty"\} [1-9]', metrics, re.M)
        assert re.search(r"^sandbox_terminals_started_total [1-9]", metrics, re.M)
        await screen.type("exit 3\r")
        assert (await screen.control("exit")) == {"type": "exit", "code": 3}
        await asyncio.wait_for(ws.wait_closed(), READ_SECONDS)
        assert ws.close_code == 1000
    await wait_until(lambda: _gone(api, "sandbox_agent"), "the terminal left /api/terminals")


async def _gone(api, name: str) -> bool:
    return name not in await terminal_names(api)


async def test_pty_reconnects_to_the_same_screen_and_ends_with_its_session(api):
    async with connect(api, "pty", sessionId="s") as ws:
        first = Screen(ws, chunked=False)
        await first.control("ready")
        await first.type("echo mark-$((40+2))\r")
        await first.until(r"mark-42\r\n")
    async with connect(api, "pty", sessionId="s") as ws:
        # What the terminal showed comes first, as one frame, then `ready`.
        shown = await asyncio.wait_for(ws.recv(), READ_SECONDS)
        assert isinstance(shown, bytes) and b"mark-42\r\n" in shown
        ready = json.loads(await asyncio.wait_for(ws.recv(), READ_SECONDS))
        assert ready["type"] == "ready" and alive(ready["pid"])
        again = Screen(ws, chunked=False)
        status, _ = await api.call("POST", "api/session/delete", {"sessionId": "s"})
        assert status == 200
        assert (await again.control("exit"))["type"] == "exit"
    assert await _gone(api, "sandbox_s")


async def test_terminal_resumes_from_its_cursor_with_nothing_lost_or_doubled(api):
    async with connect(api, "pty", sessionId="r") as ws:
        await Screen(ws, chunked=False).control("ready")
    name = "sandbox_r"
    async with connect(api, "terminal", terminalId=name) as watcher_ws:
        watcher = Screen(watcher_ws, chunked=True)
        assert (await watcher.control("ready")) == {"type": "ready"}
        async with connect(api, "terminal", terminalId=name) as ws:
            agent = Screen(ws, chunked=True)
            await agent.control("ready")
            await agent.type("for i in 1 2 3; do echo line-$i; done\r")
            await agent.until(r"line-3\r\n")
        kept, cursor = agent.shown, agent.cursor
        assert cursor is not None
        # While the agent is away, the terminal goes on (typed by someone else).
        await watcher.type("echo away-$((6*7))\r")
        await watcher.until(r"away-42\r\n")
        async with connect(api, "terminal", terminalId=name, cursor=cursor) as ws:
            back = Screen(ws, chunked=True)
            assert (await back.control("ready")) == {"type": "ready", "cursor": cursor}
            await back.type("echo done\r")
            await back.until(r"\rdone\r\n")
            await watcher.until(r"\rdone\r\n")
            assert not any(c["type"] == "truncated" for c in back.controls)
            # The agent's two connections together showed exactly what the watcher saw.
            assert through_done(kept + back.shown) == through_done(watcher.shown)


def through_done(shown: bytes) -> bytes:
    marker = b"\rdone\r\n"
    return shown[: shown.index(marker) + len(marker)]


@pytest.mark.parametrize(
    "jp_server_config", [server_config(SandboxTerminals={"output_limit": 300})]
)
async def test_a_cursor_older_than_what_is_kept_is_told_it_lost_output(api):
    async with connect(api, "pty", sessionId="t") as ws:
        screen = Screen(ws, chunked=False)
        await screen.control("ready")
        await screen.type("seq 1 400 | tr '\\n' ' '; echo; echo end-$((1+1))\r")
        await screen.until(r"end-2\r\n")
    for cursor in ("1", "not-a-cursor"):
        async with connect(api, "terminal", terminalId="sandbox_t", cursor=cursor) as ws:
            late = Screen(ws, chunked=True)
            await late.control("ready")
            await late.until(r"end-2\r\n")
            assert late.controls[1] == {"type": "truncated"}
            assert len(late.shown) <= 4 * 300


async def test_terminal_controls_interrupt_and_terminate(api):
    async with connect(api, "pty", sessionId="c") as ws:
        await Screen(ws, chunked=False).control("ready")
    async with connect(api, "terminal", terminalId="sandbox_c", cols="90", rows="25") as ws:
        screen = Screen(ws, chunked=True)
        await screen.control("ready")
        # (The program says when it runs: Ctrl-C before it is the terminal's foreground job
        # would reach the shell instead.)
        await screen.type('stty size; python3 -c \'print("wait"+"ing"); input()\'\r')
        await screen.until(r"25 90\r\nwaiting\r\n")
        await screen.send_control({"type": "interrupt"})
        await screen.until(r"KeyboardInterrupt\r\n(.|\n)*" + SHELL_PROMPT)  # the prompt is back
        await screen.type("echo after-$?\r")
        await screen.until(r"after-130\r\n")
        await screen.send_control({"type": "resize", "cols": 0, "rows": 5})
        assert (await screen.control("error")) == {
            "type": "error",
            "message": "Invalid control message",
        }
        await screen.send_control({"type": "terminate"})
        exit = await screen.control("exit")
        assert exit["exit"]["timedOut"] is False and exit["cursor"].isdigit()
        await asyncio.wait_for(ws.wait_closed(), READ_SECONDS)
        assert ws.close_code == 1000


async def test_refusals(api):
    for route, query, field in (
        ("pty", {}, "sessionId"),
        ("pty", {"sessionId": "x", "cols": "wide"}, "cols"),
        ("terminal", {}, "terminalId"),
    ):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(api, route, **query):
                pass
        response = refused.value.response
        assert response.status_code == 400
        assert json.loads(response.body)["code"] == "VALIDATION_FAILED", field

    plain = await AsyncHTTPClient().fetch(
        api.url + "/ws/pty?sessionId=x", headers=api.headers, raise_error=False
    )  # (no upgrade)
    assert (plain.code, json.loads(plain.body)["code"]) == (400, "VALIDATION_FAILED")
    assert "WebSocket route" in json.loads(plain.body)["message"]

    async with connect(api, "terminal", terminalId="nobody") as ws:
        message = json.loads(await ws.recv())
        assert message == {"type": "error", "message": "Terminal not found: nobody"}
        await asyncio.wait_for(ws.wait_closed(), READ_SECONDS)
        assert ws.close_code == 1008

    async with connect(api, "pty", sessionId="e") as ws:
        screen = Screen(ws, chunked=False)
        await screen.control("ready")
        await ws.send("not json")
        assert (await screen.control("error"))["message"] == "Invalid control message"
        await ws.send(json.dumps({"type": "resize", "cols": -1, "rows": 10}))
        second = await screen.control("error", nth=2)
        assert second["message"] == "Invalid dimensions: cols and rows must be positive"
        await screen.type("echo still-$((2+2))\r")
        await screen.until(r"still-4\r\n")

    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url(api, "pty", sessionId="x")):
            pass
    assert refused.value.response.status_code == 403


class CommandsOnly(Authorizer):
    """Allows running commands (`execute` on `terminals`) and nothing else."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return (action, resource) == ("execute", "terminals")


class AllButTerminals(Authorizer):
    def is_authorized(self, handler, user, action, resource) -> bool:
        return resource != "terminals"


@pytest.mark.parametrize(
    "jp_server_config",
    [
        server_config(ServerApp={"authorizer_class": CommandsOnly}),
        server_config(ServerApp={"authorizer_class": AllButTerminals}),
    ],
)
async def test_terminals_need_exactly_the_right_to_run_commands(api, jp_server_config):
    allowed = jp_server_config["ServerApp"]["authorizer_class"] is CommandsOnly
    if allowed:
        async with connect(api, "pty", sessionId="p") as ws:
            screen = Screen(ws, chunked=False)
            await screen.control("ready")
            await screen.type("echo ok-$((3*3))\r")
            await screen.until(r"ok-9\r\n")
        async with connect(api, "terminal", terminalId="sandbox_p") as ws:
            await Screen(ws, chunked=True).control("ready")
        return
    for route, query in (("pty", {"sessionId": "p"}), ("terminal", {"terminalId": "1"})):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(api, route, **query):
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    "jp_server_config", [server_config(ServerApp={"terminals_enabled": False})]
)
async def test_a_server_without_terminals_says_so(api):
    async with connect(api, "pty", sessionId="n") as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), READ_SECONDS))
        assert message["type"] == "error" and "has no terminals" in message["message"]
        await asyncio.wait_for(ws.wait_closed(), READ_SECONDS)
        assert ws.close_code == 1011
    status, result = await api.call(
        "POST", "api/execute", {"command": "echo still", "sessionId": "n"}
    )
    assert (status, result["stdout"]) == (200, "still")


async def test_a_named_shell_and_session_ids_a_terminal_name_cannot_hold(api):
    async with connect(api, "pty", sessionId="odd.id@x", shell="sh") as ws:
        screen = Screen(ws, chunked=False)
        await screen.control("ready")
        await screen.type("echo running-$0\r")
        await screen.until(r"running-(\S*/)?sh\r\n")
    names = await terminal_names(api)
    # Readable, unique (a hash of the id), and a name Jupyter's routes take.
    (name,) = [n for n in names if n.startswith("sandbox_odd_id_x_")]
    assert re.fullmatch(r"\w+", name)

    async with connect(api, "pty", sessionId="other", shell="no-such-shell") as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), READ_SECONDS))
        assert message == {"type": "error", "message": "No such shell: no-such-shell"}
        await asyncio.wait_for(ws.wait_closed(), READ_SECONDS)
        assert ws.close_code == 1011
