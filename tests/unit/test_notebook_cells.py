"""A run as a notebook cell, and the notebook's output budget: no server needed."""

from __future__ import annotations

from jupyter_interp_ext.notebooks.cells import RunRecord, trim_oldest


def message(kind: str, **content) -> dict:
    return {"msg_type": kind, "content": content}


def test_a_run_becomes_one_code_cell_with_its_outputs():
    changes = []
    record = RunRecord("print(1); 2", max_bytes=1000, on_change=changes.append)
    record.add(message("execute_input", execution_count=3))
    record.add(message("stream", name="stdout", text="1\n"))
    record.add(message("stream", name="stdout", text="more\n"))  # joins the same stream
    record.add(message("execute_result", data={"text/plain": "2"}, metadata={}, execution_count=3))
    record.add(message("status", execution_state="idle"))  # not an output: no change
    record.end({"type": "execution_complete", "execution_count": 3})
    cell = record.cell
    assert (cell["cell_type"], cell["source"], cell["execution_count"]) == (
        "code",
        "print(1); 2",
        3,
    )
    assert [o["output_type"] for o in cell["outputs"]] == ["stream", "execute_result"]
    assert "".join(cell["outputs"][0]["text"]) == "1\nmore\n"
    assert len(changes) == 5


def test_output_past_the_cap_is_counted_and_noted():
    record = RunRecord("x", max_bytes=10)
    record.add(message("stream", name="stdout", text="0123456789abcdef"))
    record.end({"type": "execution_complete", "execution_count": 1})
    texts = ["".join(o["text"]) for o in record.cell["outputs"]]
    assert texts[0] == "0123456789"
    assert "6 more bytes of output are not kept" in texts[1]


def test_a_run_ended_by_the_server_says_why():
    record = RunRecord("sleep()", max_bytes=100)
    record.end({"type": "error", "ename": "TimeoutError", "evalue": "after 1 s", "traceback": []})
    [error] = record.cell["outputs"]
    assert (error["output_type"], error["ename"]) == ("error", "TimeoutError")


def test_clear_output_and_display_updates():
    record = RunRecord("x", max_bytes=1000)
    shown = {"data": {"text/plain": "old"}, "metadata": {}, "transient": {"display_id": "d"}}
    record.add(message("display_data", **shown))
    record.add(message("update_display_data", **{**shown, "data": {"text/plain": "new"}}))
    assert record.cell["outputs"][0]["data"] == {"text/plain": "new"}
    record.add(message("clear_output", wait=True))
    record.add(message("stream", name="stdout", text="after"))
    assert [o["output_type"] for o in record.cell["outputs"]] == ["stream"]


def test_the_oldest_outputs_are_trimmed_first_and_running_cells_kept():
    cells = [
        {"id": "a", "outputs": [{"output_type": "stream", "name": "stdout", "text": "x" * 50}]},
        {"id": "b", "outputs": [{"output_type": "stream", "name": "stdout", "text": "y" * 50}]},
        {"id": "c", "outputs": [{"output_type": "stream", "name": "stdout", "text": "z" * 50}]},
    ]
    sizes = {"a": 50, "b": 50, "c": 50}
    trimmed = trim_oldest(cells, sizes, budget=60, keep={"a"})
    assert [record.id for record in trimmed] == ["b", "c"]
    assert sizes == {"a": 50, "b": 0, "c": 0}
    assert "50 bytes of output trimmed" in "".join(cells[1]["outputs"][0]["text"])
    assert cells[0]["outputs"][0]["text"] == "x" * 50
    assert trim_oldest(cells, sizes, budget=60, keep=set()) == []
