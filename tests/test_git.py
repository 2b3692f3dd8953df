"""Cloning with the real git: from a repository the test makes, into the roots; failures clean
up after themselves and never show credentials."""

from __future__ import annotations

import socket
import subprocess

import pytest


def make_repository(path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(path)]
    path.mkdir()
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "README.md").write_text("hello\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    subprocess.run([*git, "branch", "feature"], check=True)


@pytest.fixture
def origin(jp_root_dir):
    make_repository(jp_root_dir / "origin")
    return f"file://{jp_root_dir.resolve() / 'origin'}"


async def test_clone_a_branch_shallowly_into_the_roots(api, origin, jp_root_dir):
    body = {"repoUrl": origin, "targetDir": "work/clone", "branch": "feature", "depth": 1}
    await api.call("POST", "api/mkdir", {"path": "work"})
    status, answer = await api.call("POST", "api/git/checkout", body)
    assert status == 200, answer
    assert (answer["repoUrl"], answer["branch"], answer["targetDir"]) == (
        origin,
        "feature",
        "work/clone",
    )
    assert (jp_root_dir / "work" / "clone" / "README.md").read_text() == "hello\n"
    # Without targetDir the repository's name is the target, as for `git clone`: here the
    # origin itself, which is not empty.
    # A null targetDir (the official client's `undefined` may arrive so) means the same.
    for body in ({"repoUrl": origin}, {"repoUrl": origin, "targetDir": None}):
        status, default = await api.call("POST", "api/git/checkout", body)
        assert (status, default["code"], default["context"]) == (
            409,
            "FILE_EXISTS",
            {"targetDir": "origin"},
        )


async def test_a_non_empty_target_and_bad_urls_are_refused(api, origin, jp_root_dir, tmp_path):
    (jp_root_dir / "taken").mkdir()
    (jp_root_dir / "taken" / "file").write_text("x")
    cases = [
        ({"repoUrl": origin, "targetDir": "taken"}, 409, "FILE_EXISTS"),
        ({"repoUrl": "ftp://example.com/r.git", "targetDir": "t"}, 400, "INVALID_GIT_URL"),
        ({"repoUrl": origin, "targetDir": "t", "branch": "nope"}, 404, "GIT_BRANCH_NOT_FOUND"),
        ({"repoUrl": f"file://{tmp_path}", "targetDir": "t"}, 403, "PERMISSION_DENIED"),
        ({"repoUrl": origin, "targetDir": str(tmp_path / "t")}, 403, "PERMISSION_DENIED"),
    ]
    for body, status, code in cases:
        got, answer = await api.call("POST", "api/git/checkout", body)
        assert (got, answer["code"]) == (status, code), (body, answer)
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["origin", "taken"]


@pytest.mark.slow
async def test_failures_hide_credentials_and_leave_nothing(api, jp_root_dir, caplog):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://agent:s3cret@127.0.0.1:{port}/repo.git"
    status, answer = await api.call("POST", "api/git/checkout", {"repoUrl": url, "targetDir": "t"})
    assert (status, answer["code"]) == (502, "GIT_NETWORK_ERROR")
    assert "s3cret" not in str(answer) and "***@127.0.0.1" in answer["message"]
    for secret_url in (
        f"http://agent:pa/ss3cret@127.0.0.1:{port}/repo.git",
        f"http://agent:pa ss3cret@127.0.0.1:{port}/repo.git",
        f"http://127.0.0.1:{port}/repo.git?access_token=ss3cret",
    ):
        body = {"repoUrl": secret_url, "targetDir": "t"}
        status, answer = await api.call("POST", "api/git/checkout", body)
        assert status >= 400
        assert "ss3cret" not in str(answer), answer
    assert "ss3cret" not in caplog.text
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/repo.git"
        body = {"repoUrl": url, "targetDir": "slow", "timeoutMs": 500}
        status, answer = await api.call("POST", "api/git/checkout", body)
    assert (status, answer["code"], answer["context"]["timedOut"]) == (
        500,
        "GIT_CLONE_FAILED",
        True,
    )
    assert list(jp_root_dir.iterdir()) == []


async def test_a_relative_local_path_follows_the_session_and_says_its_branch(
    api, origin, jp_root_dir
):
    await api.call("POST", "api/execute", {"command": "mkdir -p work && cd work"})
    body = {"repoUrl": "../origin", "targetDir": "copy"}
    status, answer = await api.call("POST", "api/git/checkout", body)
    assert status == 200, answer
    assert (answer["branch"], answer["targetDir"]) == ("main", "copy")
    assert (jp_root_dir / "work" / "copy" / "README.md").read_text() == "hello\n"
