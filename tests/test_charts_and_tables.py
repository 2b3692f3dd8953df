"""Figures come back as chart data and DataFrames as table data, next to their images and HTML.

Each chart test plots known values and reads them back from the `chart` of the result, the way
an agent that cannot see the PNG would.
"""

from __future__ import annotations

import base64

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, results

TABLE = "application/vnd.dataresource+json"
PLOT = "import matplotlib.pyplot as plt\nimport numpy as np\n"


async def chart_of(api, context: str, code: str) -> dict:
    """The chart of the one figure `code` displays (its result also carries the PNG)."""
    events = await api.run(context, PLOT + code)
    assert events[-1]["type"] == "execution_complete", events[-1]
    assert outputs(events, "stderr") == ""
    [figure] = [r for r in results(events) if "chart" in r]
    assert base64.b64decode(figure["png"]).startswith(b"\x89PNG")
    return figure["chart"]


@pytest.mark.slow
async def test_every_way_of_showing_a_figure_yields_one_chart(api, python_context):
    shown = "plt.plot([1, 2], [3, 4]); plt.show()"
    left_open = "plt.figure(); plt.plot([1, 2], [3, 4]); plt.savefig('saved.png')"
    displayed = (
        "from IPython.display import display\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4]); display(fig); plt.close(fig)"
    )
    for code in (shown, left_open, displayed):
        chart = await chart_of(api, python_context, code)
        assert chart["elements"][0]["points"] == [[1, 3], [2, 4]], code


@pytest.mark.slow
async def test_line_chart_with_labels_units_scales_ticks_and_error_bars(api, python_context):
    chart = await chart_of(
        api,
        python_context,
        "x = np.array([1.0, 2.0, 3.0])\n"
        "plt.plot(x, x ** 2, label='square')\n"
        "plt.errorbar(x, x, yerr=[0.5, 0.25, 0.125], label='measured')\n"
        "plt.yscale('log'); plt.title('Growth'); plt.xlabel('time (s)'); plt.ylabel('size [m]')\n"
        "plt.legend(); plt.show()",
    )
    assert (chart["type"], chart["title"]) == ("line", "Growth")
    assert (chart["x_label"], chart["x_unit"], chart["y_unit"]) == ("time (s)", "s", "m")
    assert (chart["x_scale"], chart["y_scale"]) == ("linear", "log")
    assert chart["x_ticks"] and len(chart["x_ticks"]) == len(chart["x_tick_labels"])
    assert not any("$" in label for label in chart["y_tick_labels"])
    square, measured = chart["elements"]
    assert square == {"label": "square", "points": [[1, 1], [2, 4], [3, 9]]}
    assert measured["label"] == "measured"
    assert measured["points"] == [[1, 1], [2, 2], [3, 3]]
    assert measured["errors"] == [[0.5, 0.5], [0.25, 0.25], [0.125, 0.125]]


@pytest.mark.slow
async def test_reference_lines_are_not_series_but_flat_data_lines_are(api, python_context):
    chart = await chart_of(
        api, python_context, "plt.plot([0, 1], [5, 5], label='flat'); plt.axhline(3); plt.show()"
    )
    assert chart["elements"] == [{"label": "flat", "points": [[0, 5], [1, 5]]}]
    bars = await chart_of(api, python_context, "plt.bar(['a'], [2]); plt.axhline(1); plt.show()")
    assert [(e["label"], e["value"]) for e in bars["elements"]] == [("a", 2)]


@pytest.mark.slow
async def test_dates_on_the_x_axis_stay_dates(api, python_context):
    chart = await chart_of(
        api,
        python_context,
        "import pandas as pd\n"
        "days = pd.date_range('2024-03-01', periods=3, freq='D')\n"
        "plt.plot(days.to_pydatetime(), [5, 6, 7]); plt.show()",
    )
    assert chart["x_scale"] == "datetime"
    [series] = chart["elements"]
    assert [x[:10] for x, _ in series["points"]] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert [y for _, y in series["points"]] == [5, 6, 7]


@pytest.mark.slow
async def test_grouped_stacked_horizontal_and_error_bars(api, python_context):
    grouped = await chart_of(
        api,
        python_context,
        "x = np.arange(2)\n"
        "plt.bar(x - 0.2, [3, 3], 0.4, label='2023'); plt.bar(x + 0.2, [4, 1], 0.4, label='2024')\n"
        "plt.xticks([0, 0.2, 0.8, 1.2], ['', '', '', '']); plt.show()",
    )
    assert [(e["group"], e["value"]) for e in grouped["elements"]] == [
        ("2023", 3),
        ("2023", 3),
        ("2024", 4),
        ("2024", 1),
    ]
    assert grouped["stacked"] is False
    stacked = await chart_of(
        api,
        python_context,
        "plt.bar(['a', 'b'], [1, 2], label='low'); plt.bar(['a', 'b'], [3, 4], bottom=[1, 2], "
        "label='high', yerr=[0.5, 1]); plt.ylabel('count'); plt.show()",
    )
    assert stacked["stacked"] is True and stacked["y_label"] == "count"
    assert [(e["label"], e["group"], e["value"]) for e in stacked["elements"]] == [
        ("a", "low", 1),
        ("b", "low", 2),
        ("a", "high", 3),
        ("b", "high", 4),
    ]
    assert [e.get("error") for e in stacked["elements"]] == [None, None, [0.5, 0.5], [1, 1]]
    equal = await chart_of(api, python_context, "plt.barh(['x', 'y', 'z'], [2, 2, 2]); plt.show()")
    assert equal["orientation"] == "horizontal"
    assert [(e["label"], e["value"]) for e in equal["elements"]] == [("x", 2), ("y", 2), ("z", 2)]


@pytest.mark.slow
async def test_histogram_bins_scatter_and_pie(api, python_context):
    histogram = await chart_of(
        api, python_context, "plt.hist([1, 2, 2, 5, 5, 5], bins=[0, 3, 6]); plt.show()"
    )
    assert [(e["label"], e["value"]) for e in histogram["elements"]] == [
        ("0 to 3", 3),
        ("3 to 6", 3),
    ]
    scatter = await chart_of(
        api, python_context, "plt.scatter([1, 2], [3, 4], label='dots'); plt.show()"
    )
    assert scatter["type"] == "scatter"
    assert scatter["elements"] == [{"label": "dots", "points": [[1, 3], [2, 4]]}]
    pie = await chart_of(
        api, python_context, "plt.pie([1, 3], labels=['cats', 'dogs']); plt.show()"
    )
    assert pie["type"] == "pie"
    assert [(e["label"], e["angle"]) for e in pie["elements"]] == [("cats", 90), ("dogs", 270)]


@pytest.mark.slow
async def test_box_plots_give_their_statistics(api, python_context):
    chart = await chart_of(
        api,
        python_context,
        "plt.boxplot([[1, 2, 3, 4, 5, 20], [2, 3, 4]], tick_labels=['A', 'B']); plt.show()",
    )
    assert chart["type"] == "box_and_whisker"
    first, second = chart["elements"]
    assert first == {
        "label": "A",
        "min": 1,
        "first_quartile": 2.25,
        "median": 3.5,
        "third_quartile": 4.75,
        "max": 5,
        "outliers": [20],
    }
    assert (second["label"], second["median"], second["outliers"]) == ("B", 3, [])


@pytest.mark.slow
async def test_several_axes_are_one_superchart_and_odd_plots_are_unknown(api, python_context):
    chart = await chart_of(
        api,
        python_context,
        "fig, (left, right) = plt.subplots(1, 2); fig.suptitle('Both')\n"
        "left.plot([0, 1]); right.imshow(np.eye(2)); right.set_title('image'); plt.show()",
    )
    assert (chart["type"], chart["title"]) == ("superchart", "Both")
    line, image = chart["elements"]
    assert line["type"] == "line" and line["elements"][0]["points"] == [[0, 0], [1, 1]]
    assert image == {"type": "unknown", "title": "image", "elements": []}


@pytest.mark.slow
async def test_dataframes_and_series_carry_their_rows_as_table_data(api, python_context):
    events = await api.run(
        python_context,
        "import pandas as pd\n"
        "frame = pd.DataFrame({'name': ['a', 'b'], 'value': [1.5, None]})\n"
        "display(frame['value'])\n"
        "frame",
    )
    series, frame = results(events)
    table = frame["data"][TABLE]
    assert "<table" in frame["html"] and "name" in frame["text"]
    assert [f["name"] for f in table["schema"]["fields"]] == ["index", "name", "value"]
    assert table["data"] == [
        {"index": 0, "name": "a", "value": 1.5},
        {"index": 1, "name": "b", "value": None},
    ]
    assert "note" not in table
    assert [row["value"] for row in series["data"][TABLE]["data"]] == [1.5, None]


@pytest.mark.slow
async def test_big_tables_are_cut_with_a_note(api, python_context):
    [big] = results(
        await api.run(python_context, "import pandas as pd\npd.DataFrame({'n': range(5000)})")
    )
    table = big["data"][TABLE]
    assert len(table["data"]) == 1000
    assert table["note"] == "first 1000 of 5000 rows (the limits are 1000 rows and 1048576 bytes)"
    [wide] = results(await api.run(python_context, "pd.DataFrame({'text': ['x' * 10_000] * 500})"))
    cut = wide["data"][TABLE]
    assert 0 < len(cut["data"]) < 500 and cut["note"].startswith(f"first {len(cut['data'])} of 500")


@pytest.mark.slow
async def test_javascript_results_are_unchanged(api):
    context = (await api.create("javascript"))["contextId"]
    [result] = results(await api.run(context, "({a: 1, b: [2, 3]})"))
    assert result["json"] == {"a": 1, "b": [2, 3]}
    assert "chart" not in result and "data" not in result
