"""Every example of the upstream Code Interpreter documentation, as a user would copy it, through
the unchanged official client (tests/conformance/upstream_examples.mjs), `/workspace` being the
server's root."""

from __future__ import annotations

import math

import pytest
from test_conformance import run_official_client

pytestmark = pytest.mark.slow  # every test here takes seconds


async def test_the_upstream_documentation_examples_work(api, jp_serverapp, jp_root_dir):
    root = jp_root_dir.resolve()
    for folder in ("notebooks", "data", "ml"):
        (root / folder).mkdir()
    values = [3, 5, 7, 9, 11, 13]
    (root / "data" / "input.csv").write_text("value\n" + "\n".join(map(str, values)) + "\n")
    token = jp_serverapp.identity_provider.token
    report = await run_official_client(api.url, token, "upstream_examples.mjs", str(root))

    quick = report["quickStart"]
    assert quick["stdout"] == ["Generated 100 points\n"] and quick["error"] is None
    assert (root / "output.png").read_bytes().startswith(b"\x89PNG")
    assert [f for f in quick["formats"][0] if f in ("chart", "png", "text")] == [
        "chart",
        "png",
        "text",
    ]
    assert quick["chart"]["type"] == "line" and quick["chart"]["title"] == "Sine Wave"
    [sine] = quick["chart"]["elements"]
    assert len(sine["points"]) == 100
    assert all(math.isclose(y, math.sin(x), abs_tol=1e-9) for x, y in sine["points"])

    contexts = report["contexts"]
    assert (contexts["exec1"], contexts["exec2"]) == ([], ["42\n"])
    assert contexts["cwd"] == [f"{root / 'notebooks'}\n"]
    assert f"Context {contexts['id']}: python" in contexts["listed"]
    assert contexts["deletedIsGone"] is True

    science = report["dataScience"]
    assert science["error"] is None
    assert "count" in science["stdout"] and "mean" in science["stdout"]
    assert report["javascript"] == {"stdout": ["Sum: 15\n"], "error": None}
    assert report["typescript"] == {"stdout": ["Point: { x: 10, y: 20 }\n"], "error": None}

    multiple = report["multipleResults"]
    assert multiple["output"] == '{"status": "success", "points": 3}\nComputation complete\n'
    assert multiple["chart"]["elements"][0]["points"] == [[1, 1], [2, 4], [3, 9]]
    assert "png" in multiple["formats"][0]

    streamed = report["streaming"]
    # A kernel under load may flush one print as two chunks, so the text is compared joined.
    assert [e["type"] for e in streamed] == ["stdout"] * (len(streamed) - 1) + [
        "execution_complete"
    ]
    assert "".join(e["text"] for e in streamed[:-1]) == "".join(f"Step {i}\n" for i in range(10))
    arrivals = [e["at"] for e in streamed[:-1]]
    assert arrivals == sorted(arrivals) and arrivals[0] < arrivals[-1]  # as they came

    callbacks = report["callbacks"]
    assert callbacks["seen"][:2] == [["stdout", "out\n"], ["stderr", "err\n"]]
    kind, keys, chart_type = callbacks["seen"][2]
    assert (kind, chart_type) == ("result", "bar") and {"chart", "png"} <= set(keys)
    assert callbacks["seen"][3:] == [["error", "ValueError", "bad"]]
    assert callbacks["error"] is None and callbacks["failingError"] == "ValueError"

    error = report["errorHandling"]
    assert error["name"] == "ModuleNotFoundError"
    assert error["message"] == "No module named 'non_existent_module'"
    assert any("import non_existent_module" in line for line in error["traceback"])

    analysis = report["dataAnalysis"]
    assert analysis["load"] == ["Loaded 6 rows\n"] and analysis["processError"] is None
    rows = [line.split(",") for line in analysis["csv"].strip().splitlines()]
    assert rows[0] == ["value", "normalized"]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    normalized = [float(n) for _, n in rows[1:]]
    assert all(math.isclose(n, (v - mean) / std) for n, v in zip(normalized, values, strict=True))
    assert (root / "data" / "distribution.png").exists()
    histogram = analysis["chart"]
    assert histogram["type"] == "bar"
    assert sum(bar["value"] for bar in histogram["elements"]) == len(values)

    assert report["notebook"] == [[], [], [], ["Mean: 3.0\n"]]
    assert report["safe"] == {"success": True, "output": ["45\n"]}
    assert report["session"] == {"error": None, "stdout": ["3\n"]}

    runs = sorted(report["parallel"])
    assert [run[0] for run in runs] == [0, 1, 2]
    assert max(start for _, start, _ in runs) < min(end for _, _, end in runs)  # overlapped
