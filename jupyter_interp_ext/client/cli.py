"""`jupyter sandbox`: the Python client from a terminal.

    jupyter sandbox run analysis.py            # stream a run; images saved as files
    echo '1 + 1' | jupyter sandbox run -
    jupyter sandbox --sandbox ID run --detach train.py   # prints the run's execution id
    jupyter sandbox attach EXECUTION_ID         # follow a run (again); Ctrl-C leaves it be
    jupyter sandbox exec 'ls -la'              # exit status is the command's
    jupyter sandbox shell                      # an interactive terminal in the session
    jupyter sandbox contexts | ls | cat PATH | put LOCAL REMOTE

    jupyter sandbox --hub URL create | list | connect ID | pause ID | kill ID
    jupyter sandbox --hub URL --sandbox ID run -   # in that sandbox, its state kept

The server comes from `--url` or `JUPYTER_SERVER_URL`, the token from `--token` or
`JUPYTER_TOKEN`; on a JupyterHub (`--hub` or `JUPYTERHUB_URL`, token `JUPYTERHUB_API_TOKEN`)
each sandbox is a server of its own, named with `--sandbox`. Exit status: 0, 1 when the run
or command failed, 2 when the server refused the request or could not be reached.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import select
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from .errors import ClientError, CommandExitException, InvalidArgumentException
from .hub import HubProgress
from .models import ExecutionError, FileType, OutputMessage, Result, StreamItem
from .pty import PtySize
from .sandbox import Sandbox

IMAGE_FORMATS = (("png", "png"), ("jpeg", "jpg"), ("svg", "svg"))
# C0 and C1 control characters but tab, newline and carriage return, shown as `\x1b` etc.:
# agent output must not set the terminal's title, write its clipboard or hide lines.
_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
    if code not in (0x09, 0x0A, 0x0D)
}


def visible(text: str, raw: bool = False) -> str:
    """Text from the sandbox as it may reach a terminal: control sequences neutralised unless
    `raw`."""
    return text if raw else text.translate(_CONTROLS)


def main(argv: list[str] | None = None) -> int:
    """`jupyter sandbox …`: run code, commands or file calls from a shell."""
    args = _parser().parse_args(argv)
    try:
        if args.life_cycle:
            return int(args.command(args))
        with _opened(args) as sandbox:
            return int(args.command(sandbox, args))
    except ClientError as error:
        print(f"jupyter sandbox: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A run this command started was stopped on the way out (one it attached to goes
        # on), and what this sandbox started was deleted.
        print("jupyter sandbox: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _opened(args: argparse.Namespace) -> Iterator[Sandbox]:
    """The sandbox a command acts in: `--sandbox`'s (kept as it is, started if paused), or
    else this invocation's own share of the server (what it starts is deleted after)."""
    if args.sandbox:
        sandbox = Sandbox.connect(
            args.sandbox, hub_url=args.hub, token=args.token, server_url=args.url
        )
        try:
            yield sandbox
        finally:
            sandbox.close()
    elif args.hub:
        raise InvalidArgumentException("on a Hub, name the sandbox: --sandbox ID")
    else:
        with Sandbox(args.url, token=args.token, prefix=args.prefix) as sandbox:
            yield sandbox


def _run(sandbox: Sandbox, args: argparse.Namespace) -> int:
    code = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    if args.detach:
        if not (args.sandbox or args.context):
            raise InvalidArgumentException(
                "--detach needs a context that outlives this command: --context or --sandbox"
            )
        language = None if args.context else args.language
        print(sandbox.run_code(code, language, args.context, timeout=args.timeout, detach=True))
        return 0
    if args.sandbox and not args.context:  # the sandbox's own context: its state carries on
        run = sandbox.run_code_stream(code, args.language, timeout=args.timeout)
        return _print_run(run, args)
    context = args.context or sandbox.create_code_context(language=args.language).id
    try:
        return _print_run(sandbox.run_code_stream(code, None, context, timeout=args.timeout), args)
    finally:
        if not args.context:
            sandbox.remove_code_context(context)


def _attach(sandbox: Sandbox, args: argparse.Namespace) -> int:
    return _print_run(sandbox.executions.stream(args.id, after=args.after), args)


def _print_run(run: Iterator[StreamItem], args: argparse.Namespace) -> int:
    """A run's output on stdout and stderr, its images saved; 1 if it failed."""
    failed = False
    saved = 0
    images, raw = Path(args.images), args.raw
    try:
        for item in run:
            if isinstance(item, OutputMessage):
                stream = sys.stderr if item.error else sys.stdout
                stream.write(visible(item.line, raw))
                stream.flush()
            elif isinstance(item, Result):
                saved += _show(item, images, saved, raw)
            elif isinstance(item, ExecutionError):
                # The code's traceback, or why the server ended the run (its kernel died…).
                why = item.traceback or f"{item.name}: {item.value}"
                print(visible(why, raw), file=sys.stderr)
                failed = True
    finally:
        # Closed now, not when collected: a run this command started and left (Ctrl-C) is
        # stopped while the connection to the server is still open.
        close = getattr(run, "close", None)
        if close is not None:
            close()
    return 1 if failed else 0


def _show(result: Result, folder: Path, saved: int, raw: bool) -> int:
    """Print a result; save its image, if it has one. Returns how many files were saved."""
    for name, extension in IMAGE_FORMATS:
        value = getattr(result, name)
        if value is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"result-{saved + 1}.{extension}"
        path.write_bytes(value.encode() if name == "svg" else base64.b64decode(value))
        print(f"[{name} saved to {path}]")
        return 1
    if result.text is not None:
        print(visible(result.text, raw))
    return 0


def _contexts(sandbox: Sandbox, args: argparse.Namespace) -> int:
    for context_id in args.delete:
        sandbox.remove_code_context(context_id)
        print(visible(f"deleted {context_id}", args.raw))
    if args.delete:
        return 0
    for context in sandbox.list_code_contexts():
        print(visible(f"{context.id}\t{context.language}\t{context.cwd}", args.raw))
    return 0


def _exec(sandbox: Sandbox, args: argparse.Namespace) -> int:
    """Run a command (in a fresh shell, or in `--session`'s), its output streamed: its exit
    code is the CLI's."""
    try:
        sandbox.commands.run(
            args.cmd,
            session_id=args.session,
            cwd=args.cwd,
            on_stdout=_echo(sys.stdout, args.raw),
            on_stderr=_echo(sys.stderr, args.raw),
            timeout=0,
        )
    except CommandExitException as failed:
        return failed.exit_code
    return 0


def _echo(stream: TextIO, raw: bool) -> Callable[[OutputMessage], None]:
    def write(message: OutputMessage) -> None:
        stream.write(visible(message.line, raw))
        stream.flush()

    return write


def _shell(sandbox: Sandbox, args: argparse.Namespace) -> int:
    """The session's terminal on this one, raw (it is a terminal: its control sequences are
    meant for this one), resized with it; leaving (its shell's `exit`, or the connection
    ending) gives the shell's exit status. The terminal is the server's: JupyterLab shows
    it too, and an `exit`-less end (a closed window) leaves it running."""
    if not sys.stdin.isatty():
        raise InvalidArgumentException("shell needs a terminal: stdin is not one")
    fd = sys.stdin.fileno()
    out = sys.stdout.buffer

    def show(data: bytes) -> None:
        out.write(data)
        out.flush()

    def size() -> PtySize:
        columns, lines = os.get_terminal_size(fd)
        return PtySize(rows=lines, cols=columns)

    saved = termios.tcgetattr(fd)
    # Raw before connecting: keys typed from now on are the terminal's (none flushed).
    tty.setraw(fd, termios.TCSANOW)
    try:
        terminal = sandbox.pty.create(size(), on_data=show, timeout=None, session=args.session)
        signal.signal(signal.SIGWINCH, lambda *_: terminal.resize(size()))
        while not terminal.ended:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                typed = os.read(fd, 4096)
                if not typed:
                    break
                terminal.send_stdin(typed)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    if not terminal.ended:
        terminal.disconnect()
        return 0
    try:
        terminal.wait()
    except CommandExitException as exited:
        return exited.exit_code
    return 0


def _ls(sandbox: Sandbox, args: argparse.Namespace) -> int:
    for entry in sandbox.files.list(args.path, depth=None if args.recursive else 1):
        suffix = "/" if entry.type is FileType.DIR else ""
        line = f"{entry.permissions}\t{entry.size}\t{entry.relative_path}{suffix}"
        print(visible(line, args.raw))
    return 0


def _cat(sandbox: Sandbox, args: argparse.Namespace) -> int:
    for chunk in sandbox.files.read(args.path, format="stream"):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
    return 0


def _put(sandbox: Sandbox, args: argparse.Namespace) -> int:
    print(sandbox.files.write(args.remote, Path(args.local).read_bytes()).path)
    return 0


def _progress(step: HubProgress) -> None:
    """A server's start, as a bar on stderr."""
    done = max(0, min(step.progress, 100)) // 5
    end = "\n" if step.ready or not sys.stderr.isatty() else ""
    print(
        f"\r[{'#' * done}{' ' * (20 - done)}] {step.progress:3d}% {step.message}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def _create(args: argparse.Namespace) -> int:
    sandbox = Sandbox.create(
        template=args.template, hub_url=args.hub, token=args.token, on_progress=_progress
    )
    sandbox.close()
    print(sandbox.sandbox_id)
    return 0


def _connect(args: argparse.Namespace) -> int:
    sandbox = Sandbox.connect(args.id, hub_url=args.hub, token=args.token, on_progress=_progress)
    sandbox.close()
    print(f"{sandbox.sandbox_id}\trunning")
    return 0


def _list(args: argparse.Namespace) -> int:
    for info in Sandbox.list(hub_url=args.hub, token=args.token, server_url=args.url):
        print(f"{info.sandbox_id}\t{info.state}\t{info.last_activity or ''}\t{info.template or ''}")
    return 0


def _pause(args: argparse.Namespace) -> int:
    sandbox = Sandbox.placed(args.id, hub_url=args.hub, token=args.token)
    sandbox.pause()
    sandbox.close()
    return 0


def _kill(args: argparse.Namespace) -> int:
    Sandbox.placed(args.id, hub_url=args.hub, token=args.token).kill()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter sandbox",
        description="Run code, commands and file operations on a Jupyter "
        "server with jupyter_interp_ext.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("JUPYTER_SERVER_URL"),
        help="the server's URL with its base_url (default: $JUPYTER_SERVER_URL)",
    )
    parser.add_argument(
        "--token", default=None, help="the server's token (default: $JUPYTER_TOKEN)"
    )
    parser.add_argument("--prefix", default="sandbox", help="the API's URL prefix")
    parser.add_argument(
        "--hub",
        default=os.environ.get("JUPYTERHUB_URL"),
        help="a JupyterHub's URL: each sandbox its own server (default: $JUPYTERHUB_URL; "
        "the token: --token or $JUPYTERHUB_API_TOKEN)",
    )
    parser.add_argument(
        "--sandbox", default=None, metavar="ID", help="act in this sandbox (kept, not deleted)"
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="pass control characters in the sandbox's output through to the terminal "
        "(by default they are shown as \\x1b and so on; `cat` always writes raw bytes)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    parser.set_defaults(life_cycle=False)

    create = commands.add_parser("create", help="a new sandbox (on a Hub); prints its id")
    create.add_argument("--template", default=None, help="the deployment's profile")
    create.set_defaults(command=_create, life_cycle=True)
    for name, action, what in (
        ("connect", _connect, "start a sandbox if it is paused"),
        ("pause", _pause, "stop a sandbox's server, keeping its files"),
        ("kill", _kill, "remove a sandbox"),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("id")
        command.set_defaults(command=action, life_cycle=True)
    listing = commands.add_parser("list", help="the sandboxes and their state")
    listing.set_defaults(command=_list, life_cycle=True)

    run = commands.add_parser("run", help="run a file (or - for stdin) and stream its output")
    run.add_argument("file", metavar="FILE|-")
    run.add_argument("--language", default="python")
    run.add_argument(
        "--context", default=None, help="a context id (default: a new one, deleted after)"
    )
    run.add_argument("--images", default=".", help="folder for images (default: here)")
    run.add_argument(
        "--timeout", type=float, default=None, help="seconds the run may take (0: no limit)"
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="start the run and print its execution id; it goes on with no one reading",
    )
    run.set_defaults(command=_run)

    attach = commands.add_parser(
        "attach", help="follow a run by its execution id (Ctrl-C leaves it running)"
    )
    attach.add_argument("id", metavar="EXECUTION_ID")
    attach.add_argument(
        "--after", type=int, default=0, help="only the events after this id (default: all)"
    )
    attach.add_argument("--images", default=".", help="folder for images (default: here)")
    attach.set_defaults(command=_attach)

    contexts = commands.add_parser("contexts", help="list code contexts (or delete some)")
    contexts.add_argument("--delete", nargs="+", default=[], metavar="ID", help="delete these")
    contexts.set_defaults(command=_contexts)

    exec_ = commands.add_parser("exec", help="run a shell command; exit with its status")
    exec_.add_argument("cmd")
    exec_.add_argument("--session", default=None)
    exec_.add_argument("--cwd", default=None)
    exec_.set_defaults(command=_exec)

    shell = commands.add_parser("shell", help="an interactive terminal in a session")
    shell.add_argument(
        "--session", default="default", help="the execution session (default: default)"
    )
    shell.set_defaults(command=_shell)

    ls = commands.add_parser("ls", help="list a directory")
    ls.add_argument("path", nargs="?", default=".")
    ls.add_argument("-r", "--recursive", action="store_true")
    ls.set_defaults(command=_ls)

    cat = commands.add_parser("cat", help="write a file to stdout (streamed)")
    cat.add_argument("path")
    cat.set_defaults(command=_cat)

    put = commands.add_parser("put", help="upload a local file")
    put.add_argument("local")
    put.add_argument("remote")
    put.set_defaults(command=_put)
    return parser


if __name__ == "__main__":
    sys.exit(main())
