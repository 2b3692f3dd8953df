"""The OpenAPI 3.1 description of every route, served at `{prefix}/api/openapi.json`.

Built from a few helpers so each route reads as one line of intent; tests validate real
responses against it, which keeps it true.
"""

from __future__ import annotations

from typing import Any

from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.files.backups import COMPRESSIONS
from jupyter_interp_ext.files.watching import EVENT_TYPES
from jupyter_interp_ext.protocol.validation import (
    BASE64_PATTERN,
    ENV_NAME_PATTERN,
    ID_CHARS,
    ID_PATTERN,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_PATH_CHARS,
    NO_NUL_PATTERN,
    NOT_BLANK_PATTERN,
)
from jupyter_interp_ext.shells.sessions import NO_SESSION

JSON = "application/json"
SSE = "text/event-stream"

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
NUMBER = {"type": "number"}
# Request fields: their patterns and limits are the validators' own (validation.py).
TEXT = {"type": "string", "pattern": NO_NUL_PATTERN}
NOT_BLANK = {"type": "string", "pattern": NOT_BLANK_PATTERN}
ENV_MAP = {
    "type": "object",
    "additionalProperties": {"type": ["string", "null"], "pattern": NO_NUL_PATTERN},
    "propertyNames": {"pattern": ENV_NAME_PATTERN},
}
PATH = {**NOT_BLANK, "minLength": 1, "maxLength": MAX_PATH_CHARS}
MILLISECONDS = {"type": "number", "exclusiveMinimum": 0}
LABELS = {  # the creator's marks on a context, session or process (the Python client's sandbox)
    "type": "object",
    "maxProperties": MAX_LABELS,
    "propertyNames": {"pattern": ID_PATTERN},
    "additionalProperties": {
        "type": "string",
        "maxLength": MAX_LABEL_CHARS,
        "pattern": NO_NUL_PATTERN,
    },
}
EVENT = {  # one SSE event: `data:` holds one JSON object with its `type`
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": JSON,
            "contentSchema": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": STRING},
            },
        },
        "event": STRING,
    },
}
TIMESTAMP = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    """A reference to a shared schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    """An object schema with its properties (and the required ones)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def nullable_optionals(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body whose optional fields may also be null (read as absent, like the
    official client's `undefined`)."""
    required = set(schema.get("required", []))
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        if "properties" in prop:
            prop = nullable_optionals(prop)
        properties[name] = prop if name in required else {"anyOf": [prop, {"type": "null"}]}
    return {**schema, "properties": properties}


def success(optional: dict[str, Any] | None = None, **properties: Any) -> dict[str, Any]:
    """A success body: `success` and `timestamp`, plus the route's own (required) fields and
    its `optional` ones."""
    return obj(
        ["success", "timestamp", *properties],
        success=BOOL,
        timestamp=TIMESTAMP,
        **properties,
        **(optional or {}),
    )


SCHEMAS: dict[str, Any] = {
    "Error": obj(
        ["code", "message", "context", "httpStatus", "timestamp"],
        code=STRING,
        message=STRING,
        error=STRING,
        context={"type": "object"},
        details={"type": "object"},
        httpStatus=INT,
        timestamp=TIMESTAMP,
    ),
    "Context": obj(
        ["id", "language", "cwd"],
        id=STRING,
        language=STRING,
        cwd=STRING,
        notebook=STRING,
        labels=LABELS,
    ),
    "Process": obj(
        ["id", "pid", "command", "status", "startTime"],
        id=STRING,
        pid=INT,
        command=STRING,
        status={"enum": ["running", "completed", "failed", "killed", "error"]},
        startTime=TIMESTAMP,
        endTime={"type": ["string", "null"]},
        exitCode={"type": ["integer", "null"]},
        sessionId={"type": ["string", "null"]},
        labels=LABELS,
    ),
    "FileEntry": obj(
        [
            "name",
            "absolutePath",
            "relativePath",
            "type",
            "size",
            "modifiedAt",
            "mode",
            "permissions",
        ],
        name=STRING,
        absolutePath=STRING,
        relativePath=STRING,
        type={"enum": ["file", "directory", "symlink", "other"]},
        size=INT,
        modifiedAt=STRING,
        mode=STRING,
        permissions=obj(
            ["readable", "writable", "executable"], readable=BOOL, writable=BOOL, executable=BOOL
        ),
    ),
    "SessionId": {
        "type": "string",
        "pattern": f"^({ID_CHARS})?$",
        "description": "Execution session; `default` when absent, "
        "`__DISABLE_SESSION__` for none. Also `X-Session-Id` or `?sessionId=`.",
    },
}

SCHEMAS["Execution"] = success(
    {"endedAt": {"type": ["string", "null"]}},
    executionId=STRING,
    contextId=STRING,
    status={"enum": ["running", "completed", "error", "interrupted"]},
    events=INT,
    firstEventId=INT,
    readers=INT,
    detached=BOOL,
    startedAt=TIMESTAMP,
)
PATH_BODY = obj(["path"], path=PATH, sessionId=ref("SessionId"))
EVENT_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}
RESUME = [
    {"name": "Last-Event-ID", "in": "header", "schema": EVENT_ID},
    {"name": "after", "in": "query", "schema": EVENT_ID},
]
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "A retried POST with the same key streams the first one's run",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
}


def operation(
    summary: str,
    tag: str,
    response: dict[str, Any] | None,
    body: dict[str, Any] | None = None,
    stream: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation: its JSON (or SSE) success answer and the shared error body."""
    responses: dict[str, Any] = {
        "default": {"description": "Error", "content": {JSON: {"schema": ref("Error")}}}
    }
    if stream is not None:
        responses["200"] = {"description": stream, "content": {SSE: {"schema": EVENT}}}
    else:
        responses["200"] = {"description": "Success", "content": {JSON: {"schema": response}}}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        required = bool(body.get("required"))  # an all-optional body may be left out
        op["requestBody"] = {
            "required": required,
            "content": {JSON: {"schema": nullable_optionals(body)}},
        }
    if parameters:
        op["parameters"] = parameters
    return op


def path_param(name: str) -> dict[str, Any]:
    """A required string path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": STRING}


COMMAND_BODY = obj(
    ["command"],
    command=NOT_BLANK,
    sessionId=ref("SessionId"),
    timeoutMs=MILLISECONDS,
    env=ENV_MAP,
    cwd=TEXT,
    origin={"enum": ["user", "internal"]},
    background=BOOL,
    processId={"type": "string", "pattern": ID_PATTERN},
)
GLOBS = {"type": "array", "items": TEXT}
WATCH_BODY = obj(
    ["path"],
    path=PATH,
    recursive=BOOL,
    events={"type": "array", "items": {"enum": list(EVENT_TYPES)}},
    include=GLOBS,
    exclude=GLOBS,
    sessionId=ref("SessionId"),
)
CHECKED = success(status={"enum": ["unchanged", "changed", "resync"]}, version=STRING)
CHECKED["properties"]["reason"] = STRING
STARTED = success(processId=STRING, pid=INT, command=STRING)
MOVED = success(path=STRING, newPath=STRING)


def _service() -> dict[str, Any]:
    """handlers/service.py: liveness, version, this description."""
    o = operation
    return {
        "/api/ping": {"get": o("Liveness", "misc", success(status=STRING, message=STRING))},
        "/api/version": {"get": o("Package version", "misc", success(version=STRING))},
        "/api/openapi.json": {"get": o("This description", "misc", {"type": "object"})},
    }


def _interpreter() -> dict[str, Any]:
    """handlers/interpreter.py: contexts and code runs."""
    o = operation
    return {
        "/api/interpreter/health": {
            "get": o(
                "Interpreter health",
                "interpreter",
                success(
                    status=STRING,
                    languages={"type": "array", "items": STRING},
                    contexts=INT,
                    pool={"type": "object", "additionalProperties": INT},
                ),
            )
        },
        "/api/contexts": {
            "get": o(
                "List contexts",
                "interpreter",
                success(contexts={"type": "array", "items": ref("Context")}),
            ),
            "post": o(
                "Create a context (a kernel)",
                "interpreter",
                success({"notebook": STRING}, contextId=STRING, language=STRING, cwd=STRING),
                obj(
                    language=TEXT,
                    cwd=TEXT,
                    env_vars=ENV_MAP,
                    sessionId=ref("SessionId"),
                    labels=LABELS,
                ),
            ),
        },
        "/api/contexts/{context_id}": {
            "delete": o(
                "Delete a context",
                "interpreter",
                success(contextId=STRING),
                parameters=[path_param("context_id")],
            )
        },
        "/api/contexts/{context_id}/restart": {
            "post": o(
                "Restart a context's kernel: fresh state, same directory and environment",
                "interpreter",
                success(contextId=STRING),
                parameters=[path_param("context_id")],
            )
        },
        "/api/contexts/{context_id}/interrupt": {
            "post": o(
                "Interrupt what a context runs, keeping its state",
                "interpreter",
                success(contextId=STRING),
                parameters=[path_param("context_id")],
            )
        },
        "/api/execute/code": {
            "post": o(
                "Run code in a context",
                "interpreter",
                None,
                obj(
                    ["context_id", "code"],
                    context_id=NOT_BLANK,
                    code=TEXT,
                    language=TEXT,
                    timeout_ms={"type": "number", "minimum": 0},  # 0: no limit
                    env_vars=ENV_MAP,
                    detach=BOOL,
                ),
                stream="stdout/stderr/result events, then execution_complete or error; each "
                "with an id, the run's in X-Execution-Id",
                parameters=[IDEMPOTENCY_KEY],
            )
        },
        "/api/execute/code/{execution_id}": {
            "get": o(
                "A run's state",
                "interpreter",
                ref("Execution"),
                parameters=[path_param("execution_id")],
            ),
            "delete": o(
                "Stop a run (its stream ends with ExecutionCancelled)",
                "interpreter",
                ref("Execution"),
                parameters=[path_param("execution_id")],
            ),
        },
        "/api/execute/code/{execution_id}/stream": {
            "get": o(
                "Follow a run again: its events after Last-Event-ID, then live",
                "interpreter",
                None,
                parameters=[path_param("execution_id"), *RESUME],
                stream="events_lost if some were no longer kept, the run's events after the "
                "id, ending with its terminal one",
            )
        },
    }


def _sessions() -> dict[str, Any]:
    """handlers/sessions.py: execution sessions."""
    o = operation
    return {
        "/api/session/create": {
            "post": o(
                "Create an execution session",
                "sessions",
                success(
                    data=obj(["id", "cwd"], id=STRING, cwd=STRING),
                    id=STRING,
                    sessionId=STRING,
                    containerPlacementId={"type": "null"},
                ),
                obj(
                    id={"type": "string", "pattern": ID_PATTERN, "not": {"const": NO_SESSION}},
                    env=ENV_MAP,
                    cwd=TEXT,
                    commandTimeoutMs=MILLISECONDS,
                    labels=LABELS,
                ),
            )
        },
        "/api/session/list": {
            "get": o(
                "List sessions",
                "sessions",
                success(
                    data={"type": "array", "items": STRING},
                    sessions={"type": "array", "items": {"type": "object"}},
                ),
            )
        },
        "/api/session/delete": {
            "post": o(
                "Delete a session",
                "sessions",
                success(sessionId=STRING),
                obj(["sessionId"], sessionId=NOT_BLANK),
            )
        },
    }


def _commands() -> dict[str, Any]:
    """handlers/commands.py: shell commands."""
    o = operation
    return {
        "/api/execute": {
            "post": o(
                "Run a shell command to completion",
                "commands",
                {
                    "oneOf": [
                        success(
                            {"timedOut": BOOL},
                            exitCode=INT,
                            stdout=STRING,
                            stderr=STRING,
                            command=STRING,
                            duration=NUMBER,
                            sessionId=STRING,
                        ),
                        STARTED,
                    ]
                },
                COMMAND_BODY,
            )
        },
        "/api/execute/stream": {
            "post": o(
                "Run a shell command, streaming its output",
                "commands",
                None,
                COMMAND_BODY,
                stream="start, stdout/stderr, complete",
            )
        },
        "/api/commands": {
            "get": o(
                "Commands agents usually need that the shells' PATH has",
                "commands",
                success(availableCommands={"type": "array", "items": STRING}, count=INT),
            )
        },
    }


def _processes() -> dict[str, Any]:
    """handlers/processes.py: background processes and ports."""
    o = operation
    return {
        "/api/port-watch": {
            "post": o(
                "Wait until a port answers",
                "processes",
                None,
                obj(
                    ["port"],
                    port={"type": "integer", "minimum": 1, "maximum": 65535},
                    mode={"enum": ["http", "tcp"]},
                    path={"type": "string", "pattern": "^/[^\\x00]*$"},
                    statusMin=INT,
                    statusMax=INT,
                    processId={"type": "string", "pattern": ID_PATTERN},
                    interval=NUMBER,
                ),
                stream="watching, then ready (statusCode, url), process_exited or error",
            )
        },
        "/api/process/start": {
            "post": o(
                "Start a background process",
                "processes",
                STARTED,
                obj(COMMAND_BODY["required"], **COMMAND_BODY["properties"], labels=LABELS),
            )
        },
        "/api/process/list": {
            "get": o(
                "List processes",
                "processes",
                success(processes={"type": "array", "items": ref("Process")}),
                parameters=[{"name": "status", "in": "query", "schema": STRING}],
            )
        },
        "/api/process/kill-all": {
            "delete": o("Kill every running process", "processes", success(cleanedCount=INT))
        },
        "/api/process/{process_id}": {
            "get": o(
                "A process",
                "processes",
                success(process=ref("Process")),
                parameters=[path_param("process_id")],
            ),
            "delete": o(
                "Kill a process and everything it started (setsid escapees included)",
                "processes",
                success(processId=STRING, killedPids={"type": "array", "items": INT}),
                parameters=[path_param("process_id")],
            ),
        },
        "/api/process/{process_id}/logs": {
            "get": o(
                "A process's output so far",
                "processes",
                success(processId=STRING, stdout=STRING, stderr=STRING),
                parameters=[path_param("process_id")],
            )
        },
        "/api/process/{process_id}/stream": {
            "get": o(
                "Follow a process's output",
                "processes",
                None,
                parameters=[path_param("process_id"), *RESUME],
                stream="process_info (unless resuming), output so far, live output, exit; "
                "output and exit with ids",
            )
        },
    }


def _files() -> dict[str, Any]:
    """handlers/files.py: files, watching, git and archives."""
    o = operation
    return {
        "/api/read": {
            "post": o(
                "Read a file",
                "files",
                success(
                    path=STRING,
                    content=STRING,
                    encoding={"enum": ["utf-8", "base64"]},
                    isBinary=BOOL,
                    mimeType=STRING,
                    size=INT,
                ),
                obj(
                    ["path"],
                    path=PATH,
                    sessionId=ref("SessionId"),
                    encoding={"enum": ["utf-8", "utf8", "base64"]},
                ),
            )
        },
        "/api/read/stream": {
            "post": o(
                "Stream a file",
                "files",
                None,
                PATH_BODY,
                stream="metadata, chunk…, complete (or error)",
            )
        },
        "/api/write": {
            "post": o(
                "Write a file (atomically; parents created)",
                "files",
                success(path=STRING),
                {
                    **obj(
                        ["path", "content"],
                        path=PATH,
                        content=STRING,
                        sessionId=ref("SessionId"),
                        encoding={"enum": ["utf-8", "utf8", "base64"]},
                    ),
                    "if": {
                        "required": ["encoding"],
                        "properties": {"encoding": {"const": "base64"}},
                    },
                    "then": {"properties": {"content": {"pattern": BASE64_PATTERN}}},
                },
            )
        },
        "/api/delete": {"post": o("Delete a file", "files", success(path=STRING), PATH_BODY)},
        "/api/rename": {
            "post": o(
                "Rename a file or directory",
                "files",
                MOVED,
                obj(
                    ["oldPath", "newPath"],
                    oldPath=PATH,
                    newPath=PATH,
                    sessionId=ref("SessionId"),
                ),
            )
        },
        "/api/move": {
            "post": o(
                "Move a file or directory",
                "files",
                MOVED,
                obj(
                    ["sourcePath", "destinationPath"],
                    sourcePath=PATH,
                    destinationPath=PATH,
                    sessionId=ref("SessionId"),
                ),
            )
        },
        "/api/watch": {
            "post": o(
                "Watch a directory",
                "files",
                None,
                WATCH_BODY,
                stream="watching, then event per change; stopped if the directory goes away",
            )
        },
        "/api/watch/check": {
            "post": o(
                "Whether a directory changed since a version",
                "files",
                CHECKED,
                {**WATCH_BODY, "properties": {**WATCH_BODY["properties"], "since": TEXT}},
            )
        },
        "/api/git/checkout": {
            "post": o(
                "Clone a repository",
                "files",
                success(repoUrl=STRING, branch={"type": ["string", "null"]}, targetDir=STRING),
                obj(
                    ["repoUrl"],
                    repoUrl=NOT_BLANK,
                    branch={"type": "string", "pattern": "^[^-\\x00][^\\x00]*$"},
                    targetDir=PATH,
                    depth={"type": "integer", "minimum": 1},
                    timeoutMs=MILLISECONDS,
                    sessionId=ref("SessionId"),
                ),
            )
        },
        "/api/backup/create": {
            "post": o(
                "Archive a directory",
                "files",
                success(sizeBytes=INT, archivePath=STRING),
                obj(
                    ["dir", "archivePath"],
                    dir=PATH,
                    archivePath=PATH,
                    gitignore=BOOL,
                    excludes=GLOBS,
                    compression={
                        "anyOf": [
                            {"enum": list(COMPRESSIONS)},
                            obj(format={"enum": [*COMPRESSIONS, None]}, threads=INT),
                        ]
                    },
                    sessionId=ref("SessionId"),
                ),
            )
        },
        "/api/backup/restore": {
            "post": o(
                "Unpack an archive into a directory",
                "files",
                success(dir=STRING),
                obj(["dir", "archivePath"], dir=PATH, archivePath=PATH, sessionId=ref("SessionId")),
            )
        },
        "/api/backup/upload-parts": {
            "post": o(
                "Upload an archive's parts to pre-signed URLs of allowed origins",
                "files",
                success(
                    parts={
                        "type": "array",
                        "items": obj(["partNumber", "etag"], partNumber=INT, etag=STRING),
                    }
                ),
                obj(
                    ["archivePath", "parts"],
                    archivePath=PATH,
                    parts={
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            ["partNumber", "url", "offset", "size"],
                            partNumber={"type": "integer", "minimum": 0},
                            url=STRING,
                            offset={"type": "integer", "minimum": 0},
                            size={"type": "integer", "minimum": 0},
                        ),
                    },
                    sessionId=ref("SessionId"),
                ),
            )
        },
        "/api/mkdir": {
            "post": o(
                "Create a directory",
                "files",
                success(path=STRING, recursive=BOOL, created=BOOL),
                obj(["path"], path=PATH, recursive=BOOL, sessionId=ref("SessionId")),
            )
        },
        "/api/list-files": {
            "post": o(
                "List a directory",
                "files",
                success(
                    path=STRING,
                    count=INT,
                    truncated=BOOL,
                    files={"type": "array", "items": ref("FileEntry")},
                ),
                obj(
                    ["path"],
                    path=PATH,
                    sessionId=ref("SessionId"),
                    options=obj(recursive=BOOL, includeHidden=BOOL),
                ),
            )
        },
        "/api/exists": {
            "post": o(
                "Whether a path exists", "files", success(path=STRING, exists=BOOL), PATH_BODY
            )
        },
    }


def paths() -> dict[str, Any]:
    """Every route, one description per handler module, in the route table's order."""
    return {
        **_interpreter(),
        **_commands(),
        **_sessions(),
        **_files(),
        **_processes(),
        **_service(),
    }


def document(server_url: str) -> dict[str, Any]:
    """The whole description, for a server whose API lives under `server_url`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyter_interp_ext: the Cloudflare Sandbox API on Jupyter",
            "version": __version__,
        },
        "servers": [{"url": server_url}],
        "security": [{"token": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <jupyter token>`",
                },
            },
        },
    }
