"""Configuration written for 0.1 keeps working: the `ContextManager` section and the
`*_manager_class` traits renamed in 0.2 still apply, with a deprecation warning."""

from __future__ import annotations

import logging

import pytest

from jupyter_interp_ext.contexts import CodeContextRegistry
from jupyter_interp_ext.shell_sessions import ShellSessionManager


class OldStyleContexts(CodeContextRegistry):
    pass


class OldStyleSessions(ShellSessionManager):
    pass


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "KernelPool": {"sizes": {}},
        "ContextManager": {"max_contexts": 1, "ready_timeout": 45.0},
        "CodeContextRegistry": {"ready_timeout": 50.0},
        "InterpreterApp": {
            "context_manager_class": OldStyleContexts,
            "session_manager_class": OldStyleSessions,
        },
    }


async def test_the_old_section_and_trait_names_still_apply(api, jp_serverapp):
    settings = jp_serverapp.web_app.settings
    contexts = settings["interp_context_registry"]
    assert type(contexts) is OldStyleContexts
    assert type(settings["interp_shell_session_manager"]) is OldStyleSessions
    assert contexts.max_contexts == 1  # from the old section
    assert contexts.ready_timeout == 50.0  # the new section wins where both say something
    await api.create("python")
    status, body = await api.call("POST", "api/contexts", {"language": "python"})
    assert (status, body["context"]["setting"]) == (429, "CodeContextRegistry.max_contexts")


async def test_setting_an_old_trait_warns_with_the_new_name(jp_serverapp):
    [app] = jp_serverapp.extension_manager.extension_apps["jupyter_interp_ext"]
    heard: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())
    app.log.addHandler(handler)
    try:
        app.session_manager_class = ShellSessionManager
    finally:
        app.log.removeHandler(handler)
    assert app.shell_session_manager_class is ShellSessionManager
    assert heard == [
        "InterpreterApp.session_manager_class is deprecated: use shell_session_manager_class"
    ]
