"""A context whose kernel died or was restarted loses no output on its next run.

The server's restarter brings a killed kernel back (here polled every 0.1 s, as stable after
0.1 s, so that 50 deaths in a row stay within its restart limit); a restart can also come from
Jupyter's own kernels API. Either way the next run must see all of its output."""

from __future__ import annotations

import os
import signal

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, wait_until

pytestmark = pytest.mark.slow  # every test here takes seconds

ROUNDS = 50


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "KernelRestarter": {"time_to_dead": 0.1, "stable_start_time": 0.1},
    }


@pytest.mark.timeout(600)
async def test_runs_after_kernel_deaths_and_restarts_lose_nothing(api, jp_serverapp, jp_fetch):
    status, created = await api.call("POST", "api/contexts", {"language": "python"})
    assert status == 200, created
    context_id = created["contextId"]
    kernels = jp_serverapp.kernel_manager
    context = jp_serverapp.web_app.settings["interp_context_registry"].get(context_id)
    for round_ in range(ROUNDS):
        if round_ % 2:
            await jp_fetch("api", "kernels", context_id, "restart", method="POST", body="")
        else:
            deaths = context.restarts
            os.kill(kernels.get_kernel(context_id).provisioner.process.pid, signal.SIGKILL)
            await wait_until(lambda d=deaths: context.restarts > d, "the restarter noticed")
        events = await api.run(context_id, f"print('round', {round_})")
        assert [e["type"] for e in events] == ["stdout", "execution_complete"], (round_, events)
        assert outputs(events, "stdout") == f"round {round_}\n"
