"""Rights that hold: a caller who may only read and write files (`contents`, `api`) never gets
a program started, a link out of the roots made, or a file outside the roots touched, whatever
it lays out on disk and however it races the server.

Races are made deterministic by swapping a path at the exact step where the old code acted by
name after its check (a wrapper around a library call inside the server's process)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from jupyter_interp_ext.files import backups, git
from jupyter_interp_ext.pytest_plugin import wait_until


class FilesOnly(Authorizer):
    """Allows `contents` and `api` only, as a deployment that lets a caller edit files but not
    run code or commands would; `everything` lifts that for tests of a full-rights caller."""

    everything = False

    def is_authorized(self, handler, user, action, resource) -> bool:
        return self.everything or resource in ("contents", "api")


@pytest.fixture
def jp_server_config():
    FilesOnly.everything = False
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_interp_ext": True},
            "authorizer_class": FilesOnly,
        },
    }


@pytest.fixture
def outside(tmp_path):
    """A directory beside the server's root, with a secret in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret")
    return folder


def tar_gz(*members: tuple[str, bytes, str]) -> bytes:
    """An archive of (name, type, data or link target) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(payload.encode())
                tar.addfile(info, io.BytesIO(payload.encode()))
            else:
                info.linkname = payload
                tar.addfile(info)
    return buffer.getvalue()


def commit(repo, files: dict[str, str], links: dict[str, str] | None = None) -> None:
    """A git repository at `repo` with one commit of these files and links."""
    run = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(repo)]
    repo.mkdir(parents=True, exist_ok=True)
    subprocess.run([*run, "init", "-q"], check=True)
    for name, text in files.items():
        (repo / name).write_text(text)
    for name, target in (links or {}).items():
        (repo / name).symlink_to(target)
    subprocess.run([*run, "add", "."], check=True)
    subprocess.run([*run, "commit", "-q", "--allow-empty", "-m", "files"], check=True)


async def put(api, path: str, content: str) -> None:
    status, answer = await api.call("POST", "api/write", {"path": path, "content": content})
    assert status == 200, answer


async def test_the_caller_holds_files_rights_only(api):
    status, answer = await api.call("POST", "api/execute", {"command": "true"})
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert (await api.call("GET", "api/ping"))[0] == 200


async def test_an_archive_with_gitignore_starts_no_program(api, jp_root_dir, tmp_path):
    """A repository whose configuration names an fsmonitor command: a files-only caller may not
    restore one, and honouring .gitignore must not run it where one is found."""
    marker = tmp_path / "ran"
    config = f'[core]\n\tfsmonitor = "touch {marker}; echo"\n'
    layout = [
        ("repo/.git/HEAD", tarfile.REGTYPE, "ref: refs/heads/main\n"),
        ("repo/.git/config", tarfile.REGTYPE, config),
        ("repo/.git/objects", tarfile.DIRTYPE, ""),
        ("repo/.git/refs", tarfile.DIRTYPE, ""),
        ("repo/kept.txt", tarfile.REGTYPE, "x"),
    ]
    (jp_root_dir / "repo.tar.gz").write_bytes(tar_gz(*layout))
    body = {"dir": ".", "archivePath": "repo.tar.gz"}
    status, answer = await api.call("POST", "api/backup/restore", body)
    assert (status, answer["code"]) == (400, "BACKUP_RESTORE_FAILED")
    with tarfile.open(jp_root_dir / "repo.tar.gz") as tar:
        tar.extractall(jp_root_dir, filter="data")  # as if it had been there all along
    body = {"dir": "repo", "archivePath": "repo-backup.tar.gz", "gitignore": True}
    status, answer = await api.call("POST", "api/backup/create", body)
    assert status == 200, answer
    assert not marker.exists()


async def test_gitignore_rules_are_read_as_git_reads_them(api, jp_root_dir):
    project = jp_root_dir / "project"
    (project / "sub" / "build").mkdir(parents=True)
    commit(project, {})
    (project / ".gitignore").write_text("*.log\nbuild/\n")
    (project / "sub" / ".gitignore").write_text("!keep.log\n*.tmp\n")
    for name in ("a.log", "a.txt", "sub/keep.log", "sub/b.log", "sub/c.tmp", "sub/build/x"):
        (project / name).write_text("x")
    # Archiving a folder inside the repository applies the rules above it too.
    for folder, expected in (
        ("project", ["a.txt", "sub", "sub/keep.log"]),
        ("project/sub", ["keep.log"]),
    ):
        body = {"dir": folder, "archivePath": "out.tar.gz", "gitignore": True}
        assert (await api.call("POST", "api/backup/create", body))[0] == 200
        with tarfile.open(jp_root_dir / "out.tar.gz") as tar:
            assert sorted(tar.getnames()) == expected


async def test_a_cloned_link_out_of_the_roots_is_never_made(api, jp_root_dir):
    repo = jp_root_dir / "linky"
    commit(repo, {"README": "hi"}, {"out": "/", "inner": "README"})
    url = f"file://{repo}"
    # A files-only caller gets links as plain files holding their target (git's own way on
    # filesystems without links).
    status, answer = await api.call("POST", "api/git/checkout", {"repoUrl": url, "targetDir": "a"})
    assert status == 200, answer
    assert not (jp_root_dir / "a" / "out").is_symlink()
    assert (jp_root_dir / "a" / "out").read_text() == "/"
    # A caller who may run commands gets links, but none that leads out of the clone.
    FilesOnly.everything = True
    status, answer = await api.call("POST", "api/git/checkout", {"repoUrl": url, "targetDir": "b"})
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert "out -> /" in answer["message"]
    assert not (jp_root_dir / "b").exists()


async def test_a_restored_link_cannot_be_moved_out_of_the_roots(api, jp_root_dir, outside):
    deep = tar_gz(("a/b/c/link", tarfile.SYMTYPE, f"../../../{outside.name}"))
    (jp_root_dir / "deep.tar.gz").write_bytes(deep)
    body = {"dir": "restored", "archivePath": "deep.tar.gz"}
    status, answer = await api.call("POST", "api/backup/restore", body)
    assert (status, answer["code"]) == (400, "BACKUP_RESTORE_FAILED")
    assert "leads out of its folder" in answer["message"]
    assert not (jp_root_dir / "restored").exists()
    # A caller who could make such a link anyway may restore it; moving it where it would
    # point above the root is then refused, and nothing moves.
    FilesOnly.everything = True
    assert (await api.call("POST", "api/backup/restore", body))[0] == 200
    moved = {"sourcePath": "restored/a/b", "destinationPath": "b"}
    status, answer = await api.call("POST", "api/move", moved)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert (jp_root_dir / "restored" / "a" / "b" / "c" / "link").is_symlink()
    assert not (jp_root_dir / "b").exists()
    renamed = {"oldPath": "restored/a/b/c/link", "newPath": "link"}
    status, answer = await api.call("POST", "api/rename", renamed)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    # Moving it deeper keeps it inside: allowed.
    deeper = {"sourcePath": "restored/a", "destinationPath": "restored/x/a"}
    await api.call("POST", "api/mkdir", {"path": "restored/x"})
    assert (await api.call("POST", "api/move", deeper))[0] == 200


async def test_a_restore_cannot_be_redirected_by_a_swap(api, jp_root_dir, outside, monkeypatch):
    """The target folder is swapped for a link to outside while the archive is unpacked."""
    (jp_root_dir / "a.tar.gz").write_bytes(tar_gz(("planted.txt", tarfile.REGTYPE, "x")))
    (jp_root_dir / "target").mkdir()
    real_filter = tarfile.data_filter

    def swapping_filter(member, path):
        if (jp_root_dir / "target").is_dir() and not (jp_root_dir / "target").is_symlink():
            (jp_root_dir / "target").rmdir()
            (jp_root_dir / "target").symlink_to(outside)
        return real_filter(member, path)

    monkeypatch.setattr(tarfile, "data_filter", swapping_filter)
    body = {"dir": "target", "archivePath": "a.tar.gz"}
    status, answer = await api.call("POST", "api/backup/restore", body)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_an_archive_cannot_be_redirected_by_a_swap(api, jp_root_dir, outside, monkeypatch):
    """A folder is swapped for a link to outside after the archive's walk has seen it."""
    (jp_root_dir / "project" / "src").mkdir(parents=True)
    (jp_root_dir / "project" / "src" / "secret.txt").write_text("mine")
    (jp_root_dir / "project" / "a.txt").write_text("a")
    real_addfile = tarfile.TarFile.addfile
    src = jp_root_dir / "project" / "src"

    def swapping_addfile(self, info, fileobj=None):
        if info.name == "src" and not src.is_symlink():
            (src / "secret.txt").unlink()
            src.rmdir()
            src.symlink_to(outside)
        return real_addfile(self, info, fileobj)

    monkeypatch.setattr(tarfile.TarFile, "addfile", swapping_addfile)
    body = {"dir": "project", "archivePath": "p.tar.gz"}
    assert (await api.call("POST", "api/backup/create", body))[0] == 200
    with tarfile.open(jp_root_dir / "p.tar.gz") as tar:
        secrets = [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]
    assert b"secret" not in secrets


async def test_a_failed_clone_cannot_empty_a_swapped_in_folder(
    api, jp_root_dir, outside, monkeypatch
):
    (jp_root_dir / "target").mkdir()
    real_run = git.run_to_end

    async def swapping_run(*args, **kwargs):
        finished = await real_run(*args, **kwargs)
        (jp_root_dir / "target").rmdir()
        (jp_root_dir / "target").symlink_to(outside)
        return finished

    monkeypatch.setattr(git, "run_to_end", swapping_run)
    unreachable = "http://127.0.0.1:1/repository.git"  # refused at once
    status, answer = await api.call(
        "POST", "api/git/checkout", {"repoUrl": unreachable, "targetDir": "target"}
    )
    assert (status, answer["code"]) == (502, "GIT_NETWORK_ERROR")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_a_local_clone_reads_nothing_outside_the_roots(api, jp_root_dir, tmp_path):
    foreign = tmp_path / "foreign"
    commit(foreign, {"private.txt": "private"})
    # A `.git` file pointing at it, laid out by the caller's plain write.
    await put(api, "pointer/README", "x")
    (jp_root_dir / "pointer" / ".git").write_text(f"gitdir: {foreign / '.git'}\n")
    body = {"repoUrl": str(jp_root_dir / "pointer"), "targetDir": "stolen"}
    status, answer = await api.call("POST", "api/git/checkout", body)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    assert not (jp_root_dir / "stolen").exists()
    # Alternates naming its objects.
    inside = jp_root_dir / "inside"
    shared_clone(foreign, inside)
    body = {"repoUrl": str(inside), "targetDir": "stolen"}
    status, answer = await api.call("POST", "api/git/checkout", body)
    assert (status, answer["code"]) == (403, "PERMISSION_DENIED")


def shared_clone(source, target) -> None:
    """A clone that reads its objects from `source` through alternates."""
    subprocess.run(["git", "clone", "-q", "--shared", str(source), str(target)], check=True)


async def test_archives_follow_the_hidden_file_rules(api, jp_root_dir):
    (jp_root_dir / "app").mkdir()
    (jp_root_dir / "app" / ".env").write_text("TOKEN=secret")
    (jp_root_dir / "app" / "main.py").write_text("print()")
    body = {"dir": "app", "archivePath": "app.tar.gz"}
    assert (await api.call("POST", "api/backup/create", body))[0] == 200
    with tarfile.open(jp_root_dir / "app.tar.gz") as tar:
        assert tar.getnames() == ["main.py"]
    for name in (".bashrc", ".ipython/profile_default/startup/00.py", "ok/.git/config"):
        (jp_root_dir / "h.tar.gz").write_bytes(tar_gz((name, tarfile.REGTYPE, "x")))
        body = {"dir": "home", "archivePath": "h.tar.gz"}
        status, answer = await api.call("POST", "api/backup/restore", body)
        assert (status, answer["code"]) == (400, "BACKUP_RESTORE_FAILED"), name
        assert "hidden" in answer["message"]
        assert not (jp_root_dir / "home").exists()


@pytest.mark.slow
async def test_restores_are_capped(api, jp_root_dir, jp_serverapp):
    manager = jp_serverapp.web_app.settings["interp_backup_manager"]
    manager.max_restore_entries, manager.max_restore_bytes = 3, 1000
    # A compression bomb: 100 MiB of zeros in a ~100 KB archive, past the ratio's budget.
    (jp_root_dir / "zeros.tar.gz").write_bytes(
        tar_gz(("zeros", tarfile.REGTYPE, "\0" * 100 * 2**20))
    )
    manager.max_restore_bytes = 2**40
    body = {"dir": "out", "archivePath": "zeros.tar.gz"}
    status, answer = await api.call("POST", "api/backup/restore", body)
    assert (status, answer["code"]) == (413, "BACKUP_RESTORE_FAILED")
    assert "BackupManager.max_restore_ratio" in answer["message"]
    assert not (jp_root_dir / "out").exists()
    manager.max_restore_bytes = 1000
    many = tar_gz(*[(f"f{i}", tarfile.REGTYPE, "x") for i in range(4)])
    big = tar_gz(("a", tarfile.REGTYPE, "x" * 600), ("b", tarfile.REGTYPE, "x" * 600))
    for archive, what in ((many, "entries"), (big, "bytes")):
        (jp_root_dir / "bomb.tar.gz").write_bytes(archive)
        body = {"dir": "out", "archivePath": "bomb.tar.gz"}
        status, answer = await api.call("POST", "api/backup/restore", body)
        assert (status, answer["code"]) == (413, "BACKUP_RESTORE_FAILED")
        assert what in answer["message"]
        assert not (jp_root_dir / "out").exists()
    (jp_root_dir / "ok.tar.gz").write_bytes(tar_gz(("a", tarfile.REGTYPE, "x" * 600)))
    assert (
        await api.call("POST", "api/backup/restore", {"dir": "out", "archivePath": "ok.tar.gz"})
    )[0] == 200


async def test_archive_jobs_have_their_own_threads_and_stop_when_answered(
    api, jp_root_dir, jp_serverapp, monkeypatch
):
    """A job held past its timeout is answered 500, the files API answers meanwhile, and the
    job, once it can go on, stops and publishes nothing."""
    manager = jp_serverapp.web_app.settings["interp_backup_manager"]
    manager.job_timeout = 0.5
    release = threading.Event()
    real_writer = backups.COMPRESSIONS["gzip"]

    def held_writer(raw):
        release.wait(30)
        return real_writer[0](raw)

    monkeypatch.setitem(backups.COMPRESSIONS, "gzip", (held_writer, real_writer[1]))
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "a.txt").write_text("a")
    body = {"dir": "data", "archivePath": "data.tar.gz"}
    try:
        status, answer = await api.call("POST", "api/backup/create", body)
        assert (status, answer["code"]) == (500, "FILESYSTEM_ERROR")
        assert "job_timeout" in answer["message"]
        assert (await api.call("POST", "api/read", {"path": "data/a.txt"}))[0] == 200
    finally:
        release.set()
    # The held job goes on, sees it was answered, and removes its partial archive.
    await wait_until(lambda: not manager._pending, "the held job ended")
    assert sorted(os.listdir(jp_root_dir)) == ["data"]


async def test_previews_need_the_right_to_run_commands(api, jp_fetch):
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("sandbox", "preview", "8000", "")
    assert refused.value.code == 403


async def test_a_clone_reads_no_configuration_a_caller_could_have_written(
    api, jp_root_dir, tmp_path, monkeypatch
):
    """Per-user configuration (a home inside the roots, hidden files allowed) and inherited
    GIT_CONFIG_* variables name an fsmonitor command and a hooks folder: the clone starts
    neither."""
    commit(jp_root_dir / "origin", {"README": "hi"})  # before the planted configuration
    marker = tmp_path / "ran"
    home = tmp_path / "home"
    (home / "hooks").mkdir(parents=True)
    hook = home / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (home / ".gitconfig").write_text(
        f'[core]\n\tfsmonitor = "touch {marker}; echo"\n\thooksPath = {home / "hooks"}\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(home / "hooks"))
    body = {"repoUrl": str(jp_root_dir / "origin"), "targetDir": "copy"}
    status, answer = await api.call("POST", "api/git/checkout", body)
    assert status == 200, answer
    assert (jp_root_dir / "copy" / "README").read_text() == "hi"
    assert not marker.exists()
