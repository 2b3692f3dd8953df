"""Prometheus metrics on the server's own `/metrics` (prometheus_client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONTEXTS = Gauge("sandbox_contexts", "Code contexts that exist, by language.", ["language"])
CONTEXT_STARTS = Counter(
    "sandbox_context_starts_total",
    "Contexts created, by language and by where the kernel came from (pool or fresh start).",
    ["language", "source"],
)
POOL_READY = Gauge("sandbox_pool_ready", "Pre-started kernels waiting in the pool.", ["language"])
EXECUTIONS = Counter(
    "sandbox_executions_total", "Code runs, by language and outcome.", ["language", "outcome"]
)
EXECUTION_SECONDS = Histogram(
    "sandbox_execution_seconds",
    "Duration of code runs.",
    ["language"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
OUTPUT_BYTES = Counter(
    "sandbox_output_bytes_total", "Output bytes sent to clients, by source.", ["source"]
)
TIMEOUTS = Counter("sandbox_timeouts_total", "Runs and commands that timed out.", ["kind"])
KERNEL_DEATHS = Counter(
    "sandbox_kernel_deaths_total", "Runs ended because their kernel died, restarted or stopped."
)
ACTIVE_STREAMS = Gauge("sandbox_active_streams", "Server-Sent Event responses in progress.")
SESSIONS = Gauge("sandbox_sessions", "Execution sessions (shells) alive.")
COMMANDS = Counter("sandbox_commands_total", "Foreground shell commands, by outcome.", ["outcome"])
PROCESSES = Gauge("sandbox_processes_running", "Background processes running.")
WATCHERS = Gauge("sandbox_watchers", "File watch streams open.")
PORT_WATCHES = Counter("sandbox_port_watches_total", "Port watches, by outcome.", ["outcome"])
GIT_CHECKOUTS = Counter("sandbox_git_checkouts_total", "Git clones, by outcome.", ["outcome"])
BACKUPS = Counter(
    "sandbox_backups_total", "Archive operations, by kind and outcome.", ["kind", "outcome"]
)
RESUMES = Counter(
    "sandbox_resumes_total", "Streams picked up again after an event id, by kind.", ["kind"]
)
REPLAYED_EVENTS = Counter(
    "sandbox_replayed_events_total",
    "Events sent again to a reader that came back, by kind.",
    ["kind"],
)
RETAINED_EXECUTIONS = Gauge("sandbox_retained_executions", "Code runs whose events are kept.")
RETAINED_BYTES = Gauge("sandbox_retained_bytes", "Bytes of code-run events kept for readers.")
EXPIRED_EXECUTIONS = Counter(
    "sandbox_expired_executions_total",
    "Ended code runs forgotten, by why (age, count or the byte budget).",
    ["why"],
)
DROPPED_EVENTS = Counter(
    "sandbox_dropped_events_total", "Events of running code runs dropped to keep within budget."
)
TERMINALS_STARTED = Counter("sandbox_terminals_started_total", "Session terminals started.")
TERMINAL_CONNECTIONS = Gauge(
    "sandbox_terminal_connections", "WebSocket connections to terminals open, by route.", ["route"]
)
TERMINAL_OUTPUT_CHARS = Counter(
    "sandbox_terminal_output_chars_total", "Characters of terminal output the sandbox read."
)
