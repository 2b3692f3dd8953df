"""Who may call what, and the small routes: ping, version, health, unknown paths."""

from __future__ import annotations

import json
import re

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import AsyncHTTPClient

from jupyter_interp_ext import __version__
from jupyter_interp_ext.pytest_plugin import results

ROUTES = [
    ("GET", "api/ping", ("read", "api")),
    ("GET", "api/version", ("read", "api")),
    ("GET", "api/openapi.json", ("read", "api")),
    ("GET", "api/interpreter/health", ("read", "kernels")),
    ("GET", "api/contexts", ("read", "kernels")),
    ("POST", "api/contexts", ("write", "kernels")),
    ("DELETE", "api/contexts/some-id", ("write", "kernels")),
    ("POST", "api/contexts/some-id/restart", ("execute", "kernels")),
    ("POST", "api/contexts/some-id/interrupt", ("execute", "kernels")),
    ("POST", "api/execute/code", ("execute", "kernels")),
    ("GET", "api/execute/code/some-id", ("read", "kernels")),
    ("DELETE", "api/execute/code/some-id", ("execute", "kernels")),
    ("GET", "api/execute/code/some-id/stream", ("execute", "kernels")),
    ("POST", "api/execute", ("execute", "terminals")),
    ("POST", "api/execute/stream", ("execute", "terminals")),
    ("GET", "api/commands", ("read", "terminals")),
    ("POST", "api/session/create", ("write", "sessions")),
    ("GET", "api/session/list", ("read", "sessions")),
    ("POST", "api/session/delete", ("write", "sessions")),
    ("POST", "api/read", ("read", "contents")),
    ("POST", "api/read/stream", ("read", "contents")),
    ("POST", "api/list-files", ("read", "contents")),
    ("POST", "api/exists", ("read", "contents")),
    ("POST", "api/watch", ("read", "contents")),
    ("POST", "api/git/checkout", ("write", "contents")),
    ("POST", "api/backup/create", ("write", "contents")),
    ("POST", "api/backup/restore", ("write", "contents")),
    ("POST", "api/backup/upload-parts", ("read", "contents")),
    ("POST", "api/watch/check", ("read", "contents")),
    ("POST", "api/write", ("write", "contents")),
    ("POST", "api/delete", ("write", "contents")),
    ("POST", "api/rename", ("write", "contents")),
    ("POST", "api/move", ("write", "contents")),
    ("POST", "api/mkdir", ("write", "contents")),
    ("POST", "api/process/start", ("execute", "terminals")),
    ("POST", "api/port-watch", ("execute", "terminals")),
    ("GET", "api/process/list", ("execute", "terminals")),
    ("DELETE", "api/process/kill-all", ("execute", "terminals")),
    ("GET", "api/process/some-id", ("execute", "terminals")),
    ("DELETE", "api/process/some-id", ("execute", "terminals")),
    ("GET", "api/process/some-id/logs", ("execute", "terminals")),
    ("GET", "api/process/some-id/stream", ("execute", "terminals")),
]


class RecordingAuthorizer(Authorizer):
    """Records each (action, resource) asked for, and refuses those in `denied`."""

    asked: list[tuple[str, str]] = []
    denied: set[tuple[str, str]] = set()

    def is_authorized(self, handler, user, action, resource) -> bool:
        self.asked.append((action, resource))
        return (action, resource) not in self.denied


@pytest.fixture
def jp_server_config():
    RecordingAuthorizer.asked = []
    RecordingAuthorizer.denied = set()
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_interp_ext": True},
            "authorizer_class": RecordingAuthorizer,
        },
    }


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "permission"), ROUTES)
async def test_each_route_asks_for_its_permission(api, method, path, permission):
    RecordingAuthorizer.asked.clear()
    await api.call(method, path, {} if method == "POST" else None)
    assert RecordingAuthorizer.asked[-1:] == [permission]


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES)
async def test_a_denied_permission_is_403_and_does_nothing(
    api, jp_serverapp, jp_root_dir, method, path, permission
):
    RecordingAuthorizer.denied = {permission}
    body = {
        "language": "python",
        "command": "touch ran",
        "id": "x",
        "sessionId": "x",
        "path": "ran",
        "content": "x",
        "oldPath": "ran",
        "newPath": "ran2",
        "sourcePath": "ran",
        "destinationPath": "ran2",
    }
    status, answer = await api.call(method, path, body if method == "POST" else None)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert answer["httpStatus"] == 403
    assert list(jp_serverapp.kernel_manager.list_kernel_ids()) == []
    assert jp_serverapp.web_app.settings["interp_shell_session_manager"].list() == []
    assert not (jp_root_dir / "ran").exists()


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES)
async def test_no_route_answers_without_a_token(api, method, path, permission):
    for headers in ({}, {"Authorization": "token wrong"}):
        response = await AsyncHTTPClient().fetch(
            f"{api.url}/{path}",
            method=method,
            headers=headers,
            body="{}" if method == "POST" else None,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        body = json.loads(response.body)
        assert (response.code, body["code"]) == (403, "PERMISSION_DENIED")
        # Every method hears what is missing: the token (not an XSRF field, for a POST).
        assert body["message"].startswith("Forbidden: send the server's token"), body


async def test_ping_version_and_health(api):
    status, ping = await api.call("GET", "api/ping")
    assert (status, ping["success"], ping["message"]) == (200, True, "pong")
    status, version = await api.call("GET", "api/version")
    assert version["version"] == __version__
    status, health = await api.call("GET", "api/interpreter/health")
    assert health["status"] == "healthy"
    assert {"python", "javascript", "typescript"} <= set(health["languages"])


async def test_unknown_path_is_a_protocol_404(api):
    status, body = await api.call("GET", "api/not/a/route")
    assert (status, body["code"]) == (404, "UNKNOWN_ERROR")
    assert body["message"] == "The requested endpoint was not found"


async def test_wrong_method_is_a_json_error(api):
    status, body = await api.call("PUT", "api/contexts", {})
    assert status == 405
    assert body["code"] == "UNKNOWN_ERROR"


async def test_openapi_describes_every_route(api, jp_base_url):
    from jupyter_interp_ext.handlers import _ROUTES
    from jupyter_interp_ext.handlers.openapi import document

    status, served = await api.call("GET", "api/openapi.json")
    assert served == document(f"{jp_base_url}sandbox")
    assert served["openapi"] == "3.1.0"
    described = {re.sub(r"\{[^}]+\}", "*", path) for path in served["paths"]}
    # (WebSocket routes are not HTTP exchanges OpenAPI can describe: docs/api.md has them.)
    routed = {
        "/" + re.sub(r"\(\?P<[^>]+>[^)]+\)", "*", route[0])
        for route in _ROUTES
        if "<rest>" not in route[0] and not route[0].startswith("ws/")
    }
    assert routed == described


async def test_commands_lists_what_the_shells_path_has(api, jp_serverapp):
    sessions = jp_serverapp.web_app.settings["interp_shell_session_manager"]
    sessions.reported_commands = ["bash", "git", "no-such-command-here"]
    status, body = await api.call("GET", "api/commands")
    assert (status, body["availableCommands"], body["count"]) == (200, ["bash", "git"], 2)


EVERY_RIGHT = {
    (action, resource)
    for action in ("read", "write", "execute")
    for resource in ("kernels", "terminals", "contents", "sessions", "api")
}


@pytest.mark.slow
async def test_following_a_run_needs_execute_on_kernels_and_nothing_more(api, jp_serverapp):
    context_id = (await api.create("python"))["contextId"]
    events = await api.run(context_id, "print('out')")
    store = jp_serverapp.web_app.settings["interp_execution_manager"].executions
    (execution,) = store.executions.values()
    stream = f"api/execute/code/{execution.id}/stream"
    RecordingAuthorizer.denied = {("execute", "kernels")}
    for method, path in (("GET", stream), ("DELETE", f"api/execute/code/{execution.id}")):
        status, answer = await api.call(method, path)
        assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    RecordingAuthorizer.denied = EVERY_RIGHT - {("execute", "kernels")}
    status, replay = await api.call("GET", stream)
    assert (status, replay) == (200, events)
    status, answer = await api.call("GET", f"api/execute/code/{execution.id}")
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    RecordingAuthorizer.denied = EVERY_RIGHT - {("read", "kernels")}
    status, answer = await api.call("GET", f"api/execute/code/{execution.id}")
    assert (status, answer["status"]) == (200, "completed")


@pytest.mark.slow
async def test_restart_and_interrupt_need_execute_on_kernels_and_nothing_more(api):
    context_id = (await api.create("python"))["contextId"]
    await api.run(context_id, "state = 'kept'")
    RecordingAuthorizer.denied = {("execute", "kernels")}
    for action in ("restart", "interrupt"):
        status, answer = await api.call("POST", f"api/contexts/{context_id}/{action}")
        assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    RecordingAuthorizer.denied = EVERY_RIGHT - {("execute", "kernels")}
    assert results(await api.run(context_id, "state"))[0]["text"] == "'kept'"  # not restarted
    for action in ("interrupt", "restart"):
        status, answer = await api.call("POST", f"api/contexts/{context_id}/{action}")
        assert (status, answer["contextId"]) == (200, context_id)
    assert (await api.run(context_id, "state"))[-1]["ename"] == "NameError"  # now it was
