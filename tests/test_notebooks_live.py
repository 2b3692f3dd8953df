"""With jupyter-collaboration, a context's notebook open in a browser shows each run live: the
cell and its output go into the shared document while the code runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nbformat
import pytest

from jupyter_interp_ext.pytest_plugin import start_extension, wait_until

pytestmark = pytest.mark.slow  # every test here takes seconds


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_interp_ext": True,
                "jupyter_server_fileid": True,
                "jupyter_server_ydoc": True,
            }
        },
        "YDocExtension": {"document_save_delay": 0.1},
    }


async def open_in_browser(jp_serverapp, path: str) -> Any:
    """The notebook's shared document, opened as a browser tab opening it does."""
    extension = jp_serverapp.extension_manager.extension_points["jupyter_server_ydoc"].app
    return await extension.get_document(
        path=path, content_type="notebook", file_format="json", copy=False, create=True
    )


def cell_with(document: Any, source: str) -> dict[str, Any] | None:
    for index in range(document.cell_number):
        cell = document.get_cell(index)
        if cell["source"] == source:
            return cell
    return None


def execution_state(document: Any, source: str) -> str | None:
    """What Lab shows as the cell's prompt state (`[*]` while running); `get_cell` drops it."""
    for ycell in document.ycells:
        if str(ycell["source"]) == source:
            return ycell.get("execution_state")
    return None


def stdout_of(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    return "".join(o.get("text", "") for o in cell["outputs"] if o.get("name") == "stdout")


async def test_a_run_streams_into_the_open_notebook(api, jp_serverapp, jp_root_dir, tmp_path):
    await start_extension(jp_serverapp)
    created = await api.create("python")
    path = created["notebook"]
    await wait_until(lambda: (jp_root_dir / path).exists(), "the notebook file")
    document = await open_in_browser(jp_serverapp, path)

    go_on = tmp_path / "go-on"
    code = (
        "import os, time\nprint('first', flush=True)\n"
        f"while not os.path.exists({str(go_on)!r}): time.sleep(0.02)\nprint('second')"
    )
    running = asyncio.ensure_future(api.run(created["contextId"], code))
    await wait_until(lambda: stdout_of(cell_with(document, code)) == "first\n", "live output")
    assert not running.done()  # seen while the code still runs
    assert execution_state(document, code) == "running"
    go_on.touch()
    await running
    await wait_until(
        lambda: stdout_of(cell_with(document, code)) == "first\nsecond\n", "the rest of it"
    )
    cell = cell_with(document, code)
    assert cell["execution_count"] == 1
    assert execution_state(document, code) == "idle"

    # A person adds a cell in the browser; the next run goes after it and leaves it alone.
    document.append_cell(nbformat.v4.new_code_cell("mine = 1"))
    await api.run(created["contextId"], "theirs = 2")
    await wait_until(lambda: cell_with(document, "theirs = 2") is not None, "the next run")
    sources = [document.get_cell(i)["source"] for i in range(document.cell_number)]
    assert sources[-3:] == [code, "mine = 1", "theirs = 2"]

    # The collaboration server saves the document: the file has all of it, valid.
    def saved() -> bool:
        try:
            nb = nbformat.read(jp_root_dir / path, as_version=4)
        except (json.JSONDecodeError, nbformat.reader.NotJSONError):
            return False  # Jupyter's safe writing rewrites the file in place: seen mid-write
        return [c.source for c in nb.cells[-3:]] == sources[-3:]

    await wait_until(saved, "the saved file")
    nbformat.validate(nbformat.read(jp_root_dir / path, as_version=4))
