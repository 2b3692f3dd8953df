"""Running Python: streaming, rich results, errors, timeouts and concurrency."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from jupyter_interp_ext.pytest_plugin import (
    outputs,
    results,
    start_endless_run,
    wait_until,
)
from jupyter_interp_ext.testing import server_config


@pytest.mark.slow
async def test_state_persists_and_counts_are_real(api, python_context):
    first = await api.run(python_context, "x = 41")
    second = await api.run(python_context, "x + 1")
    assert first[-1] == {"type": "execution_complete", "execution_count": 1}
    assert second[-1] == {"type": "execution_complete", "execution_count": 2}
    [result] = results(second)
    assert result["text"] == "42" and result["isMainResult"] is True


@pytest.mark.slow
async def test_stdout_and_stderr_are_separate_events_with_timestamps(api, python_context):
    events = await api.run(
        python_context, "import sys; print('out'); print('err', file=sys.stderr)"
    )
    assert outputs(events, "stdout") == "out\n"
    assert outputs(events, "stderr") == "err\n"
    for event in events[:-1]:
        assert isinstance(event["timestamp"], float) and event["timestamp"] > 1.7e12


@pytest.mark.slow
async def test_output_arrives_while_the_run_is_still_going(api, python_context):
    timed = await api.stream(
        python_context, "import time\nprint('early', flush=True)\ntime.sleep(1.5)\n'late'"
    )
    (first_at, first), (end_at, end) = timed[0], timed[-1]
    assert first == {**first, "type": "stdout", "text": "early\n"}
    assert end["type"] == "execution_complete"
    assert end_at - first_at > 1.0


@pytest.mark.slow
async def test_rich_results_carry_every_format(api, python_context):
    events = await api.run(
        python_context,
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>bold</b>'))\n"
        "{'a': [1, 2], 'b': None}",
    )
    html, main = results(events)
    assert html["html"] == "<b>bold</b>" and html["isMainResult"] is False
    assert main["json"] == {"a": [1, 2], "b": None}
    assert main["text"] == "{'a': [1, 2], 'b': None}"
    assert main["isMainResult"] is True


@pytest.mark.slow
async def test_list_is_json_and_unserialisable_dict_is_text_only(api, python_context):
    [listed] = results(await api.run(python_context, "[1, 'two', 3.5]"))
    assert listed["json"] == [1, "two", 3.5]
    [odd] = results(await api.run(python_context, "{'f': object}"))
    assert "json" not in odd and odd["text"].startswith("{'f':")


@pytest.mark.slow
async def test_matplotlib_figure_is_a_png(api, python_context):
    events = await api.run(
        python_context,
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()",
    )
    pngs = [r for r in results(events) if "png" in r]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0]["png"]).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.slow
async def test_pandas_dataframe_has_html_and_text(api, python_context):
    [frame] = results(
        await api.run(python_context, "import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    )
    assert "<table" in frame["html"] and "a" in frame["text"]


@pytest.mark.slow
async def test_errors_are_structured_and_plain_text(api, python_context):
    events = await api.run(python_context, "def f():\n    return 1 / 0\nf()")
    error = events[-1]
    assert (error["type"], error["ename"], error["evalue"]) == (
        "error",
        "ZeroDivisionError",
        "division by zero",
    )
    assert not any("\x1b" in line for line in error["traceback"])
    assert any("return 1 / 0" in line for line in error["traceback"])
    assert "execution_complete" not in [e["type"] for e in events]


@pytest.mark.slow
async def test_syntax_error_is_an_error_event(api, python_context):
    events = await api.run(python_context, "x = (1,")
    assert events[-1]["type"] == "error" and events[-1]["ename"] == "SyntaxError"


@pytest.mark.slow
async def test_input_fails_fast(api, python_context):
    events = await api.run(python_context, "input('name? ')")
    assert events[-1]["type"] == "error"
    assert events[-1]["ename"] == "StdinNotImplementedError"


@pytest.mark.slow
async def test_timeout_interrupts_and_keeps_state(api, python_context):
    await api.run(python_context, "kept = 'still here'")
    events = await api.run(
        python_context, "import time\nwhile True: time.sleep(0.05)", timeout_ms=500
    )
    assert events[-1]["type"] == "error" and events[-1]["ename"] == "TimeoutError"
    assert "500 ms" in events[-1]["evalue"] and "state is kept" in events[-1]["evalue"]
    assert events[-1]["reason"] == "timeout"  # the server ended it, not the code
    assert results(await api.run(python_context, "kept"))[0]["text"] == "'still here'"
    raised = await api.run(python_context, "raise TimeoutError('mine')")
    assert raised[-1]["ename"] == "TimeoutError" and "reason" not in raised[-1]


@pytest.mark.slow
async def test_default_timeout_trait_applies(api, python_context, jp_serverapp):
    jp_serverapp.web_app.settings["interp_execution_manager"].default_timeout = 0.5
    events = await api.run(python_context, "import time; time.sleep(30)")
    assert events[-1]["ename"] == "TimeoutError"


@pytest.mark.slow
async def test_concurrent_runs_on_one_context_are_serialised(api, python_context):
    await api.run(python_context, "counter = 0")
    runs = [
        api.run(python_context, "import time\ncounter += 1\ntime.sleep(0.05)\ncounter")
        for _ in range(5)
    ]
    seen = sorted(int(results(events)[0]["text"]) for events in await asyncio.gather(*runs))
    assert seen == [1, 2, 3, 4, 5]
    assert results(await api.run(python_context, "counter"))[0]["text"] == "5"


@pytest.mark.slow
async def test_different_contexts_run_in_parallel(api):
    ids = [(await api.create("python"))["contextId"] for _ in range(2)]
    code = "import time; start = time.time(); time.sleep(1); [start, time.time()]"
    runs = await asyncio.gather(*(api.run(i, code) for i in ids))
    (a_start, a_end), (b_start, b_end) = (results(e)[0]["json"] for e in runs)
    assert a_start < b_end and b_start < a_end  # the runs overlapped in time


@pytest.mark.slow
async def test_output_cap_drops_the_rest_and_says_so(api, python_context, jp_serverapp):
    jp_serverapp.web_app.settings["interp_execution_manager"].max_output_bytes = 1000
    events = await api.run(python_context, "for i in range(500): print('x' * 9)")
    text = outputs(events, "stdout")
    assert len(text) <= 1000
    assert "output truncated" in outputs(events, "stderr")
    assert events[-1]["type"] == "execution_complete"


@pytest.mark.slow
async def test_kernel_killed_mid_run_ends_the_run_and_the_context_recovers(
    api, python_context, jp_serverapp
):
    await api.run(python_context, "before = 1")
    events = await api.run(
        python_context, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert events[-1]["type"] == "error" and events[-1]["ename"] == "KernelDied"
    context = jp_serverapp.web_app.settings["interp_context_registry"].get(python_context)
    # The server's restarter revives a dead kernel within seconds.
    await wait_until(lambda: context.restarts, "the kernel was restarted")
    assert context.restarts == 1
    assert (await api.run(python_context, "before"))[-1]["ename"] == "NameError"
    assert results(await api.run(python_context, "{'after': 2}"))[0]["json"] == {"after": 2}


@pytest.mark.slow
async def test_pre_stream_errors_use_the_protocol_body(api, python_context):
    status, body = await api.call("POST", "api/execute/code", {"context_id": "nope", "code": "1"})
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")
    assert body["error"] == body["message"] == "Code context 'nope' not found"
    status, body = await api.call("POST", "api/execute/code", {"code": "1"})
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "context_id")
    status, body = await api.call("POST", "api/execute/code", {"context_id": python_context})
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "code")
    status, body = await api.call(
        "POST",
        "api/execute/code",
        {"context_id": python_context, "code": "1", "language": "javascript"},
    )
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "language")
    status, body = await api.call(
        "POST",
        "api/execute/code",
        {"context_id": python_context, "code": "1", "timeout_ms": "soon"},
    )
    assert (status, body["context"]["validationErrors"][0]["field"]) == (400, "timeout_ms")
    events = await api.run(python_context, "1 + 1", language="py")
    assert results(events)[0]["text"] == "2"


@pytest.mark.slow
@pytest.mark.parametrize(
    "jp_server_config", [server_config(InterpreterApp={"keepalive_seconds": 0.1})]
)
async def test_client_leaving_mid_run_interrupts_it(
    api, python_context, jp_http_port, jp_base_url, jp_serverapp
):
    await api.run(python_context, "kept = 1")
    body = json.dumps(
        {
            "context_id": python_context,
            "code": "import time\nprint('go', flush=True)\nwhile True: time.sleep(0.05)",
        }
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    head = (
        f"POST {jp_base_url}sandbox/api/execute/code HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: {api.headers['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    while b"data: " not in await reader.readline():
        pass
    writer.close()
    # Without the interrupt the loop above would hold the context for the default 300 s.
    events = await api.run(python_context, "kept + 1")
    assert results(events)[0]["text"] == "2"


@pytest.mark.slow
async def test_restart_elsewhere_ends_the_run_and_the_context_recovers(
    api, python_context, jp_fetch, tmp_path
):
    await api.run(python_context, "before = 1")
    running = await start_endless_run(api, python_context, tmp_path)
    await jp_fetch("api", "kernels", python_context, "restart", method="POST", body="")
    events = await running
    assert events[-1]["ename"] == "KernelRestarted"
    assert (await api.run(python_context, "before"))[-1]["ename"] == "NameError"
    assert results(await api.run(python_context, "{'prelude': 'again'}"))[0]["json"] == {
        "prelude": "again"
    }


@pytest.mark.slow
async def test_shutdown_elsewhere_ends_the_run(api, python_context, jp_fetch, tmp_path):
    running = await start_endless_run(api, python_context, tmp_path)
    await jp_fetch("api", "kernels", python_context, method="DELETE")
    events = await running
    assert events[-1]["ename"] == "KernelShutDown"
    status, body = await api.call(
        "POST", "api/execute/code", {"context_id": python_context, "code": "1"}
    )
    assert (status, body["code"]) == (404, "CONTEXT_NOT_FOUND")


@pytest.mark.slow
@pytest.mark.parametrize(
    "jp_server_config", [server_config(ExecutionManager={"default_timeout": 0.5})]
)
async def test_a_run_s_own_variables_and_no_limit(api, python_context):
    await api.run(python_context, "import os; os.environ['KEPT'] = 'before'")
    probe = "import os; (os.environ.get('KEPT'), os.environ.get('ONLY_NOW'))"
    events = await api.run(python_context, probe, env_vars={"KEPT": "now", "ONLY_NOW": "1"})
    assert results(events)[0]["text"] == "('now', '1')"
    assert results(await api.run(python_context, probe))[0]["text"] == "('before', None)"
    # timeout_ms 0: no limit, where the server's default (0.5 s here) would stop the run.
    slow = await api.run(python_context, "import time; time.sleep(1); 'done'", timeout_ms=0)
    assert results(slow)[0]["text"] == "'done'"
    cut = await api.run(python_context, "import time; time.sleep(1); 'done'")
    assert cut[-1]["reason"] == "timeout"
