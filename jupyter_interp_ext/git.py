"""`git clone` into the allowed roots with the real git binary.

Credentials in a URL never reach a log or an error; a clone that fails or times out leaves no
half directory behind; a local repository must itself lie inside the roots (a clone is a copy).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from . import metrics
from .errors import SandboxError, validation_error
from .process_tree import run_to_end
from .validation import is_whole, optional_milliseconds, optional_str

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
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
    """`https://user:secret@host/…` as `https://***@host/…`, wherever it appears."""
    return _USERINFO.sub("***@", text)


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
            raise SandboxError("INVALID_GIT_URL", "repoUrl is required", {"repoUrl": url})
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
            raise SandboxError(
                "INVALID_GIT_URL",
                f"Unsupported repository URL scheme '{parts.scheme}'",
                {"repoUrl": redact(self.repo_url)},
            )
        return self.repo_url


class GitManager(LoggingConfigurable):
    """Clones repositories for `/api/git/checkout`."""

    default_timeout = Float(
        300.0, help="Seconds a clone may take when the request sets no `timeoutMs`."
    ).tag(config=True)

    output_limit = Int(64 * 1024, help="Bytes of git's output kept for an error message.").tag(
        config=True
    )

    async def clone(
        self, request: CloneRequest, target: str, shown: str, env: dict[str, str]
    ) -> None:
        """Clone into `target` (a real path inside the roots, absent or an empty directory)."""
        if os.path.lexists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise SandboxError(
                "FILE_EXISTS", f"Target directory is not empty: {shown}", {"targetDir": shown}
            )
        existed = os.path.isdir(target)
        argv = ["git", "clone", "--quiet"]
        if request.branch:
            argv += ["--branch", request.branch, "--single-branch"]
        if request.depth:
            argv += ["--depth", str(request.depth)]
        argv += ["--", request.repo_url, target]
        env = {**env, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "LC_ALL": "C"}
        limit = request.timeout or self.default_timeout or None
        run = await run_to_end(
            shlex.join(argv), os.path.dirname(target), env, limit, self.output_limit
        )
        if run.exit_code == 0 and not run.timed_out:
            metrics.GIT_CHECKOUTS.labels("ok").inc()
            self.log.info("Cloned %s into %s", redact(request.repo_url), target)
            return
        _remove_clone(target, existed)
        if run.timed_out:
            metrics.GIT_CHECKOUTS.labels("timeout").inc()
            raise SandboxError(
                "GIT_CLONE_FAILED",
                f"Clone of {redact(request.repo_url)} timed out after {limit:g} s",
                {"repoUrl": redact(request.repo_url), "timedOut": True},
            )
        message = redact(run.stderr.strip()) or f"git exited with {run.exit_code}"
        code = next((c for c, pattern in _FAILURES if pattern.search(message)), "GIT_CLONE_FAILED")
        metrics.GIT_CHECKOUTS.labels("failed").inc()
        raise SandboxError(
            code,
            f"Clone of {redact(request.repo_url)} failed: {message}",
            {"repoUrl": redact(request.repo_url), "exitCode": run.exit_code},
        )


def _remove_clone(target: str, existed: bool) -> None:
    """Undo a failed clone: the directory goes (or is emptied, if it was there before)."""
    if not existed:
        shutil.rmtree(target, ignore_errors=True)
        return
    for name in os.listdir(target):
        path = os.path.join(target, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def checked_out_branch(target: str) -> str | None:
    """The branch a fresh clone is on, from its `.git/HEAD`."""
    try:
        head = Path(target, ".git", "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else None


def repo_name(url: str) -> str:
    """The directory name `git clone` would choose for a URL."""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name or "repository"
