"""Every context has a notebook a person can open: one cell per run, written through the
server's ContentsManager, valid at every write, kept (with a last cell) when the context ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_interp_ext.pytest_plugin import (
    outputs,
    start_endless_run,
    start_extension,
    wait_until,
)

pytestmark = pytest.mark.slow  # every test here takes seconds


def read(root: Path, path: str) -> nbformat.NotebookNode:
    return nbformat.read(root / path, as_version=4)


async def wait_for_cells(
    root: Path, path: str, count: int, what: str, ended: bool = True, seconds: float = 20.0
) -> nbformat.NotebookNode:
    """The notebook once its file has at least `count` cells, the last one finished (a run's
    cell is written when it starts and again when it ends)."""
    seen: list[nbformat.NotebookNode] = []

    def has_them() -> bool:
        try:
            nb = read(root, path)
        except (OSError, json.JSONDecodeError, nbformat.reader.NotJSONError):
            return False  # not written yet, or seen mid-write (Jupyter writes in place)
        seen[:] = [nb]
        return len(nb.cells) >= count and (not ended or _finished(nb.cells[-1]))

    await wait_until(has_them, what, seconds)
    return seen[0]


def _finished(cell: nbformat.NotebookNode) -> bool:
    return "ended" in cell.metadata.get("jupyter_interp_ext", {}) or cell.cell_type != "code"


@pytest.fixture
def notebook_writes(jp_serverapp) -> list[tuple[str, str | None]]:
    """Every notebook the ContentsManager saved: (path, validation error or None), checked as
    it was saved and listed once written."""
    manager = jp_serverapp.contents_manager
    save = manager.save
    writes: list[tuple[str, str | None]] = []

    async def checked_save(model: dict[str, Any], path: str) -> Any:
        if model.get("type") != "notebook":
            return await save(model, path)
        try:
            nbformat.validate(nbformat.from_dict(model["content"]))
            problem = None
        except nbformat.ValidationError as error:
            problem = str(error)
        saved = await save(model, path)
        writes.append((path, problem))  # once the file is written
        return saved

    manager.save = checked_save
    return writes


def invalid(writes: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    return [write for write in writes if write[1] is not None]


async def test_a_context_s_notebook_is_its_session_row(api, jp_fetch, jp_root_dir):
    created = await api.create("python")
    path = created["notebook"]
    folder, name = path.split("/")
    assert folder == "sandbox"
    assert name.startswith("python-") and created["contextId"][:8] in name
    assert name.endswith(".ipynb")
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    row = next(s for s in sessions if s["kernel"]["id"] == created["contextId"])
    assert (row["path"], row["type"], row["name"]) == (path, "notebook", name)

    nb = await wait_for_cells(jp_root_dir, path, 1, "the new context's notebook")
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    assert created["contextId"] in nb.cells[0].source
    status, listed = await api.call("GET", "api/contexts")
    assert listed["contexts"][0]["notebook"] == path


async def test_each_run_is_a_cell_with_its_outputs(api, jp_root_dir, notebook_writes):
    created = await api.create("python")
    context_id, path = created["contextId"], created["notebook"]
    await api.run(context_id, "print('hello')\nimport sys; print('oops', file=sys.stderr)\n6*7")
    await api.run(
        context_id,
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.title('t'); plt.show()",
    )
    await api.run(context_id, "from IPython.display import HTML\ndisplay(HTML('<b>x</b>'))")
    await api.run(context_id, "1/0")
    nb = await wait_for_cells(jp_root_dir, path, 5, "four runs")
    header, printed, plotted, html, failed = nb.cells
    assert printed.source.startswith("print('hello')")
    assert [(o.output_type, o.get("name")) for o in printed.outputs] == [
        ("stream", "stdout"),
        ("stream", "stderr"),
        ("execute_result", None),
    ]
    assert printed.outputs[0].text == "hello\n"
    assert printed.outputs[2].data["text/plain"] == "42"
    assert printed.execution_count == printed.outputs[2].execution_count
    image = plotted.outputs[0]
    assert image.output_type == "display_data"
    assert {"image/png", "text/plain", "application/vnd.jupyter-interp-ext.chart+json"} <= set(
        image.data
    )
    assert html.outputs[0].data["text/html"] == "<b>x</b>"
    assert failed.outputs[0].output_type == "error"
    assert failed.outputs[0].ename == "ZeroDivisionError"
    counts = [c.execution_count for c in nb.cells[1:]]
    assert counts == sorted(counts) and None not in counts
    assert all(c.metadata.jupyter_interp_ext.ran_by == "api" for c in nb.cells[1:])
    assert invalid(notebook_writes) == []


async def test_deleting_a_context_keeps_its_notebook_with_a_last_cell(api, jp_root_dir):
    created = await api.create("python")
    await api.run(created["contextId"], "x = 1")
    status, _ = await api.call("DELETE", f"api/contexts/{created['contextId']}")
    assert status == 200
    nb = read(jp_root_dir, created["notebook"])  # written before the answer
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert "Context ended" in nb.cells[-1].source
    assert "deleted through the sandbox API" in nb.cells[-1].source


async def test_deleting_can_delete_the_notebook(api, jp_serverapp, jp_root_dir):
    jp_serverapp.web_app.settings["interp_context_notebooks"].keep_on_delete = False
    created = await api.create("python")
    await wait_for_cells(jp_root_dir, created["notebook"], 1, "the notebook")
    await api.call("DELETE", f"api/contexts/{created['contextId']}")
    assert not (jp_root_dir / created["notebook"]).exists()


async def test_a_kernel_shut_down_in_lab_ends_the_notebook(
    api, jp_serverapp, jp_fetch, jp_root_dir
):
    await start_extension(jp_serverapp)  # hears of kernels shut down elsewhere
    created = await api.create("python")
    await jp_fetch("api", "kernels", created["contextId"], method="DELETE")
    nb = await wait_for_cells(jp_root_dir, created["notebook"], 2, "the ending cell")
    assert "shut down outside the sandbox API" in nb.cells[-1].source


async def test_a_person_s_cells_are_never_overwritten(api, jp_fetch, jp_root_dir):
    """Without RTC a person saves the file from their browser; the next run is merged into
    what they saved."""
    created = await api.create("python")
    path = created["notebook"]
    await api.run(created["contextId"], "a = 1")
    nb = await wait_for_cells(jp_root_dir, path, 2, "the first run")
    nb.cells.append(nbformat.v4.new_code_cell("b = a + 1  # a person's cell"))
    nb.cells[0].source += "\n\nA person's note."
    body = json.dumps({"type": "notebook", "format": "json", "content": nb})
    await jp_fetch("api", "contents", path, method="PUT", body=body)
    await api.run(created["contextId"], "c = 3")
    nb = await wait_for_cells(jp_root_dir, path, 4, "the second run")
    assert [c.source for c in nb.cells[1:]] == ["a = 1", "b = a + 1  # a person's cell", "c = 3"]
    assert nb.cells[0].source.endswith("A person's note.")


async def test_timeouts_kills_and_big_outputs_leave_a_valid_notebook(
    api, jp_serverapp, jp_root_dir, notebook_writes, tmp_path
):
    notebooks = jp_serverapp.web_app.settings["interp_context_notebooks"]
    notebooks.max_output_bytes = 40_000
    created = await api.create("python")
    context_id, path = created["contextId"], created["notebook"]
    for i in range(200):
        await api.run(context_id, f"print({i}, 'y' * 300); {i}")
    events = await api.run(context_id, "print('x' * 30_000)")
    assert len(outputs(events, "stdout")) == 30_001  # the API delivers it all
    events = await api.run(context_id, "import time; time.sleep(30)", timeout_ms=500)
    assert events[-1]["ename"] == "TimeoutError"
    run = await start_endless_run(api, context_id, tmp_path)
    os.kill(jp_serverapp.kernel_manager.get_kernel(context_id).provisioner.pid, signal.SIGKILL)
    events = await asyncio.wait_for(run, 60)
    assert events[-1]["type"] == "error"
    # A big notebook waits between writes in proportion to its last write (50 times it),
    # which a loaded machine stretches past the usual wait.
    nb = await wait_for_cells(jp_root_dir, path, 204, "every run", seconds=120)
    assert invalid(notebook_writes) == []
    nbformat.validate(nb)
    big, timed_out, killed = nb.cells[-3:]
    assert big.outputs[0].text.startswith("x" * 19_000)
    assert "not kept in this notebook" in big.outputs[-1].text
    assert (timed_out.outputs[-1].output_type, timed_out.outputs[-1].ename) == (
        "error",
        "TimeoutError",
    )
    assert killed.outputs[-1].ename == events[-1]["ename"]
    first = nb.cells[1]
    assert "bytes of output trimmed" in first.outputs[0].text
    kept = sum(len(json.dumps(o)) for c in nb.cells[1:] for o in c.outputs)
    assert kept < 3 * notebooks.max_output_bytes
    assert nb.cells[-4].outputs[0].text == "199 " + "y" * 300 + "\n"  # the newest are whole
    # Jupyter restarts the killed kernel: the test ends once that is over (a server stopped
    # in the middle of a restart trips jupyter_client's shutdown of it).
    kernel = jp_serverapp.kernel_manager.get_kernel(context_id)
    await wait_until(lambda: kernel.ready.done(), "the kernel's restart", 60)


async def test_notebooks_can_be_turned_off(api, jp_serverapp, jp_fetch, jp_root_dir):
    jp_serverapp.web_app.settings["interp_context_notebooks"].enabled = False
    created = await api.create("python")
    assert "notebook" not in created
    await api.run(created["contextId"], "1")
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    row = next(s for s in sessions if s["kernel"]["id"] == created["contextId"])
    assert row["type"] == "sandbox-context"
    assert not (jp_root_dir / "sandbox").exists()


async def test_a_javascript_context_s_notebook(api, jp_root_dir):
    created = await api.create("javascript")
    await api.run(created["contextId"], "console.log('hi'); 1 + 2")
    nb = await wait_for_cells(jp_root_dir, created["notebook"], 2, "the run")
    assert nb.metadata.kernelspec.name == "deno-javascript"
    outputs_by_type = {o.output_type: o for o in nb.cells[1].outputs}
    assert outputs_by_type["stream"].text == "hi\n"
    assert outputs_by_type["execute_result"].data["text/plain"] == "3"


async def test_a_notebook_that_cannot_be_written_never_stops_a_run(api, jp_root_dir, caplog):
    (jp_root_dir / "sandbox").write_text("a file where the notebooks' folder would go")
    created = await api.create("python")
    for _ in range(3):
        events = await api.run(created["contextId"], "print('still runs')")
        assert outputs(events, "stdout") == "still runs\n"
    await wait_until(lambda: "Could not write notebook" in caplog.text, "the warning")
    assert caplog.text.count("Could not write notebook") == 1  # said once, not at every run
    status, _ = await api.call("DELETE", f"api/contexts/{created['contextId']}")
    assert status == 200


async def test_a_notebook_folder_swapped_for_a_link_is_not_written_through(
    api, jp_root_dir, tmp_path, caplog
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (jp_root_dir / "sandbox").symlink_to(outside)
    created = await api.create("python")
    assert outputs(await api.run(created["contextId"], "print(1)"), "stdout") == "1\n"
    assert (await api.call("DELETE", f"api/contexts/{created['contextId']}"))[0] == 200
    await wait_until(lambda: "leads outside the server's root" in caplog.text, "the warning")
    assert list(outside.iterdir()) == []


async def test_runs_between_two_writes_are_written_together(
    api, jp_serverapp, jp_root_dir, notebook_writes
):
    jp_serverapp.web_app.settings["interp_context_notebooks"].save_interval = 3600
    created = await api.create("python")
    path = created["notebook"]
    await wait_until(lambda: len(notebook_writes) == 1, "the new notebook's first write")
    for i in range(20):
        await api.run(created["contextId"], f"x = {i}")
    assert len(notebook_writes) == 1 and len(read(jp_root_dir, path).cells) == 1
    await api.call("DELETE", f"api/contexts/{created['contextId']}")  # the last write: now
    assert len(notebook_writes) == 2
    nb = read(jp_root_dir, path)
    assert [c.source for c in nb.cells[1:-1]] == [f"x = {i}" for i in range(20)]
