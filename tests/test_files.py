"""The files API: round trips, streaming, errors, and confinement to the allowed roots."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jupyter_interp_ext.files.manager import FileManager
from jupyter_interp_ext.testing import SSEParser


async def ok(api, route: str, body: dict) -> dict:
    status, data = await api.call("POST", f"api/{route}", body)
    assert status == 200, data
    return data


async def fails(api, route: str, body: dict, status: int, code: str) -> dict:
    got, data = await api.call("POST", f"api/{route}", body)
    assert (got, data["code"]) == (status, code), data
    return data


async def test_text_binary_and_empty_round_trips(api, jp_root_dir):
    await ok(api, "write", {"path": "notes/ünï.txt", "content": "héllo ✓\nsecond"})
    read = await ok(api, "read", {"path": "notes/ünï.txt"})
    assert (read["content"], read["encoding"], read["isBinary"]) == (
        "héllo ✓\nsecond",
        "utf-8",
        False,
    )
    assert (read["mimeType"], read["size"]) == ("text/plain", len("héllo ✓\nsecond".encode()))

    every_byte = bytes(range(256))
    await ok(
        api,
        "write",
        {"path": "all.bin", "content": base64.b64encode(every_byte).decode(), "encoding": "base64"},
    )
    assert (jp_root_dir / "all.bin").read_bytes() == every_byte
    read = await ok(api, "read", {"path": str(jp_root_dir / "all.bin")})
    assert (read["encoding"], read["isBinary"]) == ("base64", True)
    assert base64.b64decode(read["content"]) == every_byte

    await ok(api, "write", {"path": "empty.txt", "content": ""})
    read = await ok(api, "read", {"path": "empty.txt"})
    assert (read["content"], read["size"]) == ("", 0)
    forced = await ok(api, "read", {"path": "notes/ünï.txt", "encoding": "base64"})
    assert base64.b64decode(forced["content"]).decode() == "héllo ✓\nsecond"


async def test_json_is_text_and_new_files_get_normal_permissions(api, jp_root_dir):
    await ok(api, "write", {"path": "data.json", "content": '{"a": 1}'})
    read = await ok(api, "read", {"path": "data.json"})
    assert (read["mimeType"], read["isBinary"]) == ("application/json", False)
    assert (jp_root_dir / "data.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
async def test_streaming_a_large_file_keeps_memory_bounded(api, jp_root_dir):
    size = 50 * 1024 * 1024
    with (jp_root_dir / "big.bin").open("wb") as file:
        for _ in range(size // (1024 * 1024)):
            file.write(os.urandom(1024 * 1024))
    total, parser, events = 0, SSEParser(strict=True), {"metadata": 0, "chunk": 0, "complete": 0}

    def on_chunk(chunk: bytes) -> None:
        nonlocal total
        for event in parser.feed(chunk):
            events[event["type"]] += 1
            if event["type"] == "chunk":
                total += len(base64.b64decode(event["data"]))

    tracemalloc.start()
    try:
        await AsyncHTTPClient().fetch(
            HTTPRequest(
                api.url + "/api/read/stream",
                method="POST",
                headers=api.headers,
                body=json.dumps({"path": "big.bin"}),
                streaming_callback=on_chunk,
                request_timeout=120,
            )
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert events == {"metadata": 1, "chunk": -(-size // 65535), "complete": 1}
    # Client and server share this process: socket buffers on both sides account for a few
    # MiB; holding the file would take 50 MiB (67 MiB as base64).
    assert peak < 24 * 1024 * 1024


async def test_text_stream_keeps_characters_whole(api, jp_root_dir):
    text = "é" * 70000  # 140000 bytes: chunk boundaries fall inside characters
    (jp_root_dir / "wide.txt").write_text(text)
    status, events = await api.call("POST", "api/read/stream", {"path": "wide.txt"})
    assert events[0]["isBinary"] is False
    assert "".join(e["data"] for e in events if e["type"] == "chunk") == text
    assert events[-1] == {"type": "complete", "bytesRead": 140000}
    status, events = await api.call("POST", "api/read/stream", {"path": "missing.txt"})
    assert status == 200
    assert events == [
        {"type": "error", "error": "File not found: missing.txt", "code": "FILE_NOT_FOUND"}
    ]


async def test_error_codes(api, jp_root_dir, jp_serverapp):
    (jp_root_dir / "d").mkdir()
    (jp_root_dir / "f.txt").write_text("x" * 100)
    await fails(api, "read", {"path": "nope.txt"}, 404, "FILE_NOT_FOUND")
    await fails(api, "read", {"path": "d"}, 400, "IS_DIRECTORY")
    await fails(api, "delete", {"path": "d"}, 400, "IS_DIRECTORY")
    await fails(api, "delete", {"path": "nope.txt"}, 404, "FILE_NOT_FOUND")
    await fails(api, "list-files", {"path": "f.txt"}, 400, "NOT_DIRECTORY")
    await fails(api, "list-files", {"path": "nodir"}, 404, "FILE_NOT_FOUND")
    await fails(api, "rename", {"oldPath": "nope", "newPath": "x"}, 404, "FILE_NOT_FOUND")
    await fails(api, "write", {"path": "f.txt/inside", "content": "x"}, 400, "NOT_DIRECTORY")
    await fails(api, "write", {"path": "x" * 300, "content": "x"}, 400, "NAME_TOO_LONG")
    await fails(api, "delete", {"path": "y" * 300}, 400, "NAME_TOO_LONG")
    await fails(api, "mkdir", {"path": "d"}, 409, "FILE_EXISTS")
    await fails(api, "mkdir", {"path": "a/b/c"}, 404, "FILE_NOT_FOUND")
    for body in (
        {"path": ""},
        {"path": "a\u0000b"},
        {"path": 7},
        {"path": "x" * 5000},
        {},
        {"path": "\ud800"},
    ):
        error = await fails(api, "read", body, 400, "VALIDATION_FAILED")
        assert error["context"]["validationErrors"][0]["code"] == "INVALID_PATH"
    error = await fails(
        api, "write", {"path": "b", "content": "@@", "encoding": "base64"}, 400, "VALIDATION_FAILED"
    )
    assert error["context"]["validationErrors"][0]["code"] == "INVALID_BASE64"
    jp_serverapp.web_app.settings["interp_file_manager"].max_read_bytes = 50
    await fails(api, "read", {"path": "f.txt"}, 413, "FILE_TOO_LARGE")


async def test_nothing_outside_the_root_is_reachable(api, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (jp_root_dir / "link.txt").symlink_to(outside / "secret.txt")
    (jp_root_dir / "linkdir").symlink_to(outside)
    attempts = [
        ("read", {"path": "../outside/secret.txt"}),
        ("read", {"path": str(outside / "secret.txt")}),
        ("read", {"path": "link.txt"}),
        ("read", {"path": "linkdir/secret.txt"}),
        ("write", {"path": "linkdir/new.txt", "content": "x"}),
        ("write", {"path": "/etc/evil", "content": "x"}),
        ("list-files", {"path": "linkdir"}),
        ("exists", {"path": "/etc/passwd"}),
        ("mkdir", {"path": "linkdir/sub"}),
        ("rename", {"oldPath": "f.txt", "newPath": "linkdir/f.txt"}),
        ("move", {"sourcePath": "f.txt", "destinationPath": "../f.txt"}),
        ("read/stream", {"path": "linkdir/secret.txt"}),
    ]
    (jp_root_dir / "f.txt").write_text("mine")
    for route, body in attempts:
        error = await fails(api, route, body, 403, "PERMISSION_DENIED")
        assert next(iter(v for k, v in body.items() if "ath" in k)) in error["message"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (jp_root_dir / "f.txt").read_text() == "mine"


async def test_rename_and_delete_act_on_links_themselves(api, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (jp_root_dir / "link.txt").symlink_to(outside / "secret.txt")
    await ok(api, "rename", {"oldPath": "link.txt", "newPath": "moved-link.txt"})
    assert (jp_root_dir / "moved-link.txt").is_symlink()
    await ok(api, "delete", {"path": "moved-link.txt"})
    assert not (jp_root_dir / "moved-link.txt").is_symlink()
    assert (outside / "secret.txt").read_text() == "secret"
    (jp_root_dir / "inner.txt").write_text("inner")
    (jp_root_dir / "inner-link").symlink_to("inner.txt")
    await ok(api, "delete", {"path": "inner-link"})
    assert (jp_root_dir / "inner.txt").read_text() == "inner"


async def test_moving_onto_a_directory_moves_into_it_and_says_where(api, jp_root_dir):
    (jp_root_dir / "box").mkdir()
    (jp_root_dir / "a.txt").write_text("a")
    moved = await ok(api, "rename", {"oldPath": "a.txt", "newPath": "box"})
    assert moved["newPath"] == "box/a.txt"
    assert (jp_root_dir / "box" / "a.txt").read_text() == "a"


async def test_hidden_files_follow_the_server_setting(api, jp_root_dir):
    (jp_root_dir / ".env").write_text("TOKEN=1")
    (jp_root_dir / "visible.txt").write_text("v")
    await fails(api, "read", {"path": ".env"}, 403, "PERMISSION_DENIED")
    await fails(api, "write", {"path": ".git/config", "content": "x"}, 403, "PERMISSION_DENIED")
    listed = await ok(api, "list-files", {"path": ".", "options": {"includeHidden": True}})
    assert [f["name"] for f in listed["files"]] == ["visible.txt"]


async def test_relative_paths_follow_the_session_directory(api, jp_root_dir):
    await api.call("POST", "api/execute", {"command": "mkdir -p w && cd w", "sessionId": "s"})
    await ok(api, "write", {"path": "here.txt", "content": "in w", "sessionId": "s"})
    assert (jp_root_dir / "w" / "here.txt").read_text() == "in w"
    assert (await ok(api, "exists", {"path": "here.txt", "sessionId": "s"}))["exists"] is True
    assert (await ok(api, "exists", {"path": "here.txt", "sessionId": "other"}))["exists"] is False
    await ok(api, "write", {"path": "top.txt", "content": "t", "sessionId": "__DISABLE_SESSION__"})
    assert (jp_root_dir / "top.txt").read_text() == "t"


async def test_rename_move_mkdir_list_and_delete(api, jp_root_dir):
    await ok(api, "mkdir", {"path": "a/b/c", "recursive": True})
    await ok(api, "mkdir", {"path": "a/b/c", "recursive": True})
    await ok(api, "write", {"path": "a/b/c/f.txt", "content": "1"})
    renamed = await ok(api, "rename", {"oldPath": "a/b/c/f.txt", "newPath": "a/b/c/g.txt"})
    assert (renamed["path"], renamed["newPath"]) == ("a/b/c/f.txt", "a/b/c/g.txt")
    await ok(api, "move", {"sourcePath": "a/b", "destinationPath": "moved"})
    assert (jp_root_dir / "moved" / "c" / "g.txt").read_text() == "1"
    listed = await ok(api, "list-files", {"path": "moved", "options": {"recursive": True}})
    assert [(f["relativePath"], f["type"]) for f in listed["files"]] == [
        ("c", "directory"),
        ("c/g.txt", "file"),
    ]
    assert listed["count"] == 2
    entry = listed["files"][1]
    assert entry["absolutePath"] == "moved/c/g.txt" and entry["size"] == 1
    assert entry["permissions"]["readable"] is True and entry["mode"].startswith("rw")
    await ok(api, "delete", {"path": "moved/c/g.txt"})
    assert not (jp_root_dir / "moved" / "c" / "g.txt").exists()
    assert (await ok(api, "exists", {"path": "moved/c"}))["exists"] is True


async def test_a_failed_write_leaves_the_old_file_intact(api, jp_root_dir, monkeypatch):
    (jp_root_dir / "keep.txt").write_text("old content")

    def fail_halfway(file, data: bytes) -> None:
        file.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileManager, "_write_bytes", staticmethod(fail_halfway))
    await fails(api, "write", {"path": "keep.txt", "content": "new content!"}, 500, "NO_SPACE")
    assert (jp_root_dir / "keep.txt").read_text() == "old content"
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("route", ["read", "write", "list-files"])
async def test_bad_bodies_are_400(api, route):
    status, data = await api.call("POST", f"api/{route}", raw=b"not json")
    assert (status, data["code"]) == (400, "VALIDATION_FAILED")


async def test_long_listings_are_cut_and_say_so(api, jp_root_dir, jp_serverapp):
    for folder in ("a", "b"):
        (jp_root_dir / "many" / folder).mkdir(parents=True)
        for i in range(3):
            (jp_root_dir / "many" / folder / f"{i}.txt").write_text("x")
    jp_serverapp.web_app.settings["interp_file_manager"].max_list_entries = 5
    body = {"path": "many", "options": {"recursive": True}}
    listed = await ok(api, "list-files", body)
    assert (listed["count"], listed["truncated"]) == (5, True)
    assert [f["relativePath"] for f in listed["files"]] == [
        "a",
        "a/0.txt",
        "a/1.txt",
        "a/2.txt",
        "b",
    ]
    shallow = await ok(api, "list-files", {"path": "many"})
    assert (shallow["count"], shallow["truncated"]) == (2, False)
