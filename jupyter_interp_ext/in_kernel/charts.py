"""Matplotlib figures as chart data, so an agent can read the numbers it plotted.

Runs inside Python kernels (imported on a figure's first display, never before). The model and
most of the extraction are e2b-charts' (the format E2B's code interpreter returns); this module
extends it where its users asked for more: bars read from their containers (values, orientation,
stacking, error bars; labels matched to the bar's own tick, or its range for histograms), line
series with error bars, dates kept as dates, box plots drawn with lines, tick labels without
TeX markup, and a chart of type `unknown` (with its title) for anything else: extraction never
raises into the user's cell.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

from e2b_charts.charts import BoxAndWhiskerChart, ChartType, LineChart
from e2b_charts.charts.base import Chart2D
from e2b_charts.charts.planar import PointData
from e2b_charts.main import get_chart_from_ax
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

_TEX = re.compile(r"\\mathdefault\{(.*)\}")


def figure_chart(figure: Figure) -> dict[str, Any]:
    """The chart data of a figure: one chart, or a `superchart` of one per plotted axes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e2b-charts' serializer and deprecated APIs
        axes = [ax for ax in figure.get_axes() if ax.has_data()]
        if len(axes) == 1:
            return plain(axes_chart(axes[0]))
        suptitle = getattr(figure, "_suptitle", None)  # matplotlib keeps it private
        title = (suptitle.get_text() if suptitle else "") or None
        if not axes:
            return {"type": ChartType.UNKNOWN.value, "title": title, "elements": []}
        elements = [axes_chart(ax) for ax in axes]
        return plain({"type": ChartType.SUPERCHART.value, "title": title, "elements": elements})


def axes_chart(ax: Axes) -> dict[str, Any]:
    """One axes as a chart; what cannot be read is `unknown` with its title."""
    try:
        if _bar_containers(ax) and _only_bars(ax):
            chart = _bar_chart(ax)
        elif (boxes := _line_boxes(ax)) is not None:
            chart = _box_chart(ax, boxes)
        elif _only_lines(ax):
            chart = _line_chart(ax)
        else:
            chart = get_chart_from_ax(ax).model_dump(mode="json", warnings=False)
    except Exception:
        return {"type": ChartType.UNKNOWN.value, "title": ax.get_title() or None, "elements": []}
    for key in ("x_tick_labels", "y_tick_labels"):
        if key in chart:
            chart[key] = [_untex(label) for label in chart[key]]
    return chart


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _untex(label: str) -> str:
    """A tick label as plain text: `$\\mathdefault{10^{2}}$` (how log axes label ticks) as
    `10^{2}`, and matplotlib's typographic minus as `-`."""
    return _TEX.sub(r"\1", label).replace("$", "").replace("\u2212", "-")


def _drawn(ax: Axes) -> list[Any]:
    """The artists of an axes that draw data (not text, not reference lines)."""
    return [
        a
        for a in getattr(ax, "_children", [])  # every artist, in drawing order
        if not isinstance(a, Text) and not (isinstance(a, Line2D) and _is_reference_line(ax, a))
    ]


def _is_reference_line(ax: Axes, line: Line2D) -> bool:
    """`axhline`/`axvline` and the like: drawn across the axes, not at data coordinates (a
    two-point data line stays a series, where e2b-charts drops it as a grid line)."""
    return line.get_transform() != ax.transData


def _error_artists(ax: Axes) -> set[Any]:
    """Caps and bars of every error bar (not the data line they belong to)."""
    found: set[Any] = set()
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            _, caps, bars = container.lines
            found.update(caps)
            found.update(bars)
    return found


def _bar_containers(ax: Axes) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _only_bars(ax: Axes) -> bool:
    bars = {patch for c in _bar_containers(ax) for patch in c.patches}
    errors = _error_artists(ax)
    return all(a in bars or a in errors for a in _drawn(ax))


def _only_lines(ax: Axes) -> bool:
    """Lines only (some perhaps with error bars, which e2b-charts reads as an unknown plot)."""
    errors = _error_artists(ax)
    drawn = [a for a in _drawn(ax) if a not in errors]
    return bool(drawn) and all(isinstance(a, Line2D) for a in drawn)


def _errors_by_line(ax: Axes) -> dict[Line2D, dict[str, list]]:
    """For each line drawn with error bars: per point, [minus, plus] on y (and on x)."""
    found: dict[Line2D, dict[str, list]] = {}
    for container in ax.containers:
        if not isinstance(container, ErrorbarContainer) or container.lines[0] is None:
            continue
        line = container.lines[0]
        xs, ys = line.get_xdata(orig=False), line.get_ydata(orig=False)
        errors: dict[str, list] = {}
        for collection in container.lines[2]:
            segments = collection.get_segments()
            vertical = all(len(s) == 2 and s[0][0] == s[1][0] for s in segments)
            axis, values = ("errors", ys) if vertical else ("x_errors", xs)
            index = 1 if vertical else 0
            errors[axis] = [
                _extent(v, s[0][index], s[1][index]) for s, v in zip(segments, values, strict=False)
            ]
        found[line] = errors
    return found


def _extent(value: Any, a: Any, b: Any) -> list[float]:
    """An error bar from a to b around value as [minus, plus] (the float noise of the
    subtraction rounded off)."""
    low, high = sorted((float(a), float(b)))
    return [round(value - low, 12), round(high - value, 12)]


def _line_chart(ax: Axes) -> dict[str, Any]:
    """Series of points, error bars included, dates as dates; the axes' scales and ticks are
    e2b-charts'."""
    chart = LineChart(ax=ax)
    skip = _error_artists(ax)
    errors = _errors_by_line(ax)
    labels = {c.lines[0]: c.get_label() for c in ax.containers if isinstance(c, ErrorbarContainer)}
    elements = []
    for number, line in enumerate(ax.get_lines()):
        if line in skip or _is_reference_line(ax, line):
            continue
        label = str(labels.get(line) or line.get_label())
        if label.startswith("_"):
            label = f"Line {number}"
        points = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
        series = PointData(label=label, points=points).model_dump(mode="json", warnings=False)
        series.update(errors.get(line, {}))
        elements.append(series)
    chart.elements = []
    dumped = chart.model_dump(mode="json", warnings=False)
    dumped["elements"] = elements
    if dumped.get("x_scale") == "datetime":
        for series in elements:
            series["points"] = [[_as_date(x), y] for x, y in series["points"]]
    return dumped


def _as_date(x: Any) -> Any:
    """A date axis's number as the ISO date it stands for (dates given as dates stay)."""
    if isinstance(x, int | float):
        return mdates.num2date(x).isoformat()
    return x


def _bar_chart(ax: Axes) -> dict[str, Any]:
    """Bars read from their containers: e2b-charts takes bars of equal height for horizontal
    ones and labels bars by tick order, which fails for histograms and numeric positions."""
    chart = Chart2D(ax=ax, type=ChartType.BAR).model_dump(mode="json", warnings=False)
    containers = _bar_containers(ax)
    horizontal = containers[0].orientation == "horizontal"
    if horizontal:
        for a, b in (("x_label", "y_label"), ("x_unit", "y_unit")):
            chart[a], chart[b] = chart[b], chart[a]
    axis = ax.yaxis if horizontal else ax.xaxis
    ticks = _ticks(axis)
    elements = []
    stacked = False
    for number, container in enumerate(containers):
        group = container.get_label()
        if not group or group.startswith("_"):
            group = f"Group {number}"
        values = container.datavalues
        if values is None:
            values = [p.get_width() if horizontal else p.get_height() for p in container.patches]
        bar_errors = _bar_errors(container, values, horizontal)
        for index, (patch, value) in enumerate(zip(container.patches, values, strict=True)):
            start, size = (
                (patch.get_y(), patch.get_height())
                if horizontal
                else (
                    patch.get_x(),
                    patch.get_width(),
                )
            )
            base = patch.get_x() if horizontal else patch.get_y()
            stacked = stacked or base != 0
            element = {"label": _bar_label(start, size, ticks), "group": group, "value": value}
            if bar_errors is not None:
                element["error"] = bar_errors[index]
            elements.append(element)
    chart["elements"] = elements
    chart["stacked"] = stacked
    chart["orientation"] = "horizontal" if horizontal else "vertical"
    return chart


def _ticks(axis: Any) -> list[tuple[float, str]]:
    """An axis's major tick positions with their labels."""
    labels = [label.get_text() for label in axis.get_majorticklabels()]
    return list(zip(axis.get_majorticklocs(), labels, strict=False))


def _bar_label(start: float, size: float, ticks: list[tuple[float, str]]) -> str:
    """The label of the tick at the bar's centre, else the bar's range (a histogram's bin)."""
    centre = start + size / 2
    for position, label in ticks:
        if label and abs(position - centre) <= abs(size) * 0.01:
            return _untex(label)
    low, high = sorted((start, start + size))
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def _bar_errors(container: BarContainer, values: Any, horizontal: bool) -> list[list[float]] | None:
    """Each bar's error as [minus, plus], where error bars were drawn."""
    if container.errorbar is None:
        return None
    collections = [c for c in container.errorbar.lines[2] if isinstance(c, LineCollection)]
    if not collections:
        return None
    index = 0 if horizontal else 1
    errors = []
    for segment, patch in zip(collections[0].get_segments(), container.patches, strict=False):
        end = (
            patch.get_x() + patch.get_width() if horizontal else patch.get_y() + patch.get_height()
        )
        errors.append(_extent(end, segment[0][index], segment[1][index]))
    return errors


def _line_boxes(ax: Axes) -> list[dict[str, Any]] | None:
    """Box plots drawn with lines (matplotlib's default), read box by box; None unless every
    line of the axes belongs to a box."""
    lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    boxes = [line for line in lines if _is_box_outline(line)]
    if not boxes or not _drawn_lines_only(ax):
        return None
    vertical = _whisker_axis(lines, boxes) == "vertical"
    found = []
    used = set(boxes)
    for box in boxes:
        x0, y0, x1, y1 = _outline(box)
        if not vertical:
            x0, y0, x1, y1 = y0, x0, y1, x1
        stats: dict[str, Any] = {"first_quartile": y0, "third_quartile": y1, "outliers": []}
        centre = (x0 + x1) / 2
        for line in lines:
            if line in used:
                continue
            xs, ys = (
                (line.get_xdata(), line.get_ydata())
                if vertical
                else (
                    line.get_ydata(),
                    line.get_xdata(),
                )
            )
            if len(xs) == 2 and ys[0] == ys[1] and x0 <= min(xs) and max(xs) <= x1:
                if y0 <= ys[0] <= y1 and "median" not in stats:
                    stats["median"] = float(ys[0])
                    used.add(line)
            elif len(xs) == 2 and xs[0] == xs[1] == centre:
                low, high = sorted(ys)
                if high == y0:
                    stats["min"] = float(low)
                    used.add(line)
                elif low == y1:
                    stats["max"] = float(high)
                    used.add(line)
            elif line.get_linestyle() == "None" and len(xs) and all(x == centre for x in xs):
                stats["outliers"] = [float(y) for y in ys]
                used.add(line)
        if not {"median", "min", "max"} <= set(stats):
            return None
        stats["centre"] = centre
        found.append(stats)
    caps = [line for line in lines if line not in used]
    if any(len(line.get_xdata()) != 2 for line in caps):
        return None
    return found if vertical else [dict(box, horizontal=True) for box in found]


def _drawn_lines_only(ax: Axes) -> bool:
    return all(isinstance(a, Line2D) for a in _drawn(ax))


def _whisker_axis(lines: list[Line2D], boxes: list[Line2D]) -> str:
    for line in lines:
        if line in boxes or len(line.get_xdata()) != 2:
            continue
        xs, ys = line.get_xdata(), line.get_ydata()
        if xs[0] == xs[1] and ys[0] != ys[1]:
            return "vertical"
        if ys[0] == ys[1] and xs[0] != xs[1]:
            return "horizontal"
    return "vertical"


def _is_box_outline(line: Line2D) -> bool:
    """A closed axis-aligned rectangle of five points, as a box plot draws each box."""
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    if len(xs) != 5 or xs[0] != xs[4] or ys[0] != ys[4]:
        return False
    return len(set(xs)) == 2 and len(set(ys)) == 2


def _outline(line: Line2D) -> tuple[float, float, float, float]:
    xs, ys = line.get_xdata(), line.get_ydata()
    return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))


def _box_chart(ax: Axes, boxes: list[dict[str, Any]]) -> dict[str, Any]:
    horizontal = bool(boxes and boxes[0].get("horizontal"))
    chart = BoxAndWhiskerChart.model_construct(type=ChartType.BOX_AND_WHISKER)
    Chart2D._extract_info(chart, ax)
    dumped = chart.model_dump(mode="json", warnings=False)
    axis = ax.yaxis if horizontal else ax.xaxis
    ticks = _ticks(axis)
    if horizontal:
        for a, b in (("x_label", "y_label"), ("x_unit", "y_unit")):
            dumped[a], dumped[b] = dumped[b], dumped[a]
    dumped["elements"] = [
        {
            "label": next(
                (_untex(t) for p, t in ticks if p == box["centre"]), f"{box['centre']:g}"
            ),
            "min": box["min"],
            "first_quartile": box["first_quartile"],
            "median": box["median"],
            "third_quartile": box["third_quartile"],
            "max": box["max"],
            "outliers": box["outliers"],
        }
        for box in boxes
    ]
    return dumped
