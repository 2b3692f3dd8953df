"""What the client returns: executions and their results, command results, processes, files.

`Result` and `Execution` render themselves in a notebook (`_repr_mimebundle_`) as Jupyter would
render the kernel's own output: images, HTML, tables, errors.
"""

from __future__ import annotations

import ast
import html
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import IO, Any

from jupyter_interp_ext.protocol.mimes import FORMATS, TABLE_MIME

from .charts import Chart, chart_from_dict
from .errors import CommandExitException, TimeoutException


@dataclass
class OutputMessage:
    """One piece of stdout or stderr as the kernel or command produced it, as E2B gives it:
    its `line`, when it was produced (`timestamp`, nanoseconds since the epoch) and whether
    it is stderr (`error`)."""

    line: str
    timestamp: int = 0
    error: bool = False

    def __str__(self) -> str:
        return self.line


def nanoseconds(stamp: Any) -> int:
    """An event's timestamp (milliseconds since the epoch, or an ISO date) in nanoseconds."""
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return round(stamp * 1_000_000)
    if isinstance(stamp, str):
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return 0
        return round(when.timestamp() * 1_000_000) * 1000
    return 0


@dataclass
class Result:
    """One output of a run (a displayed object or the cell's value) in every format it has."""

    text: str | None = None
    html: str | None = None
    markdown: str | None = None
    svg: str | None = None
    png: str | None = None  # base64
    jpeg: str | None = None  # base64
    pdf: str | None = None  # base64
    latex: str | None = None
    json: Any = None
    javascript: str | None = None
    chart: Chart | None = None  # what a matplotlib figure plotted (typed, as E2B's)
    data: dict[str, list[Any]] | None = None  # a DataFrame's columns, as E2B gives them
    is_main_result: bool = False
    extra: dict[str, Any] | None = None  # every other MIME type, by its name (E2B's extra)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Result:
        """The result a `result` event carries. As E2B's client does, a string value's `text`
        is the string itself (the wire keeps Jupyter's repr, quotes included), and a
        DataFrame's rows become `data` ({column: [values]})."""
        values = {name: event.get(name) for name in FORMATS}
        is_main = bool(event.get("isMainResult"))
        if is_main and isinstance(values["text"], str):
            values["text"] = _unquoted(values["text"])
        extra = event.get("data") or None
        values["chart"] = chart_from_dict(values["chart"])
        return cls(
            **values,
            data=_columns(extra.get(TABLE_MIME)) if extra else None,
            is_main_result=is_main,
            extra=extra,
            metadata=event.get("metadata") or {},
        )

    def __getitem__(self, name: str) -> Any:
        """A format by its name (`result["png"]`), as E2B's `Result` allows."""
        return getattr(self, name)

    def formats(self) -> list[str]:
        """The formats this result has, E2B's names first, then its extra MIME types."""
        names = [name for name in FORMATS if getattr(self, name) is not None]
        return names + (["data"] if self.data else []) + list(self.extra or {})

    def mime_bundle(self) -> dict[str, Any]:
        """Every format of the result, by MIME type, as Jupyter displays them."""
        bundle = {FORMATS[name]: getattr(self, name) for name in FORMATS}
        if self.chart is not None:
            bundle[FORMATS["chart"]] = self.chart.to_dict()
        if self.is_main_result and self.text is not None and bundle.get("text/plain"):
            bundle["text/plain"] = self.text
        bundle.update(self.extra or {})
        return {mime: value for mime, value in bundle.items() if value is not None}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.mime_bundle()

    def __str__(self) -> str:
        return self.text or ""


def _unquoted(text: str) -> str:
    """The string a Python or JavaScript string literal spells (`'a'` → `a`); other text as
    it is."""
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, str) else text


def _columns(table: Any) -> dict[str, list[Any]] | None:
    """A Table Schema data resource as E2B gives a DataFrame's `data`: its columns' values
    ({column: [values]}, what `to_dict(orient="list")` makes), the index left out."""
    if not isinstance(table, dict) or not isinstance(table.get("data"), list):
        return None
    schema = table.get("schema") or {}
    index = set(schema.get("primaryKey") or [])
    fields = [f.get("name") for f in schema.get("fields", []) if isinstance(f, dict)]
    rows = [row for row in table["data"] if isinstance(row, dict)]
    names = [n for n in fields if isinstance(n, str) and n not in index]
    return {name: [row.get(name) for row in rows] for name in names}


@dataclass
class ExecutionError:
    """The exception a run ended with."""

    name: str
    value: str
    traceback: str

    def to_json(self) -> str:
        """The error as JSON (`name`, `value`, `traceback`), as E2B's."""
        return json.dumps({"name": self.name, "value": self.value, "traceback": self.traceback})

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ExecutionError:
        """The error an `error` event carries."""
        return cls(
            event.get("ename", ""), event.get("evalue", ""), "\n".join(event.get("traceback", []))
        )


@dataclass
class Logs:
    """A run's stdout and stderr, one list entry per output message."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The logs as JSON (`stdout`, `stderr`), as E2B's."""
        return json.dumps({"stdout": self.stdout, "stderr": self.stderr})


@dataclass
class Completed:
    """The last item of a streamed run that ended without an error."""

    execution_count: int | None


@dataclass
class Execution:
    """A finished run: its results, its output as streamed, and its error if it raised one."""

    results: list[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: ExecutionError | None = None
    execution_count: int | None = None

    @property
    def text(self) -> str | None:
        """The text of the main result (the cell's value), if it had one."""
        main = next((r for r in self.results if r.is_main_result), None)
        return main.text if main else None

    def to_json(self) -> str:
        """The execution as JSON, in E2B's shape: `results` (each result's formats, a
        chart as its data), and `logs` and `error` as JSON texts of their own."""
        results = [
            {
                **{name: result[name] for name in result.formats() if name in FORMATS},
                **({"chart": result.chart.to_dict()} if result.chart else {}),
                **({"data": result.data} if result.data else {}),
                "text": result.text,
            }
            for result in self.results
        ]
        error = self.error.to_json() if self.error else None
        return json.dumps({"results": results, "logs": self.logs.to_json(), "error": error})

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Output, results and error in order, as a notebook cell shows them."""
        parts = [f"<pre>{html.escape(text)}</pre>" for text in ("".join(self.logs.stdout),) if text]
        if self.logs.stderr:
            stderr = html.escape("".join(self.logs.stderr))
            parts.append(f'<pre style="background:#fdd">{stderr}</pre>')
        parts.extend(_result_html(result) for result in self.results)
        if self.error is not None:
            parts.append(f'<pre style="color:#b00">{html.escape(self.error.traceback)}</pre>')
        plain = "".join(self.logs.stdout) + "".join(r.text or "" for r in self.results)
        if self.error is not None:
            plain += f"{self.error.name}: {self.error.value}"
        return {"text/html": "\n".join(parts), "text/plain": plain}


def _result_html(result: Result) -> str:
    if result.html is not None:
        return result.html
    for name, mime in (("png", "image/png"), ("jpeg", "image/jpeg")):
        if getattr(result, name) is not None:
            return f'<img src="data:{mime};base64,{getattr(result, name)}">'
    if result.svg is not None:
        return result.svg
    return f"<pre>{html.escape(result.text or '')}</pre>"


@dataclass
class CodeContext:
    """A code context: a kernel on the server, its language and directory."""

    id: str
    language: str
    cwd: str
    notebook: str | None = None  # its notebook's path in the server's contents, if it has one
    labels: dict[str, str] = field(default_factory=dict)  # marks of whoever created it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CodeContext:
        """The context an answer describes."""
        return cls(
            data.get("contextId") or data["id"],
            data["language"],
            data.get("cwd", ""),
            data.get("notebook"),
            data.get("labels") or {},
        )


@dataclass
class CommandResult:
    """A command that ran to its end with exit code 0 (others raise CommandExitException)."""

    stdout: str
    stderr: str
    exit_code: int
    duration_ms: float | None = None
    error: str | None = None  # E2B's field: what went wrong besides the exit code, if anything


def checked(result: CommandResult, timed_out: bool) -> CommandResult:
    """The result of a command that succeeded; as E2B's client, a command killed at its time
    limit raises `TimeoutException` and one that exited non-zero `CommandExitException`."""
    if timed_out:
        raise TimeoutException(
            "Command timed out: the 'timeout' option can be used to allow longer "
            f"(stderr: {result.stderr[-500:]!r})"
        )
    if result.exit_code != 0:
        raise CommandExitException(result.stdout, result.stderr, result.exit_code, result.error)
    return result


@dataclass
class ProcessInfo:
    """A background process as the server reports it."""

    id: str
    pid: int | None
    command: str
    status: str = "running"
    exit_code: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    session_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # marks of whoever started it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessInfo:
        """The process an answer describes."""
        return cls(
            id=data.get("processId") or data["id"],
            pid=data.get("pid"),
            command=data.get("command", ""),
            status=data.get("status", "running"),
            exit_code=data.get("exitCode"),
            start_time=data.get("startTime"),
            end_time=data.get("endTime"),
            session_id=data.get("sessionId"),
            labels=data.get("labels") or {},
        )


@dataclass
class ExecutionInfo:
    """A code run the server keeps (beyond E2B): its state, and how many events it made so
    far (their ids run from 1; `first_event_id` is the oldest still kept)."""

    execution_id: str
    context_id: str
    status: str  # running, completed, error or interrupted
    events: int
    first_event_id: int = 1
    readers: int = 0
    detached: bool = False
    started_at: str | None = None
    ended_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionInfo:
        """The run an answer describes."""
        return cls(
            data["executionId"],
            data["contextId"],
            data["status"],
            data["events"],
            data.get("firstEventId", 1),
            data.get("readers", 0),
            bool(data.get("detached")),
            data.get("startedAt"),
            data.get("endedAt"),
        )


@dataclass
class SessionInfo:
    """An execution session as the server reports it."""

    id: str
    cwd: str | None = None
    pid: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # marks of whoever created it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionInfo:
        """The session an answer describes."""
        return cls(data["id"], data.get("cwd"), data.get("pid"), data.get("labels") or {})


class FileType(Enum):
    """What a filesystem entry is (E2B's names)."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


# The server's entry types as E2B's (anything else, a FIFO or a socket, has none).
_FILE_TYPES = {"file": FileType.FILE, "directory": FileType.DIR, "symlink": FileType.SYMLINK}


@dataclass
class WriteInfo:
    """A file written, as E2B describes it."""

    name: str
    type: FileType | None
    path: str


@dataclass
class EntryInfo(WriteInfo):
    """A file or directory as E2B describes it (owner and group are not reported here, so
    they are empty), and its path relative to the folder listed (ours)."""

    size: int
    mode: int  # permission bits
    permissions: str  # rwxr-xr-x
    owner: str
    group: str
    modified_time: datetime
    symlink_target: str | None = None
    relative_path: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntryInfo:
        """The entry a listing describes."""
        permissions = str(data.get("mode", ""))
        bits = sum(1 << (8 - i) for i, flag in enumerate(permissions[:9]) if flag != "-")
        return cls(
            name=data["name"],
            type=_FILE_TYPES.get(data["type"]),
            path=data["absolutePath"],
            size=data["size"],
            mode=bits,
            permissions=permissions,
            owner="",
            group="",
            modified_time=datetime.fromisoformat(data["modifiedAt"].replace("Z", "+00:00")),
            relative_path=data["relativePath"],
        )


@dataclass
class WriteEntry:
    """One file for `files.write_files` (E2B's name)."""

    path: str
    data: str | bytes | IO[Any]


class FilesystemEventType(Enum):
    """What happened to a watched entry (E2B's names)."""

    CHMOD = "chmod"
    CREATE = "create"
    REMOVE = "remove"
    RENAME = "rename"
    WRITE = "write"


@dataclass
class FilesystemEvent:
    """A change in a watched folder: the entry's path relative to that folder (`name`) and
    what happened (`type`). The server's watcher reports a rename as `REMOVE` of the old name
    and `CREATE` of the new one, and a change of permissions as `WRITE`."""

    name: str
    type: FilesystemEventType


StreamItem = OutputMessage | Result | ExecutionError | Completed


@dataclass
class RunCallbacks:
    """The callbacks of one run, by what they are called with."""

    on_stdout: Callable[[OutputMessage], Any] | None = None
    on_stderr: Callable[[OutputMessage], Any] | None = None
    on_result: Callable[[Result], Any] | None = None
    on_error: Callable[[ExecutionError], Any] | None = None

    def for_item(self, item: StreamItem) -> Callable[[Any], Any] | None:
        """The callback for one streamed item (None if it has none)."""
        if isinstance(item, OutputMessage):
            return self.on_stderr if item.error else self.on_stdout
        if isinstance(item, Result):
            return self.on_result
        if isinstance(item, ExecutionError):
            return self.on_error
        return None


async def deliver(callback: Callable[[Any], Any] | None, item: Any) -> None:
    """Call an async client's callback with `item`, awaiting it if it is a coroutine."""
    if callback is not None and inspect.isawaitable(outcome := callback(item)):
        await outcome


def run_item(event: dict[str, Any], execution: Execution) -> StreamItem | None:
    """The typed item for one event of a code run, recorded in `execution` (None: an event
    the client does not surface, such as `clear_output`)."""
    kind = event.get("type")
    if kind in ("stdout", "stderr"):
        error = kind == "stderr"
        message = OutputMessage(event.get("text", ""), nanoseconds(event.get("timestamp")), error)
        getattr(execution.logs, kind).append(message.line)
        return message
    if kind == "result":
        result = Result.from_event(event)
        execution.results.append(result)
        return result
    if kind == "error":
        if event.get("reason") == "timeout":  # the server stopped it, as E2B's client would
            raise TimeoutException(
                f"Execution timed out ({event.get('evalue', '')}): the 'timeout' option can be "
                "used to allow longer"
            )
        execution.error = ExecutionError.from_event(event)
        return execution.error
    if kind == "execution_complete":
        execution.execution_count = event.get("execution_count")
        return Completed(execution.execution_count)
    if kind == "events_lost":  # a reader came back after the server stopped keeping some
        notice = OutputMessage(
            f"[{event.get('message', '')}]\n", nanoseconds(event.get("timestamp")), True
        )
        execution.logs.stderr.append(notice.line)
        return notice
    return None
