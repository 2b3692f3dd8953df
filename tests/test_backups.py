"""Archives: a directory round-trips through each compression; restores refuse archives made
to escape; uploads go only to allowed origins."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from http.server import BaseHTTPRequestHandler

import pytest

from jupyter_interp_ext.testing import local_http_server


def make_tree(root) -> None:
    (root / "project" / "src").mkdir(parents=True)
    (root / "project" / "src" / "main.py").write_text("print('hi')\n")
    (root / "project" / "notes.txt").write_text("notes")
    (root / "project" / "debug.log").write_text("noise")
    (root / "project" / "link").symlink_to("notes.txt")


@pytest.mark.parametrize("compression", ["gzip", {"format": "zstd"}, {"format": "lz4"}])
async def test_a_directory_round_trips(api, jp_root_dir, compression):
    make_tree(jp_root_dir)
    body = {"dir": "project", "archivePath": "project.tar", "compression": compression}
    status, created = await api.call("POST", "api/backup/create", {**body, "excludes": ["*.log"]})
    assert status == 200, created
    assert created["sizeBytes"] == (jp_root_dir / "project.tar").stat().st_size > 0
    status, restored = await api.call(
        "POST", "api/backup/restore", {"dir": "copy", "archivePath": "project.tar"}
    )
    assert (status, restored["dir"]) == (200, "copy")
    copy = jp_root_dir / "copy"
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == [
        "link",
        "notes.txt",
        "src",
        "src/main.py",
    ]
    assert (copy / "src" / "main.py").read_text() == "print('hi')\n"
    assert (copy / "link").is_symlink() and (copy / "link").read_text() == "notes"


async def test_gitignore_is_honoured_when_asked(api, jp_root_dir):
    make_tree(jp_root_dir)
    (jp_root_dir / "project" / ".gitignore").write_text("*.log\n")
    git_init(jp_root_dir / "project")
    body = {"dir": "project", "archivePath": "p.tar.gz", "gitignore": True}
    assert (await api.call("POST", "api/backup/create", body))[0] == 200
    with tarfile.open(jp_root_dir / "p.tar.gz") as tar:
        names = sorted(tar.getnames())
    assert names == ["link", "notes.txt", "src", "src/main.py"]  # hidden names stay out


def git_init(path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)


def crafted(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, target: str = "", data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    "members",
    [
        [entry("ok.txt"), entry("/etc/evil")],
        [entry("ok.txt"), entry("../escaped.txt")],
        [entry("out", tarfile.SYMTYPE, "/etc"), entry("out/evil")],
        [entry("up", tarfile.SYMTYPE, "../../")],
        [entry("hard", tarfile.LNKTYPE, "/etc/passwd")],
        [entry("dev", tarfile.CHRTYPE)],
    ],
    ids=["absolute", "dot-dot", "symlink-out", "symlink-up", "hardlink-out", "device"],
)
async def test_crafted_archives_are_refused_whole(api, jp_root_dir, members):
    (jp_root_dir / "bad.tar.gz").write_bytes(crafted(members))
    (jp_root_dir / "target").mkdir()
    (jp_root_dir / "target" / "keep.txt").write_text("kept")
    body = {"dir": "target", "archivePath": "bad.tar.gz"}
    status, answer = await api.call("POST", "api/backup/restore", body)
    assert (status, answer["code"]) == (400, "BACKUP_RESTORE_FAILED"), answer
    assert sorted(p.name for p in (jp_root_dir / "target").iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["bad.tar.gz", "target"]
    assert not (jp_root_dir.parent / "escaped.txt").exists()


async def test_paths_stay_inside_the_roots(api, jp_root_dir, tmp_path):
    make_tree(jp_root_dir)
    for body in (
        {"dir": "project", "archivePath": str(tmp_path / "out.tar")},
        {"dir": str(tmp_path), "archivePath": "in.tar"},
    ):
        status, answer = await api.call("POST", "api/backup/create", body)
        assert (status, answer["code"]) == (403, "PERMISSION_DENIED")
    rar = {"dir": "project", "archivePath": "p.rar", "compression": "rar"}
    status, answer = await api.call("POST", "api/backup/create", rar)
    assert (status, answer["code"]) == (400, "VALIDATION_FAILED")
    not_ours = {"dir": "x", "archivePath": "project/notes.txt"}
    status, answer = await api.call("POST", "api/backup/restore", not_ours)
    assert (status, answer["code"]) == (400, "BACKUP_RESTORE_FAILED")


class Receiver(BaseHTTPRequestHandler):
    received: dict[str, bytes] = {}

    def do_PUT(self) -> None:
        Receiver.received[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("ETag", f'"etag-{self.path[1:]}"')
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.slow
async def test_parts_are_uploaded_only_to_allowed_origins(api, jp_root_dir, jp_serverapp):
    (jp_root_dir / "archive.bin").write_bytes(bytes(range(256)) * 10)
    with local_http_server(Receiver) as receiver:
        origin = f"http://127.0.0.1:{receiver.server_port}"
        parts = [
            {"partNumber": 1, "url": f"{origin}/1", "offset": 0, "size": 2000},
            {"partNumber": 2, "url": f"{origin}/2", "offset": 2000, "size": 560},
        ]
        body = {"archivePath": "archive.bin", "parts": parts}
        status, refused = await api.call("POST", "api/backup/upload-parts", body)
        assert (status, refused["code"]) == (403, "PERMISSION_DENIED")
        assert "BackupManager.upload_origins" in refused["message"]
        jp_serverapp.web_app.settings["interp_backup_manager"].upload_origins = [origin]
        status, answer = await api.call("POST", "api/backup/upload-parts", body)
        assert status == 200, answer
        assert answer["parts"] == [
            {"partNumber": 1, "etag": '"etag-1"'},
            {"partNumber": 2, "etag": '"etag-2"'},
        ]
        assert Receiver.received["/1"] + Receiver.received["/2"] == bytes(range(256)) * 10
        outside = {**body, "parts": [{**parts[0], "size": 5000}]}
        status, answer = await api.call("POST", "api/backup/upload-parts", outside)
        assert (status, answer["code"]) == (400, "VALIDATION_FAILED")
        tabbed = {**body, "parts": [{**parts[0], "url": f"{origin}/\t1"}]}
        status, answer = await api.call("POST", "api/backup/upload-parts", tabbed)
        assert (status, answer["code"]) == (400, "VALIDATION_FAILED")


@pytest.mark.skipif(
    not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev,
    reason="needs a second filesystem for the staging folder",
)
async def test_staging_on_another_filesystem_copies_in(api, jp_root_dir, jp_serverapp, tmp_path):
    """Restores and clones are staged privately, then moved in; across filesystems the move
    is a copy that keeps files, links, folders and modes."""
    staging = tempfile.mkdtemp(dir="/dev/shm")
    jp_serverapp.web_app.settings["interp_file_manager"].staging_dir = staging
    try:
        make_tree(jp_root_dir)
        (jp_root_dir / "project" / "run.sh").write_text("#!/bin/sh\n")
        (jp_root_dir / "project" / "run.sh").chmod(0o755)
        body = {"dir": "project", "archivePath": "p.tar.gz"}
        assert (await api.call("POST", "api/backup/create", body))[0] == 200
        body = {"dir": "copy", "archivePath": "p.tar.gz"}
        assert (await api.call("POST", "api/backup/restore", body))[0] == 200
        copy = jp_root_dir / "copy"
        assert (copy / "src" / "main.py").read_text() == "print('hi')\n"
        assert (copy / "link").is_symlink() and os.readlink(copy / "link") == "notes.txt"
        assert (copy / "run.sh").stat().st_mode & 0o777 == 0o755
        assert os.listdir(staging) == []
    finally:
        shutil.rmtree(staging)


async def test_an_archive_inside_its_folder_never_holds_itself(api, jp_root_dir):
    make_tree(jp_root_dir)
    body = {"dir": "project", "archivePath": "project/self.tar.gz"}
    for _ in range(2):  # the second time, the first archive is there
        assert (await api.call("POST", "api/backup/create", body))[0] == 200
    with tarfile.open(jp_root_dir / "project" / "self.tar.gz") as tar:
        names = tar.getnames()
    assert "self.tar.gz" not in names and not [n for n in names if "archive-" in n], names
