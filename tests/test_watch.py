"""Watching files: events for changes made through the files API and through a shell, the
watcher released when the client leaves, and the cheap change check."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from httpx_sse import aconnect_sse

from jupyter_interp_ext.pytest_plugin import wait_until


@pytest.fixture
def http(api) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url + "/", headers=api.headers, timeout=30)


async def next_event(events, kinds: tuple[str, ...] = ("event", "stopped")) -> dict:
    while True:
        sse = await asyncio.wait_for(anext(events), 20)
        event = json.loads(sse.data)
        if event["type"] in kinds:
            return event


async def test_changes_through_the_api_and_a_shell_are_streamed(
    api, http, jp_root_dir, jp_serverapp
):
    (jp_root_dir / "watched").mkdir()
    watches = jp_serverapp.web_app.settings["interp_watch_manager"]
    body = {"path": "watched", "exclude": ["*.tmp"]}
    async with http, aconnect_sse(http, "POST", "api/watch", json=body) as source:
        events = source.aiter_sse()
        first = await next_event(events, ("watching",))
        assert first["type"] == "watching" and first["path"] == "watched" and first["watchId"]
        assert watches._open == 1
        await api.call("POST", "api/write", {"path": "watched/a.txt", "content": "1"})
        created = await next_event(events)
        assert (created["eventType"], created["path"], created["isDirectory"]) == (
            "create",
            "watched/a.txt",
            False,
        )
        await api.call(
            "POST", "api/execute", {"command": "touch watched/skip.tmp; mkdir watched/sub"}
        )
        made = await next_event(events)
        assert (made["eventType"], made["path"], made["isDirectory"]) == (
            "create",
            "watched/sub",
            True,
        )
    await wait_until(lambda: watches._open == 0, "the watcher was released")


async def test_a_deleted_directory_stops_the_watch(api, http, jp_root_dir):
    (jp_root_dir / "gone").mkdir()
    async with http, aconnect_sse(http, "POST", "api/watch", json={"path": "gone"}) as source:
        events = source.aiter_sse()
        await next_event(events, ("watching",))
        await api.call("POST", "api/execute", {"command": "rm -r gone"})
        stopped = await next_event(events, ("stopped",))
        assert stopped["reason"] == "gone no longer exists"


async def test_check_answers_against_the_version_it_handed_out(api, jp_root_dir):
    (jp_root_dir / "d").mkdir()
    status, first = await api.call("POST", "api/watch/check", {"path": "d"})
    assert (status, first["status"]) == (200, "resync") and first["version"]
    since = {"path": "d", "since": first["version"]}
    assert (await api.call("POST", "api/watch/check", since))[1]["status"] == "unchanged"
    (jp_root_dir / "d" / "new.txt").write_text("x")
    changed = (await api.call("POST", "api/watch/check", since))[1]
    assert changed["status"] == "changed" and changed["version"] != first["version"]
    ignored = {**since, "version": changed["version"], "exclude": ["*.log"]}
    ignored["since"] = (await api.call("POST", "api/watch/check", ignored))[1]["version"]
    (jp_root_dir / "d" / "noise.log").write_text("x")
    assert (await api.call("POST", "api/watch/check", ignored))[1]["status"] == "unchanged"


async def test_watching_is_confined_and_bounded(api, jp_serverapp, tmp_path):
    status, outside = await api.call("POST", "api/watch", {"path": str(tmp_path)})
    assert (status, outside["code"]) == (403, "PERMISSION_DENIED")
    status, missing = await api.call("POST", "api/watch/check", {"path": "nope"})
    assert (status, missing["code"]) == (404, "FILE_NOT_FOUND")
    status, bad = await api.call("POST", "api/watch", {"path": ".", "events": ["explode"]})
    assert (status, bad["code"]) == (400, "VALIDATION_FAILED")
    watches = jp_serverapp.web_app.settings["interp_watch_manager"]
    watches.max_watchers = 2
    watches._open = 2  # as if two streams were open (the first test holds a real one)
    status, limited = await api.call("POST", "api/watch", {"path": "."})
    assert (status, limited["code"]) == (429, "RESOURCE_LIMIT_REACHED")
    assert limited["context"]["setting"] == "WatchManager.max_watchers"
    watches._open = 0


async def test_a_watch_never_follows_links_out_of_the_roots(
    api, http, jp_root_dir, jp_serverapp, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (jp_root_dir / "tree" / "sub").mkdir(parents=True)
    (jp_root_dir / "tree" / "sub" / "out").symlink_to(outside)
    status, refused = await api.call("POST", "api/watch", {"path": "tree"})
    assert (status, refused["code"]) == (403, "PERMISSION_DENIED")
    assert "tree/sub/out" in refused["message"]
    watches = jp_serverapp.web_app.settings["interp_watch_manager"]
    watches.max_watched_folders = 2  # tree and tree/sub, once the link is gone
    (jp_root_dir / "tree" / "sub" / "out").unlink()
    (jp_root_dir / "tree" / "sub" / "more").mkdir()
    status, limited = await api.call("POST", "api/watch", {"path": "tree"})
    assert (status, limited["code"]) == (429, "RESOURCE_LIMIT_REACHED")
    assert limited["context"]["setting"] == "WatchManager.max_watched_folders"
    (jp_root_dir / "tree" / "sub" / "more").rmdir()
    async with http, aconnect_sse(http, "POST", "api/watch", json={"path": "tree"}) as source:
        events = source.aiter_sse()
        await next_event(events, ("watching",))
        # A link made after the watch began (as a shell could): what changes behind it is
        # not reported, what changes inside is.
        (jp_root_dir / "tree" / "late").symlink_to(outside)
        (outside / "outside-name.txt").write_text("x")
        (jp_root_dir / "tree" / "sub" / "inside.txt").write_text("x")
        seen = []
        while not seen or not seen[-1].endswith("inside.txt"):
            seen.append((await next_event(events))["path"])
        assert not [path for path in seen if "outside-name" in path], seen


async def test_check_counts_every_entry_it_reads(api, jp_root_dir, jp_serverapp):
    (jp_root_dir / "many").mkdir()
    for i in range(10):
        (jp_root_dir / "many" / f"{i}.txt").write_text("x")
    watches = jp_serverapp.web_app.settings["interp_watch_manager"]
    watches.max_fingerprint_entries = 5
    body = {"path": "many", "exclude": ["*"]}
    status, answer = await api.call("POST", "api/watch/check", body)
    assert (status, answer["status"], answer["reason"]) == (200, "resync", "too many entries")
