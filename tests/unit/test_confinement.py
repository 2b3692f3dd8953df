"""Confinement walks and where things start, on real files, without a server."""

from __future__ import annotations

import os

import pytest

from jupyter_interp_ext.files.confinement import Confinement
from jupyter_interp_ext.launch import LaunchPolicy
from jupyter_interp_ext.protocol.errors import ProtocolError


@pytest.fixture
def tree(tmp_path):
    """root/{a/b/file, up -> .., out -> /tmp-outside, inner -> a, .hidden/x}, and outside/."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_text("x")
    (root / ".hidden").mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink("..", root / "up")
    os.symlink(outside, root / "out")
    os.symlink("a", root / "inner")
    return root, outside


def where(confinement: Confinement, path: str, **options) -> tuple[str, str]:
    """(real directory the walk holds, name in it)."""
    with confinement.locate(path, path, **options) as location:
        return os.readlink(f"/proc/self/fd/{location.dir_fd}"), location.name


def test_paths_inside_resolve_links_that_stay_inside(tree):
    root, _ = tree
    walk = Confinement([str(root)], allow_hidden=False)
    assert where(walk, f"{root}/a/b/file") == (f"{root}/a/b", "file")
    assert where(walk, f"{root}/inner/b/file") == (f"{root}/a/b", "file")
    assert where(walk, f"{root}/a/b/../../a/b/file") == (f"{root}/a/b", "file")


@pytest.mark.parametrize(
    "path", ["{root}/..", "{root}/up/outside/secret", "{root}/out/secret", "/etc/passwd"]
)
def test_nothing_outside_the_roots_by_any_path(tree, path):
    root, _ = tree
    walk = Confinement([str(root)], allow_hidden=False)
    with pytest.raises(ProtocolError) as refused:
        where(walk, path.format(root=root))
    assert refused.value.code == "PERMISSION_DENIED"


def test_hidden_names_need_the_servers_permission(tree):
    root, _ = tree
    with pytest.raises(ProtocolError, match="hidden"):
        where(Confinement([str(root)], allow_hidden=False), f"{root}/.hidden/x")
    assert where(Confinement([str(root)], allow_hidden=True), f"{root}/.hidden/x")[1] == "x"


def test_missing_parents_are_made_only_when_asked(tree):
    root, _ = tree
    walk = Confinement([str(root)], allow_hidden=False)
    with pytest.raises(FileNotFoundError):
        where(walk, f"{root}/new/deep/file")
    assert where(walk, f"{root}/new/deep/file", make_parents=True) == (f"{root}/new/deep", "file")


def test_a_last_link_is_not_followed_when_asked(tree):
    root, _ = tree
    walk = Confinement([str(root)], allow_hidden=False)
    assert where(walk, f"{root}/out", follow_last=False) == (str(root), "out")


def test_start_dirs_fall_back_stay_inside_and_must_be_directories(tree):
    root, _ = tree
    policy = LaunchPolicy(root_dir=str(root))
    assert policy.start_dir(None, str(root)) == str(root)
    assert policy.start_dir("/workspace", str(root)) == str(root)  # the official client's
    assert policy.start_dir("a/b", str(root)) == f"{root}/a/b"
    assert policy.start_dir("inner", str(root)) == f"{root}/a"
    for outside in ("out", str(tree[1]), ".."):
        with pytest.raises(ProtocolError) as refused:
            policy.start_dir(outside, str(root))
        assert refused.value.code == "PERMISSION_DENIED"
    with pytest.raises(ProtocolError) as refused:
        policy.start_dir("a/b/file", str(root))
    assert refused.value.code == "NOT_DIRECTORY"


def test_what_starts_never_sees_the_token(monkeypatch):
    policy = LaunchPolicy(secrets=["t0ken"])
    base = {"JUPYTER_TOKEN": "x", "JUPYTER_PASSWORD_HASH": "h", "COPY": "t0ken", "PATH": "/bin"}
    assert policy.environment(base, {"MINE": "1"}) == {"PATH": "/bin", "MINE": "1"}
    with pytest.raises(ProtocolError):
        policy.environment(base, {"BAD NAME": "1"})
