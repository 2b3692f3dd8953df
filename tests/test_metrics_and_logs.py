"""Operators' view: Prometheus figures on /metrics move as work is done; one log line per run."""

from __future__ import annotations

import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow  # every test here takes seconds


async def scrape(jp_fetch) -> dict[tuple[str, tuple], float]:
    text = (await jp_fetch("metrics")).body.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("sandbox_")
    }


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_move_as_work_is_done(api, jp_fetch):
    before = await scrape(jp_fetch)
    context = (await api.create("python"))["contextId"]
    await api.run(context, "print('x' * 10)")
    await api.run(context, "1 / 0")
    await api.run(context, "import time; time.sleep(5)", timeout_ms=300)
    await api.call("POST", "api/execute", {"command": "echo hi", "sessionId": "m"})
    await api.call("POST", "api/execute", {"command": "false", "sessionId": "m"})
    status, proc = await api.call(
        "POST", "api/process/start", {"command": "sleep 300", "sessionId": "m"}
    )
    middle = await scrape(jp_fetch)
    assert delta(before, middle, "sandbox_contexts", language="python") == 1
    assert (
        delta(before, middle, "sandbox_context_starts_total", language="python", source="fresh")
        == 1
    )
    assert delta(before, middle, "sandbox_executions_total", language="python", outcome="ok") == 1
    assert (
        delta(before, middle, "sandbox_executions_total", language="python", outcome="error") == 1
    )
    assert (
        delta(before, middle, "sandbox_executions_total", language="python", outcome="timeout") == 1
    )
    assert delta(before, middle, "sandbox_timeouts_total", kind="code") == 1
    assert delta(before, middle, "sandbox_execution_seconds_count", language="python") == 3
    assert delta(before, middle, "sandbox_output_bytes_total", source="code") >= 11
    assert delta(before, middle, "sandbox_commands_total", outcome="ok") == 1
    assert delta(before, middle, "sandbox_commands_total", outcome="failed") == 1
    assert delta(before, middle, "sandbox_sessions") == 1
    assert delta(before, middle, "sandbox_processes_running") == 1

    await api.call("DELETE", f"api/process/{proc['processId']}")
    await api.call("DELETE", f"api/contexts/{context}")
    after = await scrape(jp_fetch)
    assert delta(before, after, "sandbox_contexts", language="python") == 0
    assert delta(before, after, "sandbox_processes_running") == 0
    assert after[("sandbox_active_streams", ())] == before.get(("sandbox_active_streams", ()), 0)


async def test_one_structured_log_line_per_run_and_command(api, caplog):
    caplog.set_level(logging.INFO)
    context = (await api.create("python"))["contextId"]
    await api.run(context, "print('hello')")
    await api.call("POST", "api/execute", {"command": "echo hi", "sessionId": "logs"})
    runs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("execution ")]
    commands = [r.getMessage() for r in caplog.records if r.getMessage().startswith("command ")]
    assert len(runs) == 1 and len(commands) == 1
    assert re.fullmatch(
        rf"execution context={context} language=python outcome=ok "
        r"duration_ms=\d+\.\d bytes_out=6",
        runs[0],
    )
    assert re.fullmatch(
        r"command session=logs outcome=ok exit_code=0 duration_ms=\d+ bytes_out=2", commands[0]
    )
