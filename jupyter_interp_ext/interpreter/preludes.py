"""The code a kernel runs silently before it is handed out, per language: its set-up (prelude)
and the code that moves a running kernel to a context's cwd and environment. Which language
uses which is said once, in `languages.LANGUAGES`."""

from __future__ import annotations

import json
import shlex

# dict and list results become a `json` result as well as text, like the upstream executor.
PYTHON_PRELUDE = """
def __sandbox_prelude():
    import json
    def as_json(obj):
        try:
            json.dumps(obj, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
        return obj
    formatter = get_ipython().display_formatter.formatters["application/json"]
    formatter.for_type(dict, as_json)
    formatter.for_type(list, as_json)
__sandbox_prelude()
del __sandbox_prelude
"""

# Every prelude is independent of the kernel's cwd and env, so pooled kernels run it early.
# Deno's kernel lacks Node's `require`; plain objects and arrays show only as text; a promise
# left as the last value is shown, not awaited. Deno asks `obj[Symbol.for("Jupyter.display")]`
# for a custom bundle, so a getter on Object.prototype answers for exactly those cases and
# leaves every other object to Deno's own formatting.
DENO_PRELUDE = """
{
  // Resolved against the directory the kernel is in when `require` is called, so the prelude
  // can run before a pooled kernel is moved to its context's directory; node:module is loaded
  // then too (3 MiB a kernel that never calls `require` does not hold).
  let createRequire;
  const here = () =>
    (createRequire ??= process.getBuiltinModule("node:module").createRequire)(Deno.cwd() + "/");
  globalThis.require = new Proxy(function require(id) { return here()(id); }, {
    get: (target, prop) => (prop in target ? target[prop] : here()[prop]),
  });
  globalThis.global ??= globalThis;
  const display = Symbol.for("Jupyter.display");
  const isPlain = (value) => {
    if (Array.isArray(value)) return true;
    const proto = Object.getPrototypeOf(value);
    return proto === Object.prototype || proto === null;
  };
  function asJson() {
    const bundle = { "text/plain": Deno.inspect(this, { colors: false }) };
    try {
      const json = JSON.parse(JSON.stringify(this));
      if (json !== null && typeof json === "object") bundle["application/json"] = json;
    } catch (_) { /* not representable as JSON: text only */ }
    return bundle;
  }
  async function awaited() {
    const value = await this;
    return value === undefined ? {} : Deno.jupyter.format(value);
  }
  Object.defineProperty(Object.prototype, display, {
    configurable: true,
    enumerable: false,
    get() {
      if (this instanceof Promise) return awaited;
      return isPlain(this) ? asJson : undefined;
    },
    set(value) {
      Object.defineProperty(this, display, {
        value, writable: true, configurable: true, enumerable: false,
      });
    },
  });
}
"""

# The module Python kernels import chart and table data from (`in_kernel/display.py`). The
# server never imports it; a test checks that this name resolves, so a rename fails a test
# instead of silently switching charts off.
RICH_DATA_MODULE = "jupyter_interp_ext.in_kernel.display"

# Chart and table data, where the kernel has this package: a kernel behind a Gateway may not.
PYTHON_RICH_DATA = """
try:
    from {module} import install as __sandbox_install
except ImportError:
    pass
else:
    __sandbox_install(get_ipython(), charts={charts!r}, table_rows={rows!r}, table_bytes={size!r})
    del __sandbox_install
"""


def python_rich_data(*, charts: bool, table_rows: int, table_bytes: int) -> str:
    """The Python set-up that adds chart and table data to results."""
    return PYTHON_RICH_DATA.format(
        module=RICH_DATA_MODULE, charts=charts, rows=table_rows, size=table_bytes
    )


def move_python(cwd: str, set_env: dict[str, str], unset_env: list[str]) -> str:
    """Python code that gives a running kernel the cwd and environment of a fresh start (a
    directory the kernel's host lacks, as for a remote Gateway kernel, is skipped)."""
    return (
        "def __sandbox_move():\n"
        "    import os\n"
        f"    if os.path.isdir({cwd!r}):\n"
        f"        os.chdir({cwd!r})\n"
        f"    os.environ.update({set_env!r})\n"
        f"    for name in {unset_env!r}:\n"
        "        os.environ.pop(name, None)\n"
        "__sandbox_move()\n"
        "del __sandbox_move\n"
    )


def move_deno(cwd: str, set_env: dict[str, str], unset_env: list[str]) -> str:
    """The same for Deno's kernel (JavaScript and TypeScript)."""
    return (
        "{\n"
        f"  try {{ Deno.chdir({json.dumps(cwd)}); }} catch (_) {{ /* not on this host */ }}\n"
        f"  for (const [k, v] of Object.entries({json.dumps(set_env)})) Deno.env.set(k, v);\n"
        f"  for (const k of {json.dumps(unset_env)}) Deno.env.delete(k);\n"
        "}\n"
    )


def python_run_env(values: dict[str, str]) -> tuple[str, str]:
    """Python code that sets `values` in the kernel's environment for one run, and the code
    that puts back what was there before."""
    apply = (
        "def __sandbox_env(values):\n"
        "    import os\n"
        "    saved = {k: os.environ.get(k) for k in values}\n"
        "    os.environ.update(values)\n"
        "    return saved\n"
        f"__sandbox_saved_env = __sandbox_env({values!r})\n"
        "del __sandbox_env\n"
    )
    restore = (
        "def __sandbox_restore(saved):\n"
        "    import os\n"
        "    for k, v in saved.items():\n"
        "        if v is None:\n"
        "            os.environ.pop(k, None)\n"
        "        else:\n"
        "            os.environ[k] = v\n"
        "__sandbox_restore(globals().pop('__sandbox_saved_env', {}))\n"
        "del __sandbox_restore\n"
    )
    return apply, restore


def deno_run_env(values: dict[str, str]) -> tuple[str, str]:
    """The same for Deno's kernel."""
    apply = (
        "{\n"
        f"  const values = {json.dumps(values)};\n"
        "  globalThis.__sandboxSavedEnv = Object.fromEntries(\n"
        "    Object.keys(values).map((k) => [k, Deno.env.get(k) ?? null]));\n"
        "  for (const [k, v] of Object.entries(values)) Deno.env.set(k, v);\n"
        "}\n"
    )
    restore = (
        "{\n"
        "  for (const [k, v] of Object.entries(globalThis.__sandboxSavedEnv ?? {})) {\n"
        "    if (v === null) Deno.env.delete(k); else Deno.env.set(k, v);\n"
        "  }\n"
        "  delete globalThis.__sandboxSavedEnv;\n"
        "}\n"
    )
    return apply, restore


def move_bash(cwd: str, set_env: dict[str, str], unset_env: list[str]) -> str:
    """Bash code giving a running bash kernel a context's directory and environment."""
    q = shlex.quote
    lines = [f"builtin cd -- {q(cwd)} 2>/dev/null"]
    lines += [f"builtin export {name}={q(value)}" for name, value in set_env.items()]
    if unset_env:
        lines.append("builtin unset " + " ".join(unset_env))
    return "\n".join(lines) + "\n"


def bash_run_env(values: dict[str, str]) -> tuple[str, str]:
    """Bash code that exports `values` for one run, and the code that puts back what was
    there before (`declare -p` of those names, replayed after unsetting them)."""
    q = shlex.quote
    names = " ".join(values)
    exports = " ".join(f"{name}={q(value)}" for name, value in values.items())
    apply = (
        f"__sandbox_saved_env=$(builtin declare -p {names} 2>/dev/null)\nbuiltin export {exports}\n"
    )
    restore = (
        f"builtin unset {names}\n"
        'builtin eval "$__sandbox_saved_env"\n'
        "builtin unset __sandbox_saved_env\n"
    )
    return apply, restore
