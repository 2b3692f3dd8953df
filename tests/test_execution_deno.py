"""JavaScript and TypeScript on Deno's Jupyter kernel, behaving as Node users expect."""

from __future__ import annotations

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, results


@pytest.fixture
def javascript(api, jp_asyncio_loop) -> str:
    return jp_asyncio_loop.run_until_complete(api.create("javascript"))["contextId"]


@pytest.mark.slow
async def test_console_and_persistent_declarations(api, javascript):
    events = await api.run(javascript, 'console.log("hi"); const x = 40; let y = 2;')
    assert outputs(events, "stdout") == "hi\n"
    assert events[-1]["type"] == "execution_complete"
    [result] = results(await api.run(javascript, "x + y"))
    assert result["text"] == "42"
    await api.run(javascript, "global.shared = 'g'")
    assert "g" in results(await api.run(javascript, "shared"))[0]["text"]


@pytest.mark.slow
async def test_await_and_promises(api, javascript):
    [awaited] = results(
        await api.run(javascript, "await new Promise((r) => setTimeout(() => r(7), 50))")
    )
    assert awaited["text"] == "7"
    [promised] = results(await api.run(javascript, "Promise.resolve({ n: 1 })"))
    assert promised["json"] == {"n": 1}
    assert results(await api.run(javascript, "Promise.resolve()")) == []


@pytest.mark.slow
async def test_objects_are_json_results(api, javascript):
    [obj] = results(await api.run(javascript, "({ a: 1, b: [1, 2], c: 'x' })"))
    assert obj["json"] == {"a": 1, "b": [1, 2], "c": "x"}
    [arr] = results(await api.run(javascript, "[1, 'two']"))
    assert arr["json"] == [1, "two"]
    [date] = results(await api.run(javascript, "new Map([[1, 2]])"))
    assert "json" not in date and "Map" in date["text"]


@pytest.mark.slow
async def test_node_globals(api, javascript, jp_root_dir):
    (jp_root_dir / "data.txt").write_text("from disk")
    code = "typeof process.env.PATH + ' ' + require('fs').readFileSync('data.txt', 'utf8')"
    [result] = results(await api.run(javascript, code))
    assert "string from disk" in result["text"]


@pytest.mark.slow
async def test_errors_carry_name_and_message(api, javascript):
    events = await api.run(javascript, "throw new TypeError('bad thing')")
    assert (events[-1]["ename"], events[-1]["evalue"]) == ("TypeError", "bad thing")
    events = await api.run(javascript, "notDefinedAnywhere")
    assert events[-1]["ename"] == "ReferenceError"
    assert "notDefinedAnywhere" in events[-1]["evalue"]
    assert results(await api.run(javascript, "1 + 1"))[0]["text"] == "2"


@pytest.mark.slow
async def test_busy_loop_timeout_interrupts(api, javascript):
    await api.run(javascript, "const kept = 'yes'")
    events = await api.run(javascript, "while (true) {}", timeout_ms=500)
    assert events[-1]["ename"] == "TimeoutError"
    assert "yes" in results(await api.run(javascript, "kept"))[0]["text"]


@pytest.mark.slow
async def test_stuck_await_timeout_restarts_and_context_works(api, javascript):
    events = await api.run(javascript, "await new Promise(() => {})", timeout_ms=500)
    assert events[-1]["ename"] == "TimeoutError" and "restarted" in events[-1]["evalue"]
    [result] = results(await api.run(javascript, "typeof require('fs').statSync"))
    assert "function" in result["text"]


@pytest.mark.slow
async def test_typescript(api, jp_root_dir):
    created = await api.create("ts", env_vars={"TS_FLAG": "on"})
    assert created["language"] == "typescript"
    context = created["contextId"]
    await api.run(context, "interface P { x: number }\nconst p: P = { x: 2 };")
    [same_line] = results(await api.run(context, "const n: number = 3; n * p.x"))
    assert same_line["text"] == "6"
    [env] = results(await api.run(context, "Deno.env.get('TS_FLAG') + ' ' + Deno.cwd()"))
    assert f"on {jp_root_dir.resolve()}" in env["text"]


@pytest.mark.slow
async def test_a_run_s_own_variables_in_javascript(api):
    context_id = (await api.create("javascript"))["contextId"]
    probe = "[Deno.env.get('ONLY_NOW') ?? null]"
    events = await api.run(context_id, probe, env_vars={"ONLY_NOW": "yes"})
    assert results(events)[0]["json"] == ["yes"]
    assert results(await api.run(context_id, probe))[0]["json"] == [None]
