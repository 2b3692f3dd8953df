"""`git clone` into the allowed roots with the real git binary.

Credentials in a URL never reach a log or an error; git runs with settings that let nothing
it reads start a program; the clone is made in a private folder and moved in whole, so one
that fails or times out leaves nothing behind; a local repository, and whatever git would read
through it, must lie inside the roots (a clone is a copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shlex
import stat
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from traitlets import Float, Instance, Int
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.validation import is_whole, optional_milliseconds, optional_str
from jupyter_interp_ext.shells.process_tree import run_to_end

from . import trees
from .confinement import lstat_in, open_in
from .manager import FileManager

# Everything between `://` and the line's last `@`: a password may hold `/` or spaces.
_USERINFO = re.compile(r"(?<=://)[^@\n]*@")
# Query parameters that carry credentials (`?access_token=…`, pre-signed URLs' signatures).
_SECRET_PARAMETER = re.compile(
    r"(?<=[?&])([^=&\s#]*(?:token|key|secret|password|passwd|auth|sig|credential)[^=&\s#]*)="
    r"[^&\s#'\"]*",
    re.IGNORECASE,
)
_REMOTE_SCHEMES = ("https", "http", "ssh", "git")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:[^\s]+$")
# What git says → the protocol's code (the first that matches wins).
_FAILURES = [
    ("GIT_BRANCH_NOT_FOUND", re.compile(r"Remote branch .* not found|couldn't find remote ref")),
    (
        "GIT_AUTH_FAILED",
        re.compile(r"Authentication failed|could not read Username|Permission denied \(publickey"),
    ),
    (
        "GIT_REPOSITORY_NOT_FOUND",
        re.compile(r"not found|does not appear to be a git repository|does not exist"),
    ),
    (
        "GIT_NETWORK_ERROR",
        re.compile(r"Could not resolve host|unable to access|Connection (refused|timed out)"),
    ),
]


def redact(text: str) -> str:
    """`https://user:secret@host/…?token=t` as `https://***@host/…?token=***`, wherever it
    appears."""
    return _SECRET_PARAMETER.sub(r"\1=***", _USERINFO.sub("***@", text))


@dataclass(frozen=True)
class CloneRequest:
    repo_url: str
    branch: str | None
    depth: int | None
    timeout: float | None  # seconds

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CloneRequest:
        url = optional_str(body, "repoUrl")
        if not url or not url.strip():
            raise ProtocolError("INVALID_GIT_URL", "repoUrl is required", {"repoUrl": url})
        depth = body.get("depth")
        if depth is not None and not is_whole(depth, 1):
            raise validation_error("depth", "'depth' must be a positive whole number")
        branch = optional_str(body, "branch")
        if branch is not None and (not branch or branch.startswith("-")):
            raise validation_error("branch", "'branch' must be a branch name")
        depth = None if depth is None else int(depth)
        return cls(url.strip(), branch, depth, optional_milliseconds(body, "timeoutMs"))

    def local_path(self) -> str | None:
        """The directory a `file://` URL or a plain path names (None for a remote URL)."""
        parts = urlsplit(self.repo_url)
        if parts.scheme == "file":
            return parts.path
        if parts.scheme in _REMOTE_SCHEMES or _SCP_LIKE.match(self.repo_url):
            return None
        if parts.scheme:
            raise ProtocolError(
                "INVALID_GIT_URL",
                f"Unsupported repository URL scheme '{parts.scheme}'",
                {"repoUrl": redact(self.repo_url)},
            )
        return self.repo_url


# Given to every git run, above any configuration file: nothing a repository or a caller
# wrote may start a program (fsmonitor, hooks, the `ext::` transport) or be read as a bare
# repository found by accident.
HARDENED = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "safe.bareRepository=explicit",
    "protocol.ext.allow=never",
)
# Variables that point git at other repositories or configuration: never inherited.
_GIT_ENVIRONMENT = re.compile(
    r"GIT_(CONFIG.*|DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|"
    r"COMMON_DIR|NAMESPACE|CEILING_DIRECTORIES|DISCOVERY_ACROSS_FILESYSTEM|EXEC_PATH|TEMPLATE_DIR)"
)
REPOSITORY_NAME = "repository"  # the clone's folder inside its private staging folder
POINTER_BYTES = 64 * 1024


def git_environment(base: dict[str, str]) -> dict[str, str]:
    """The environment every git run gets: the server's, without variables that redirect git,
    with no per-user or system configuration (a caller who may write files could have
    written it), and no prompts."""
    env = {k: v for k, v in base.items() if not _GIT_ENVIRONMENT.fullmatch(k)}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        LC_ALL="C",
    )
    return env


class GitManager(LoggingConfigurable):
    """Clones repositories for `/api/git/checkout`."""

    default_timeout = Float(
        300.0, help="Seconds a clone may take when the request sets no `timeoutMs`."
    ).tag(config=True)

    output_limit = Int(64 * 1024, help="Bytes of git's output kept for an error message.").tag(
        config=True
    )

    files = Instance(FileManager)

    async def clone(
        self,
        request: CloneRequest,
        target: str,
        shown: str,
        env: dict[str, str],
        links: bool,
        local: tuple[str, str] | None = None,
    ) -> str | None:
        """Clone into `target` (inside the roots, absent or an empty directory); the branch
        checked out. The clone is made in a private staging folder and moved in whole, so a
        failed one leaves nothing and renames meanwhile cannot redirect it. Without `links` (a
        caller who may not run commands) symlinks are checked out as plain files holding their
        target, as git does where links cannot be made; with it, a link that leads out of the
        clone refuses it. `local` is a local repository's (absolute path, path as written),
        cloned from its checked real path in place of the URL as written (which may be
        relative to a session's directory)."""
        source = await self.local_source(request, *local) if local is not None else None
        await self.files.run_io(lambda: self._check_target(target, shown), shown)
        argv = ["git"]
        for setting in (*HARDENED, f"core.symlinks={str(links).lower()}"):
            argv += ["-c", setting]
        argv += ["clone", "--quiet"]
        if request.branch:
            argv += ["--branch", request.branch, "--single-branch"]
        if request.depth:
            argv += ["--depth", str(request.depth)]
        argv += ["--", source or request.repo_url, REPOSITORY_NAME]
        limit = request.timeout or self.default_timeout or None
        staging = await asyncio.to_thread(self.files.make_staging)
        try:
            run = await run_to_end(
                shlex.join(argv), staging, git_environment(env), limit, self.output_limit
            )
            if run.exit_code == 0 and not run.timed_out:
                branch = await self.files.run_io(
                    lambda: self._move_in(staging, target, shown), shown
                )
                metrics.GIT_CHECKOUTS.labels("ok").inc()
                self.log.info("Cloned %s into %s", redact(request.repo_url), target)
                return branch
        finally:
            await asyncio.to_thread(self.files.remove_staging, staging)
        if run.timed_out:
            metrics.GIT_CHECKOUTS.labels("timeout").inc()
            raise ProtocolError(
                "GIT_CLONE_FAILED",
                f"Clone of {redact(request.repo_url)} timed out after {limit:g} s",
                {"repoUrl": redact(request.repo_url), "timedOut": True},
            )
        message = redact(run.stderr.strip()) or f"git exited with {run.exit_code}"
        code = next((c for c, pattern in _FAILURES if pattern.search(message)), "GIT_CLONE_FAILED")
        metrics.GIT_CHECKOUTS.labels("failed").inc()
        raise ProtocolError(
            code,
            f"Clone of {redact(request.repo_url)} failed: {message}",
            {"repoUrl": redact(request.repo_url), "exitCode": run.exit_code},
        )

    def _check_target(self, target: str, shown: str) -> None:
        with self.files.confinement.locate(target, shown) as location:
            if not location.exists:
                return
            if location.name:
                info = lstat_in(location)
                if stat.S_ISDIR(info.st_mode):
                    fd = open_in(location, os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        if not os.listdir(fd):
                            return
                    finally:
                        os.close(fd)
        raise _not_empty(shown)

    def _move_in(self, staging: str, target: str, shown: str) -> str | None:
        """Move the finished clone onto `target` (nothing there, or an empty directory); the
        branch it has checked out, read while it is still private."""
        fd = os.open(staging, trees.DIR_FLAGS)
        try:
            head = _read_below(fd, f"{REPOSITORY_NAME}/.git", "HEAD").strip()
            with self.files.confinement.locate(target, shown) as location:
                if not location.name:
                    raise _not_empty(shown)
                for entry, text in trees.links(fd):
                    if trees.climbs_above(text, len(entry.parts) - 2):  # below `repository/`
                        raise ProtocolError(
                            "PERMISSION_DENIED",
                            f"The repository's link {entry.relative.split('/', 1)[1]} -> {text} "
                            "leads out of the clone",
                            {"targetDir": shown},
                        )
                try:
                    trees.move(fd, REPOSITORY_NAME, location.dir_fd, location.name)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                        raise _not_empty(shown) from None
                    raise
            return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else None
        finally:
            os.close(fd)

    async def local_source(self, request: CloneRequest, path: str, shown: str) -> str:
        """What git clones a local repository from: its real path, once checked."""
        real = await self.files.real_directory(path, shown)
        await self.files.run_io(lambda: self.check_local(real, shown), shown)
        return f"file://{real}" if request.repo_url.startswith("file:") else real

    def check_local(self, path: str, shown: str) -> None:
        """A local repository must lie inside the roots, and so must everything git would read
        through it: the repository a `.git` file names, alternates, `commondir`, and the
        targets of links in its git folder."""
        confinement = self.files.confinement
        top = confinement.open_directory(path, shown)
        try:
            git_dir = path
            if trees.exists(top, ".git"):
                pointer = trees.read_text(top, ".git", POINTER_BYTES)
                if pointer.startswith("gitdir:"):
                    git_dir = os.path.join(path, pointer[len("gitdir:") :].strip())
                else:
                    git_dir = os.path.join(path, ".git")
        finally:
            os.close(top)
        pointers = [
            (os.path.join(git_dir, "objects"), "objects/info/alternates"),
            (git_dir, "commondir"),
        ]
        git_fd = confinement.open_directory(git_dir, shown, hidden=True)
        try:
            for base, name in pointers:
                folder, _, leaf = name.rpartition("/")
                text = _read_below(git_fd, folder, leaf)
                for line in text.splitlines():
                    if line.strip() and not line.startswith("#"):
                        self._inside(os.path.join(base, line.strip()), shown)
            for entry, _ in trees.links(git_fd):
                self._inside(os.path.join(git_dir, entry.relative), shown)
        finally:
            os.close(git_fd)

    def _inside(self, path: str, shown: str) -> None:
        """403 when `path`, links followed, leads outside the roots."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.files.confinement.locate(path, shown, hidden=True).close()


def _read_below(top: int, folder: str, name: str) -> str:
    """A small file `folder/name` below the held directory `top`, no link followed."""
    fd = os.dup(top)
    try:
        for part in filter(None, folder.split("/")):
            try:
                inner = os.open(part, trees.DIR_FLAGS, dir_fd=fd)
            except OSError:
                return ""
            os.close(fd)
            fd = inner
        return trees.read_text(fd, name, POINTER_BYTES)
    finally:
        os.close(fd)


def _not_empty(shown: str) -> ProtocolError:
    return ProtocolError(
        "FILE_EXISTS", f"Target directory is not empty: {shown}", {"targetDir": shown}
    )


def repo_name(url: str) -> str:
    """The directory name `git clone` would choose for a URL."""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name or "repository"
