"""The sandbox's tools: each one does what one REST route does, through the same code, and
asks the authorizer for exactly the right that route asks for (`Tool.rights`)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.validation import CommandRequest

from .content import IMAGE_FORMATS, answer, json_result, result, run_result

if TYPE_CHECKING:
    from jupyter_interp_ext.handlers.mcp import McpHandler
    from jupyter_interp_ext.interpreter.contexts import CodeContext
    from jupyter_interp_ext.interpreter.executions import Execution

# The label that marks the context `run_code` uses for a language when it names none.
DEFAULT_CONTEXT_LABEL = "mcp"


@dataclass
class Call:
    """One `tools/call`: who asks (the request's handler: its user, rights and managers),
    with what arguments, how to report progress, and whether it may become a task."""

    handler: McpHandler
    arguments: dict[str, Any]
    progress: Callable[[float, str], Awaitable[None]]
    # Seconds a run is waited for before it becomes a task (None: the client takes none).
    task_wait: float | None
    make_task: Callable[[Execution], dict[str, Any]]

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.arguments.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise validation_error(name, f"'{name}' must be a non-empty string")
        return value

    def seconds_as_ms(self, name: str) -> int | None:
        value = self.arguments.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise validation_error(name, f"'{name}' must be a number of seconds, 0 or more")
        return round(value * 1000)


@dataclass(frozen=True)
class Tool:
    """A tool, its input schema, the REST route it mirrors and the rights that route asks."""

    name: str
    description: str
    properties: dict[str, Any]
    run: Callable[[Call], Awaitable[dict[str, Any]]]
    route: str  # "METHOD path" of the REST route it does the work of
    rights: tuple[tuple[str, str], ...]
    required: tuple[str, ...] = ()
    read_only: bool = False
    annotations: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The tool as `tools/list` shows it."""
        schema: dict[str, Any] = {"type": "object", "properties": self.properties}
        if self.required:
            schema["required"] = list(self.required)
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": schema,
            "annotations": {"readOnlyHint": self.read_only, **self.annotations},
        }


KERNELS_READ = ("read", "kernels")
KERNELS_WRITE = ("write", "kernels")
KERNELS_EXECUTE = ("execute", "kernels")
TERMINALS_EXECUTE = ("execute", "terminals")
CONTENTS_READ = ("read", "contents")
CONTENTS_WRITE = ("write", "contents")

_STRING = {"type": "string"}
_ENV = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Environment variables for this call only.",
}
_CONTEXT_ID = {"type": "string", "description": "A code context's id (from create_context)."}
_PATH = {
    "type": "string",
    "description": "A path inside the sandbox's roots; a relative one starts in the session's "
    "current directory.",
}
_SESSION = {
    "type": "string",
    "description": "The shell session to run in (its directory and exported variables); "
    "'default' when omitted.",
}


# Code contexts and runs.


async def run_code(call: Call) -> dict[str, Any]:
    """Run code in a context (the language's own context when none is named); output
    streams as progress, and a run still going after the client's wait becomes a task."""
    handler = call.handler
    code = call.text("code", required=True) or ""
    context_id = call.text("context_id")
    language = call.text("language")
    if context_id is not None:
        context = handler.contexts.get(context_id)
    else:
        context = await _default_context(call, language or "python")
    body: dict[str, Any] = {"env_vars": call.arguments.get("env") or {}}
    if language is not None:
        body["language"] = language
    timeout_ms = call.seconds_as_ms("timeout")
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    execution = await handler.start_run(context, code, body)
    follower = execution.follow()
    events: list[dict[str, Any]] = []

    async def read() -> None:
        async for entry in follower:
            event = orjson.loads(entry.body)
            events.append(event)
            if event["type"] in ("stdout", "stderr"):
                await call.progress(entry.id, event["text"])
            if entry.final:  # (the follower would only wait to be told it is over)
                return

    try:
        # A cancel scope on this task (asyncio.wait_for would start another for the read and
        # cost a tenth of what the endpoint adds to a run).
        with anyio.move_on_after(call.task_wait):  # (None: no end)
            await read()
        if not execution.ended():  # the wait is over: the run goes on as a task
            return call.make_task(execution)
    finally:
        await follower.aclose()
    return run_result(execution.id, context.id, events)


async def _default_context(call: Call, language: str) -> CodeContext:
    """The context `run_code` uses for `language` when none is named (made on first use,
    which takes creating a context's right too)."""
    handler = call.handler
    name = (await handler.contexts.resolve(language)).name
    for context in handler.contexts.list():
        if context.labels.get(DEFAULT_CONTEXT_LABEL) == "default" and context.language == name:
            return context
    handler.require(KERNELS_WRITE)
    return await handler.create_context(
        {"language": language, "labels": {DEFAULT_CONTEXT_LABEL: "default"}}
    )


async def create_context(call: Call) -> dict[str, Any]:
    body = {
        "language": call.text("language"),
        "cwd": call.text("cwd"),
        "env_vars": call.arguments.get("env") or {},
        "sessionId": call.text("session_id"),
    }
    context = await call.handler.create_context({k: v for k, v in body.items() if v is not None})
    return json_result(context.to_json())


async def list_contexts(call: Call) -> dict[str, Any]:
    contexts = [c.to_json() for c in call.handler.contexts.list()]
    return json_result({"contexts": contexts})


async def delete_context(call: Call) -> dict[str, Any]:
    context_id = call.text("context_id", required=True)
    assert context_id is not None
    await call.handler.contexts.delete(context_id)
    return json_result({"contextId": context_id, "deleted": True})


async def interrupt_context(call: Call) -> dict[str, Any]:
    context = call.handler.contexts.get(call.text("context_id", required=True) or "")
    await call.handler.contexts.interrupt_on_request(context)
    return json_result({"contextId": context.id, "interrupted": True})


async def restart_context(call: Call) -> dict[str, Any]:
    context = call.handler.contexts.get(call.text("context_id", required=True) or "")
    await call.handler.contexts.restart_on_request(context)
    return json_result({"contextId": context.id, "restarted": True})


# Commands and processes.


def _command_body(call: Call) -> dict[str, Any]:
    """`POST /api/execute`'s body from the tool's arguments."""
    body: dict[str, Any] = {
        "command": call.text("command", required=True),
        "cwd": call.text("cwd"),
        "env": call.arguments.get("env") or {},
        "timeoutMs": call.seconds_as_ms("timeout"),
        "sessionId": call.text("session_id"),
        "processId": call.text("process_id"),
    }
    return {k: v for k, v in body.items() if v is not None}


async def run_command(call: Call) -> dict[str, Any]:
    """A shell command run to its end; a non-zero exit is a tool error with its output."""
    body = _command_body(call)
    ran = await call.handler.run_to_end(body, CommandRequest.parse(body))
    text = f"exit code {ran['exitCode']}"
    if ran.get("timedOut"):
        text += " (killed at its time limit)"
    if ran["stdout"]:
        text += f"\n{ran['stdout']}"
    if ran["stderr"]:
        text += f"\n[stderr]\n{ran['stderr']}"
    return result(text, ran, is_error=ran["exitCode"] != 0)


async def start_process(call: Call) -> dict[str, Any]:
    body = _command_body(call)
    proc = await call.handler.launch(body, CommandRequest.parse(body))
    return json_result({"processId": proc.id, "pid": proc.pid, "command": proc.command})


async def list_processes(call: Call) -> dict[str, Any]:
    procs = call.handler.processes.list(call.text("status"))
    return json_result({"processes": [p.to_json(with_end=False) for p in procs]})


async def process_logs(call: Call) -> dict[str, Any]:
    proc = call.handler.processes.get(call.text("process_id", required=True) or "")
    return json_result(
        {**proc.to_json(), "stdout": proc.stdout.text(), "stderr": proc.stderr.text()}
    )


async def kill_process(call: Call) -> dict[str, Any]:
    process_id = call.text("process_id", required=True) or ""
    killed = await call.handler.processes.kill(process_id)
    return json_result({"processId": process_id, "killedPids": killed})


async def port_url(call: Call) -> dict[str, Any]:
    """The URL at which a port served inside the sandbox is reachable (with the server's
    authentication), when the server has jupyter-server-proxy."""
    port = call.arguments.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise validation_error("port", "'port' must be a whole number from 1 to 65535")
    path = call.handler.proxied(port)
    if path is None:
        raise ProtocolError(
            "PREVIEWS_UNAVAILABLE",
            "Ports are not exposed: this server has no jupyter-server-proxy",
            status=501,
        )
    request = call.handler.request
    return json_result({"port": port, "url": f"{request.protocol}://{request.host}{path}"})


# Files.


async def read_file(call: Call) -> dict[str, Any]:
    """A file's content: text as text, an image as an image block, other bytes as base64."""
    handler = call.handler
    real, shown = handler.path({"path": call.text("path", required=True)})
    read = await handler.files.read(real, shown, call.text("encoding"))
    mime = read.get("mimeType")
    if read["encoding"] == "base64" and mime in IMAGE_FORMATS.values():
        return answer([{"type": "image", "data": read["content"], "mimeType": mime}], read)
    return result(read["content"], read)


async def write_file(call: Call) -> dict[str, Any]:
    handler = call.handler
    content = call.arguments.get("content")
    if not isinstance(content, str):
        raise validation_error("content", "'content' must be a string")
    encoding = call.text("encoding")
    if encoding == "base64":
        base64.b64decode(content, validate=True)  # refused before anything is written
    real, shown = handler.path({"path": call.text("path", required=True)})
    await handler.files.write(real, shown, content, encoding)
    return json_result({"path": shown, "written": True})


async def list_files(call: Call) -> dict[str, Any]:
    handler = call.handler
    real, shown = handler.path({"path": call.text("path") or "."})
    files, truncated = await handler.files.list(
        real,
        shown,
        bool(call.arguments.get("recursive")),
        bool(call.arguments.get("include_hidden")),
    )
    return json_result({"path": shown, "files": files, "truncated": truncated})


async def remove_file(call: Call) -> dict[str, Any]:
    handler = call.handler
    real, shown = handler.path({"path": call.text("path", required=True)})
    await handler.files.delete(real, shown)
    return json_result({"path": shown, "removed": True})


TOOLS: tuple[Tool, ...] = (
    Tool(
        "run_code",
        "Run code in a Jupyter kernel and return its output: stdout, stderr, results (images "
        "as image blocks, charts and tables as data) and the error if it raised. Variables "
        "persist between calls in the same context. Without context_id, the language's own "
        "context is used (made on first use).",
        {
            "code": {"type": "string", "description": "The code to run."},
            "language": {
                "type": "string",
                "description": "python (default), javascript, typescript, bash, or an "
                "installed kernel's name.",
            },
            "context_id": _CONTEXT_ID,
            "timeout": {
                "type": "number",
                "description": "Seconds the run may take (0: no limit); the server's "
                "default when omitted.",
            },
            "env": _ENV,
        },
        run_code,
        "POST api/execute/code",
        (KERNELS_EXECUTE,),
        required=("code",),
    ),
    Tool(
        "create_context",
        "Start a new code context (a kernel) with its own variables, optionally in a "
        "directory and with environment variables.",
        {
            "language": {"type": "string", "description": "python (default), javascript, …"},
            "cwd": _PATH,
            "env": _ENV,
            "session_id": _SESSION,
        },
        create_context,
        "POST api/contexts",
        (KERNELS_WRITE,),
    ),
    Tool(
        "list_contexts",
        "List the code contexts: ids, languages, directories and their notebooks.",
        {},
        list_contexts,
        "GET api/contexts",
        (KERNELS_READ,),
        read_only=True,
    ),
    Tool(
        "delete_context",
        "Delete a code context and shut its kernel down.",
        {"context_id": _CONTEXT_ID},
        delete_context,
        "DELETE api/contexts/{id}",
        (KERNELS_WRITE,),
        required=("context_id",),
        annotations={"destructiveHint": True},
    ),
    Tool(
        "interrupt_context",
        "Interrupt what a context is running; its variables are kept.",
        {"context_id": _CONTEXT_ID},
        interrupt_context,
        "POST api/contexts/{id}/interrupt",
        (KERNELS_EXECUTE,),
        required=("context_id",),
    ),
    Tool(
        "restart_context",
        "Restart a context's kernel: its variables are lost, its directory and environment kept.",
        {"context_id": _CONTEXT_ID},
        restart_context,
        "POST api/contexts/{id}/restart",
        (KERNELS_EXECUTE,),
        required=("context_id",),
        annotations={"destructiveHint": True},
    ),
    Tool(
        "run_command",
        "Run a shell command to its end and return its exit code, stdout and stderr.",
        {
            "command": {"type": "string", "description": "A bash command line."},
            "cwd": _PATH,
            "env": _ENV,
            "timeout": {"type": "number", "description": "Seconds before it is killed."},
            "session_id": _SESSION,
        },
        run_command,
        "POST api/execute",
        (TERMINALS_EXECUTE,),
        required=("command",),
    ),
    Tool(
        "start_process",
        "Start a command in the background (a server, a long job); read its output with "
        "process_logs.",
        {
            "command": {"type": "string", "description": "A bash command line."},
            "cwd": _PATH,
            "env": _ENV,
            "timeout": {"type": "number", "description": "Seconds before it is killed."},
            "session_id": _SESSION,
            "process_id": {"type": "string", "description": "An id to give it."},
        },
        start_process,
        "POST api/process/start",
        (TERMINALS_EXECUTE,),
        required=("command",),
    ),
    Tool(
        "list_processes",
        "List background processes and their states.",
        {"status": {"type": "string", "description": "Only those in this state (running, …)."}},
        list_processes,
        "GET api/process/list",
        (TERMINALS_EXECUTE,),
        read_only=True,
    ),
    Tool(
        "process_logs",
        "A background process's state and the output it has written so far.",
        {"process_id": _STRING},
        process_logs,
        "GET api/process/{id}/logs",
        (TERMINALS_EXECUTE,),
        required=("process_id",),
        read_only=True,
    ),
    Tool(
        "kill_process",
        "Kill a background process and what it started.",
        {"process_id": _STRING},
        kill_process,
        "DELETE api/process/{id}",
        (TERMINALS_EXECUTE,),
        required=("process_id",),
        annotations={"destructiveHint": True},
    ),
    Tool(
        "read_file",
        "Read a file: text as text, a PNG or JPEG as an image, other bytes as base64.",
        {
            "path": _PATH,
            "encoding": {"type": "string", "enum": ["utf-8", "base64"]},
        },
        read_file,
        "POST api/read",
        (CONTENTS_READ,),
        required=("path",),
        read_only=True,
    ),
    Tool(
        "write_file",
        "Write a file whole (its folders are made); content is text, or base64 with "
        "encoding 'base64'.",
        {
            "path": _PATH,
            "content": _STRING,
            "encoding": {"type": "string", "enum": ["utf-8", "base64"]},
        },
        write_file,
        "POST api/write",
        (CONTENTS_WRITE,),
        required=("path", "content"),
    ),
    Tool(
        "list_files",
        "List a folder's entries (recursively if asked).",
        {
            "path": _PATH,
            "recursive": {"type": "boolean"},
            "include_hidden": {"type": "boolean"},
        },
        list_files,
        "POST api/list-files",
        (CONTENTS_READ,),
        read_only=True,
    ),
    Tool(
        "remove_file",
        "Delete a file.",
        {"path": _PATH},
        remove_file,
        "POST api/delete",
        (CONTENTS_WRITE,),
        required=("path",),
        annotations={"destructiveHint": True},
    ),
)

PORT_TOOL = Tool(
    "port_url",
    "The URL at which a port a process serves inside the sandbox can be opened (behind the "
    "server's authentication).",
    {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
    port_url,
    "POST api/port-watch",
    (TERMINALS_EXECUTE,),
    required=("port",),
    read_only=True,
)


def tools_for(previews: bool) -> dict[str, Tool]:
    """The tools this server offers by name (`port_url` only where ports are exposed)."""
    offered = TOOLS + ((PORT_TOOL,) if previews else ())
    return {tool.name: tool for tool in offered}
