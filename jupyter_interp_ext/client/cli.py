"""`jupyter sandbox`: the Python client from a terminal.

    jupyter sandbox run analysis.py            # stream a run; images saved as files
    echo '1 + 1' | jupyter sandbox run -
    jupyter sandbox exec 'ls -la'              # exit status is the command's
    jupyter sandbox contexts | ls | cat PATH | put LOCAL REMOTE

The server comes from `--url` or `JUPYTER_SERVER_URL`, the token from `--token` or
`JUPYTER_TOKEN`. Exit status: 0, 1 when the run or command failed, 2 when the server refused
the request or could not be reached.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .errors import ClientError, CommandExitException
from .models import ExecutionError, FileType, OutputMessage, Result
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
        with Sandbox(args.url, token=args.token, prefix=args.prefix) as sandbox:
            return int(args.command(sandbox, args))
    except ClientError as error:
        print(f"jupyter sandbox: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Leaving the stream disconnected it, which interrupts the remote run; what this
        # sandbox started was deleted on the way out.
        print("jupyter sandbox: interrupted", file=sys.stderr)
        return 130


def _run(sandbox: Sandbox, args: argparse.Namespace) -> int:
    code = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    context = args.context or sandbox.create_code_context(language=args.language).id
    try:
        return _stream_run(sandbox, code, context, args)
    finally:
        if not args.context:
            sandbox.remove_code_context(context)


def _stream_run(sandbox: Sandbox, code: str, context: str, args: argparse.Namespace) -> int:
    failed = False
    saved = 0
    images, raw = Path(args.images), args.raw
    for item in sandbox.run_code_stream(code, context=context, timeout=args.timeout):
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
        "--raw",
        action="store_true",
        help="pass control characters in the sandbox's output through to the terminal "
        "(by default they are shown as \\x1b and so on; `cat` always writes raw bytes)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

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
    run.set_defaults(command=_run)

    contexts = commands.add_parser("contexts", help="list code contexts (or delete some)")
    contexts.add_argument("--delete", nargs="+", default=[], metavar="ID", help="delete these")
    contexts.set_defaults(command=_contexts)

    exec_ = commands.add_parser("exec", help="run a shell command; exit with its status")
    exec_.add_argument("cmd")
    exec_.add_argument("--session", default=None)
    exec_.add_argument("--cwd", default=None)
    exec_.set_defaults(command=_exec)

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
