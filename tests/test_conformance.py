"""The official `@cloudflare/sandbox` npm client, unchanged, against a live server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from test_git import make_repository

from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.testing import free_port, parse_sse

pytestmark = pytest.mark.slow  # every test here takes seconds

CLIENT_DIR = Path(__file__).parent / "conformance"


async def run_official_client(
    base_url: str, token: str, script: str = "client.mjs", *args: str
) -> dict:
    """Run a script of tests/conformance with the official client; its last line is a JSON
    report."""
    node = shutil.which("node")
    assert node, "Node.js is required for the conformance test"
    assert (CLIENT_DIR / "node_modules" / "@cloudflare" / "sandbox").is_dir(), (
        "run `npm ci` in tests/conformance first"
    )
    process = await asyncio.create_subprocess_exec(
        node,
        "--import",
        "./register.mjs",
        script,
        base_url,
        token,
        *args,
        cwd=CLIENT_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout.decode().strip().splitlines()[-1])


async def test_official_client_against_the_extension(api, jp_serverapp, jp_root_dir):
    root = jp_root_dir.resolve()
    await asyncio.to_thread(make_repository, root / "origin")
    token = jp_serverapp.identity_provider.token
    port = free_port()
    report = await run_official_client(api.url, token, "client.mjs", str(root), str(port))

    assert report["ping"] == "pong"
    assert report["version"] == __version__
    assert report["python"]["language"] == "python"
    assert report["withContext"]["logs"]["stdout"] == ["yes\n"]
    assert report["withContext"]["results"] == [{"text": "42"}]
    assert "error" not in report["withContext"]
    # No context given: the client reuses the Python context it created, so `x` is still there.
    assert report["withoutContext"]["results"] == [{"text": "82"}]
    assert report["rich"]["results"] == [
        {"text": "<IPython.core.display.HTML object>", "html": "<i>hi</i>"},
        {"text": "{'k': [1, 2]}", "json": {"k": [1, 2]}},
    ]
    error = report["error"]["error"]
    assert (error["name"], error["message"]) == ("ZeroDivisionError", "division by zero")
    assert any("1 / 0" in line for line in error["traceback"])
    assert report["streamed"] == [["stdout", "o\n", "number"], ["stderr", "e\n", "number"]]

    events = parse_sse(report["streamBody"].encode())
    assert [e["type"] for e in events] == ["stdout", "execution_complete"]
    assert events[0]["text"] == "streamed\n"

    assert report["javascript"]["logs"]["stdout"] == ["js\n"]
    assert report["javascript"]["results"][0]["json"] == {"a": 1, "b": [2]}
    assert report["jsError"]["error"]["name"] == "TypeError"
    assert "null" in report["jsError"]["error"]["message"]
    assert report["typescript"]["results"] == [{"text": "42"}]

    assert sorted(c["language"] for c in report["listed"]) == ["javascript", "python", "typescript"]
    assert report["missingDelete"] == {
        "name": "ContextNotFoundError",
        "code": "CONTEXT_NOT_FOUND",
        "message": "Code context 'no-such-context' not found",
        "httpStatus": 404,
    }
    assert report["missingRun"]["name"] == "ContextNotFoundError"
    assert report["missingRun"]["message"] == "Code context 'no-such-context' not found"
    assert report["badLanguage"]["code"] == "VALIDATION_FAILED"
    assert "javascript" in report["badLanguage"]["message"]
    assert report["afterDelete"] == [report["python"]["id"]]

    assert report["session"]["containerPlacementId"] is None
    assert report["duplicateSession"]["name"] == "SessionAlreadyExistsError"
    assert report["duplicateSession"]["httpStatus"] == 409
    assert report["exec"]["stdout"] == f"bar\n{root}/work"
    assert (report["exec"]["exitCode"], report["exec"]["success"]) == (0, True)
    assert report["afterEnv"]["stdout"] == f"[] a b\n{root}/work"
    assert report["scoped"]["stdout"] == "once\n/tmp"
    stream = report["execStream"]
    assert stream[0]["type"] == "start"
    assert [(e["type"], e["data"]) for e in stream[1:-1]] == [
        ("stdout", "s1\n"),
        ("stderr", "s2\n"),
    ]
    assert stream[-1]["type"] == "complete" and stream[-1]["exitCode"] == 0
    assert report["terminated"]["name"] == "SessionTerminatedError"
    assert report["terminated"]["httpStatus"] == 410
    assert report["freshShell"]["stdout"] == "[]"

    assert report["processInfo"]["status"] == "completed"
    assert report["processLogs"]["stdout"] == "from-process\n"
    assert [e["type"] for e in report["processStream"]] == ["process_info", "stdout", "exit"]
    assert [report["started"]["processId"], "completed"] in report["processList"]
    assert report["killed"]["processId"] and report["afterKill"] == "killed"
    assert report["missingProcess"]["code"] == "PROCESS_NOT_FOUND"
    assert report["missingProcess"]["httpStatus"] == 404
    assert report["deleted"]["sessionId"] == "conformance"

    assert report["readText"]["content"] == "héllo ✓"
    assert report["readText"]["encoding"] == "utf-8"
    assert report["readBinary"]["content"] == "AAEC/w=="
    assert report["readBinary"]["isBinary"] is True
    assert report["fileStream"]["bytes"] == [0, 1, 2, 255]
    assert report["fileStream"]["metadata"]["isBinary"] is True
    assert report["listing"] == [
        ["bytes.bin", "file"],
        ["in", "directory"],
        ["in/note.txt", "file"],
    ]
    assert report["existsBefore"] is True
    assert report["afterMove"] == ["renamed.txt"]
    assert report["existsAfter"] is False
    assert report["readMissing"]["name"] == "FileNotFoundError"
    assert report["readMissing"]["httpStatus"] == 404
    assert report["readOutside"]["code"] == "PERMISSION_DENIED"
    assert report["readOutside"]["httpStatus"] == 403

    assert "bash" in report["commands"] and "git" in report["commands"]
    assert report["watching"]["type"] == "watching"
    event = report["watchEvent"]
    assert (event["type"], event["eventType"], event["path"]) == (
        "event",
        "create",
        "watched/new.txt",
    )
    assert report["check"] == ["resync", "unchanged"]
    assert [e["type"] for e in report["port"]] == ["watching", "ready"]
    assert report["port"][-1]["statusCode"] == 200
    assert (report["git"]["branch"], report["git"]["targetDir"]) == ("main", "cloned")
    assert (root / "cloned" / "README.md").read_text() == "hello\n"
    assert report["backup"]["sizeBytes"] == (root / "cloned.tar.zst").stat().st_size
    assert (root / "restored" / "README.md").read_text() == "hello\n"
    assert (report["uploadRefused"]["code"], report["uploadRefused"]["httpStatus"]) == (
        "PERMISSION_DENIED",
        403,
    )
