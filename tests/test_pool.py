"""The kernel pool: a hand-out is indistinguishable from a fresh start, and it refills."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, results, start_extension, wait_until

ENV_PROBE = "import os, json; print(json.dumps({'cwd': os.getcwd(), 'env': dict(os.environ)}))"


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        # The extension's start is called by these tests: leave pytest's own signals alone.
        "InterpreterApp": {"stop_on_signals": False},
        "KernelPool": {
            "enabled": True,
            "sizes": {"python": 1, "javascript": 1},
            "prestart": ["python", "javascript"],
        },
    }


@pytest.fixture
def pool(jp_serverapp):
    return jp_serverapp.web_app.settings["interp_kernel_pool"]


async def filled(jp_serverapp, pool, sizes: dict[str, int]) -> None:
    """Start the extension's background fill (as the server does) and wait until it is done."""
    await start_extension(jp_serverapp)
    await wait_until(
        lambda: all(pool.ready_count(lang) == n for lang, n in sizes.items()),
        f"the pool held {sizes}",
        seconds=60,
    )


async def probe(api, context_id: str) -> dict:
    return json.loads(outputs(await api.run(context_id, ENV_PROBE), "stdout"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_body",
    [{"cwd": "work", "env_vars": {"A": "1", "PATH": "/custom/bin"}}, {"cwd": "/workspace"}],
    ids=["moved", "as-started"],
)
async def test_a_pooled_context_matches_a_fresh_one(
    api, jp_serverapp, pool, jp_root_dir, request_body
):
    (jp_root_dir / "work").mkdir()
    await filled(jp_serverapp, pool, {"python": 1})
    pooled_ids = pool.kernel_ids()
    request = request_body
    pooled = await api.create("python", **request)
    assert pooled["contextId"] in pooled_ids

    contexts = jp_serverapp.web_app.settings["interp_context_registry"]
    contexts.pool = None  # the same request as a fresh start
    fresh = await api.create("python", **request)
    contexts.pool = pool

    got, want = await probe(api, pooled["contextId"]), await probe(api, fresh["contextId"])
    assert got["cwd"] == want["cwd"] == pooled["cwd"]
    assert got["env"] == want["env"]
    assert {k: got["env"][k] for k in request.get("env_vars", {})} == request.get("env_vars", {})
    [json_result] = results(await api.run(pooled["contextId"], "{'json': True}"))
    assert json_result["json"] == {"json": True}


@pytest.mark.slow
async def test_pool_refills_and_pooled_kernels_are_not_contexts(api, jp_serverapp, pool):
    await filled(jp_serverapp, pool, {"python": 1, "javascript": 1})
    status, listed = await api.call("GET", "api/contexts")
    assert listed["contexts"] == []
    taken = await api.create("python")
    await filled(jp_serverapp, pool, {"python": 1})
    assert taken["contextId"] not in pool.kernel_ids()
    status, listed = await api.call("GET", "api/contexts")
    assert [c["id"] for c in listed["contexts"]] == [taken["contextId"]]

    waiting = pool.kernel_ids()
    app = jp_serverapp.extension_manager.extension_points["jupyter_interp_ext"].app
    await app.stop_extension()
    assert not waiting & set(jp_serverapp.kernel_manager.list_kernel_ids())


@pytest.mark.slow
async def test_empty_pool_falls_back_and_parallel_creation_works(api, jp_serverapp, pool):
    await filled(jp_serverapp, pool, {"python": 1})
    created = await asyncio.gather(*(api.create("python") for _ in range(3)))
    assert len({c["contextId"] for c in created}) == 3
    ran = await asyncio.gather(*(api.run(c["contextId"], "21 * 2") for c in created))
    assert [results(r)[0]["text"] for r in ran] == ["42"] * 3


@pytest.mark.slow
async def test_pooled_context_in_a_session(api, jp_serverapp, pool, jp_root_dir):
    await filled(jp_serverapp, pool, {"python": 1})
    await api.call(
        "POST",
        "api/execute",
        {"command": "mkdir -p p && cd p && export FROM_SHELL=1", "sessionId": "s"},
    )
    created = await api.create("python", sessionId="s")
    state = await probe(api, created["contextId"])
    assert state["cwd"] == str(jp_root_dir.resolve() / "p")
    assert state["env"]["FROM_SHELL"] == "1"


@pytest.mark.slow
async def test_pooled_javascript_requires_from_its_cwd_even_after_a_restart(
    api, jp_serverapp, pool, jp_root_dir
):
    (jp_root_dir / "js").mkdir()
    (jp_root_dir / "js" / "m.cjs").write_text("module.exports = { answer: 42 };")
    await filled(jp_serverapp, pool, {"javascript": 1})
    pooled_ids = pool.kernel_ids()
    created = await api.create("javascript", cwd="js", env_vars={"FLAG": "on"})
    assert created["contextId"] in pooled_ids
    code = "require('./m.cjs').answer + ' ' + Deno.env.get('FLAG') + ' ' + Deno.cwd()"
    expected = f"42 on {jp_root_dir.resolve() / 'js'}"
    assert expected in results(await api.run(created["contextId"], code))[0]["text"]
    stuck = await api.run(created["contextId"], "await new Promise(() => {})", timeout_ms=500)
    assert "restarted" in stuck[-1]["evalue"]
    assert expected in results(await api.run(created["contextId"], code))[0]["text"]


@pytest.mark.slow
async def test_kernels_shut_down_through_the_server_never_break_creation(
    api, jp_serverapp, jp_fetch, pool
):
    await filled(jp_serverapp, pool, {"python": 1, "javascript": 1})
    kernels = json.loads((await jp_fetch("api", "kernels")).body)
    assert {k["id"] for k in kernels} == pool.kernel_ids()
    for kernel in kernels:  # what "Shut Down All" in JupyterLab does
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
    assert not pool.kernel_ids() & {k["id"] for k in kernels}  # they left the pool at once
    # ...and the memory stays free: nothing is started again until a language is next used.
    assert not any(pool._starting.values()) and not pool.kernel_ids()
    assert not jp_serverapp.kernel_manager.list_kernel_ids()
    status, health = await api.call("GET", "api/interpreter/health")
    live = set(jp_serverapp.kernel_manager.list_kernel_ids())
    assert sum(health["pool"].values()) <= len(pool.kernel_ids() & live)
    for language in ("python", "javascript"):
        for _ in range(5):
            created = await api.create(language)
            assert created["contextId"] in jp_serverapp.kernel_manager
    await filled(jp_serverapp, pool, {"python": 1, "javascript": 1})


@pytest.mark.slow
async def test_a_pooled_kernel_restarted_elsewhere_is_replaced(api, jp_serverapp, jp_fetch, pool):
    await filled(jp_serverapp, pool, {"python": 1})
    [restarted] = [k.kernel_id for k in pool._ready["python"]]
    await jp_fetch("api", "kernels", restarted, "restart", method="POST", body="")
    assert restarted not in pool.kernel_ids()
    created = await api.create("python")
    assert created["contextId"] != restarted
    assert results(await api.run(created["contextId"], "{'ok': 1}"))[0]["json"] == {"ok": 1}


@pytest.mark.slow
async def test_pooled_kernels_say_what_they_are_in_jupyters_sessions(
    api, jp_serverapp, jp_fetch, pool
):
    await filled(jp_serverapp, pool, {"python": 1})
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    pooled = [s for s in sessions if s["type"] == "sandbox-pool"]
    assert {s["kernel"]["id"] for s in pooled} == pool.kernel_ids()
    assert all(s["name"].startswith("Sandbox pool: pre-started") for s in pooled)
    python_row = next(s for s in pooled if s["kernel"]["name"] == "python3")
    created = await api.create("python")
    assert created["contextId"] == python_row["kernel"]["id"]
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    row = next(s for s in sessions if s["id"] == python_row["id"])
    assert (row["type"], row["path"]) == ("notebook", created["notebook"])


@pytest.mark.slow
async def test_a_language_is_pooled_once_used_and_drained_when_idle(api, jp_serverapp, pool):
    pool.prestart, pool.idle_seconds = [], 1.0
    await start_extension(jp_serverapp)
    assert not pool._tasks and not jp_serverapp.kernel_manager.list_kernel_ids()
    created = await api.create("python")  # a fresh start: nothing was pooled
    await filled(jp_serverapp, pool, {"python": 1})
    assert pool.ready_count("javascript") == 0 and not pool._starting.get("javascript")
    pooled = pool.kernel_ids()

    def drained() -> bool:
        live = set(jp_serverapp.kernel_manager.list_kernel_ids())
        return not pool.kernel_ids() and not pooled & live

    await wait_until(drained, "the idle language was drained", seconds=30)
    assert created["contextId"] in jp_serverapp.kernel_manager  # contexts are not the pool's


@pytest.mark.slow
async def test_the_start_says_where_the_api_lives_and_what_it_serves(jp_serverapp):
    app = jp_serverapp.extension_manager.extension_points["jupyter_interp_ext"].app
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    app.log.addHandler(handler)
    try:
        await start_extension(jp_serverapp)
    finally:
        app.log.removeHandler(handler)
    [line] = [r.getMessage() for r in seen if "Sandbox API at" in r.getMessage()]
    assert f"{jp_serverapp.connection_url}sandbox" in line
    assert jp_serverapp.root_dir in line
