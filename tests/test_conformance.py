"""The official `@cloudflare/sandbox` npm client, unchanged, against a live server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from conftest import parse_sse

CLIENT_DIR = Path(__file__).parent / "conformance"


async def run_official_client(base_url: str, token: str) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is required for the conformance test"
    assert (CLIENT_DIR / "node_modules" / "@cloudflare" / "sandbox").is_dir(), (
        "run `npm ci` in tests/conformance first"
    )
    process = await asyncio.create_subprocess_exec(
        node,
        "--import",
        "./register.mjs",
        "client.mjs",
        base_url,
        token,
        cwd=CLIENT_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout.decode().strip().splitlines()[-1])


async def test_official_client_against_the_extension(api, jp_serverapp):
    report = await run_official_client(api.url, jp_serverapp.identity_provider.token)

    assert report["ping"] == "pong"
    assert report["version"] == "0.1.0"
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
