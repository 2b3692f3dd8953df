"""Each `InterpreterApp.*_class` trait really swaps the class the API uses.

Deployments subclass a manager to change one behaviour (a different file store, an audit log of
commands); these tests configure a subclass that records its calls and drive the API route that
must reach it.
"""

from __future__ import annotations

import pytest

from jupyter_interp_ext.files.manager import FileManager
from jupyter_interp_ext.interpreter.contexts import CodeContextRegistry
from jupyter_interp_ext.interpreter.execution import ExecutionManager
from jupyter_interp_ext.interpreter.pool import KernelPool
from jupyter_interp_ext.shells.processes import ProcessManager
from jupyter_interp_ext.shells.sessions import ShellSessionManager

pytestmark = pytest.mark.slow  # every test here takes seconds

CALLS: list[str] = []


class RecordingContexts(CodeContextRegistry):
    async def create(self, *args, **kwargs):
        CALLS.append("contexts.create")
        return await super().create(*args, **kwargs)


class RecordingExecution(ExecutionManager):
    def deadline(self, timeout):
        CALLS.append("execution.deadline")
        return super().deadline(timeout)


class RecordingSessions(ShellSessionManager):
    async def execute_sessionless(self, *args, **kwargs):
        CALLS.append("sessions.execute_sessionless")
        return await super().execute_sessionless(*args, **kwargs)


class RecordingProcesses(ProcessManager):
    async def start(self, *args, **kwargs):
        CALLS.append("processes.start")
        return await super().start(*args, **kwargs)


class RecordingPool(KernelPool):
    async def take(self, language):
        CALLS.append("pool.take")
        return await super().take(language)


class RecordingFiles(FileManager):
    async def exists(self, *args, **kwargs):
        CALLS.append("files.exists")
        return await super().exists(*args, **kwargs)


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "KernelPool": {"sizes": {}},
        "InterpreterApp": {
            "context_registry_class": RecordingContexts,
            "execution_manager_class": RecordingExecution,
            "shell_session_manager_class": RecordingSessions,
            "process_manager_class": RecordingProcesses,
            "kernel_pool_class": RecordingPool,
            "file_manager_class": RecordingFiles,
        },
    }


async def test_every_configured_class_is_the_one_the_api_uses(api):
    CALLS.clear()
    context = (await api.create("python"))["contextId"]
    assert (await api.run(context, "1"))[-1]["type"] == "execution_complete"
    status, _ = await api.call(
        "POST", "api/execute", {"command": "true", "sessionId": "__DISABLE_SESSION__"}
    )
    status, proc = await api.call("POST", "api/process/start", {"command": "true"})
    status, _ = await api.call("POST", "api/exists", {"path": "x"})
    assert sorted(set(CALLS)) == [
        "contexts.create",
        "execution.deadline",
        "files.exists",
        "pool.take",
        "processes.start",
        "sessions.execute_sessionless",
    ]
