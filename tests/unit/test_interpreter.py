"""Languages, preludes and Jupyter messages as events: no kernel needed."""

from __future__ import annotations

import importlib

import pytest

from jupyter_interp_ext.interpreter.languages import (
    LANGUAGES,
    available_languages,
    default_aliases,
    default_kernels,
    resolve_language,
)
from jupyter_interp_ext.interpreter.outputs import error_event, result_event, stream_event
from jupyter_interp_ext.interpreter.preludes import RICH_DATA_MODULE, python_rich_data
from jupyter_interp_ext.protocol.errors import ProtocolError

INSTALLED = {"python3", "deno-javascript", "deno-typescript", "ir"}


def resolve(name: str):
    return resolve_language(name, default_kernels(), default_aliases(), INSTALLED)


@pytest.mark.parametrize(
    ("asked", "name", "kernel"),
    [
        ("python", "python", "python3"),
        ("py", "python", "python3"),
        ("Python3", "python", "python3"),
        ("node", "javascript", "deno-javascript"),
        ("ts", "typescript", "deno-typescript"),
        ("deno-typescript", "typescript", "deno-typescript"),
        ("ir", "ir", "ir"),  # another installed kernelspec, by its own name
    ],
)
def test_client_names_resolve_to_kernelspecs(asked, name, kernel):
    language = resolve(asked)
    assert (language.name, language.kernel_name) == (name, kernel)


def test_a_known_language_carries_everything_about_running_it():
    python, javascript = resolve("py"), resolve("js")
    assert python.rich_data and python.pool_size == 2 and "__sandbox_prelude" in python.prelude
    assert javascript.drain_seconds > 0 and "Deno" in javascript.prelude
    assert "os.chdir('/w')" in python.move_code("/w", {"A": "1"}, ["B"])
    assert 'Deno.chdir("/w")' in javascript.move_code("/w", {}, [])
    other = resolve("ir")  # nothing known: no set-up, and no way to move it, so never pooled
    assert (other.prelude, other.move_code("/w", {}, []), other.pool_size) == ("", None, 0)


def test_an_unknown_language_names_what_is_available():
    with pytest.raises(ProtocolError) as refused:
        resolve("ruby")
    assert "available: deno-javascript" not in refused.value.message
    assert "ir, javascript, js, node, py, python, python3, ts, typescript" in refused.value.message
    assert available_languages(default_kernels(), default_aliases(), {"python3"}) == [
        "py",
        "python",
        "python3",
    ]


def test_every_language_is_named_once():
    names = [language.name for language in LANGUAGES]
    aliases = [alias for language in LANGUAGES for alias in language.aliases]
    assert len(set(names + aliases)) == len(names) + len(aliases)


def test_the_module_the_prelude_imports_for_charts_exists():
    """A rename of in_kernel/ must fail here, not silently switch charts off."""
    module = importlib.import_module(RICH_DATA_MODULE)
    assert callable(module.install)
    assert f"from {RICH_DATA_MODULE} import install" in python_rich_data(
        charts=True, table_rows=10, table_bytes=100
    )


def test_messages_become_the_clients_events():
    stream = {
        "header": {"date": "2026-01-01T00:00:00.5Z"},
        "content": {"name": "stderr", "text": "e"},
    }
    assert stream_event(stream) == {"type": "stderr", "text": "e", "timestamp": 1767225600500.0}
    bundle = {
        "data": {
            "text/plain": "1",
            "application/json": '{"a": 1}',
            "image/png": ["iV", "BO"],
            "x/y": 2,
        },
        "metadata": {},
    }
    assert result_event(bundle, is_main=True) == {
        "type": "result",
        "text": "1",
        "json": {"a": 1},
        "png": "iVBO",
        "data": {"x/y": 2},
        "metadata": {},
        "isMainResult": True,
    }
    assert result_event({"data": {}}, is_main=False) is None
    error = error_event("E", "\x1b[31mbad\x1b[0m", ["\x1b[1mline 1\nline 2\x1b[0m"])
    assert error == {
        "type": "error",
        "ename": "E",
        "evalue": "bad",
        "traceback": ["line 1", "line 2"],
    }
