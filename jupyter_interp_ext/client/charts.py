"""Chart data as typed objects with E2B's class and field names (`ChartType`, `BarChart`,
`LineChart`…), so code written for `e2b_code_interpreter` reads `result.chart` unchanged.

The server sends a figure's data as plain JSON (see `in_kernel/charts.py`); `chart_from_dict`
types it. What E2B's classes lack and ours carry (error bars, a bar chart's orientation) stays
reachable through `to_dict()`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ChartType(str, enum.Enum):
    """What kind of chart a figure is."""

    LINE = "line"
    SCATTER = "scatter"
    BAR = "bar"
    PIE = "pie"
    BOX_AND_WHISKER = "box_and_whisker"
    SUPERCHART = "superchart"
    UNKNOWN = "unknown"


class ScaleType(str, enum.Enum):
    """How an axis is scaled."""

    LINEAR = "linear"
    DATETIME = "datetime"
    CATEGORICAL = "categorical"
    LOG = "log"
    SYMLOG = "symlog"
    LOGIT = "logit"
    FUNCTION = "function"
    FUNCTIONLOG = "functionlog"
    ASINH = "asinh"
    UNKNOWN = "unknown"


@dataclass
class Chart:
    """A chart: its type, title and elements, and the JSON it came from (`to_dict()`)."""

    type: ChartType
    title: str | None
    elements: list[Any]
    raw: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The chart's data as the server sent it."""
        return self.raw


@dataclass
class Chart2D(Chart):
    """A chart with two axes, their labels and units."""

    x_label: str | None = None
    y_label: str | None = None
    x_unit: str | None = None
    y_unit: str | None = None


@dataclass
class PointData:
    """One series of points."""

    label: str
    points: list[tuple[Any, Any]]


@dataclass
class PointChart(Chart2D):
    """A chart of points on two scaled axes."""

    x_ticks: list[Any] = field(default_factory=list)
    x_tick_labels: list[str] = field(default_factory=list)
    x_scale: ScaleType = ScaleType.UNKNOWN
    y_ticks: list[Any] = field(default_factory=list)
    y_tick_labels: list[str] = field(default_factory=list)
    y_scale: ScaleType = ScaleType.UNKNOWN


@dataclass
class LineChart(PointChart):
    """Lines: each element a `PointData`."""


@dataclass
class ScatterChart(PointChart):
    """Scattered points: each element a `PointData`."""


@dataclass
class BarData:
    """One bar."""

    label: str
    group: str
    value: Any


@dataclass
class BarChart(Chart2D):
    """Bars: each element a `BarData`."""


@dataclass
class PieData:
    """One slice."""

    label: str
    angle: float
    radius: float


@dataclass
class PieChart(Chart):
    """Slices: each element a `PieData`."""


@dataclass
class BoxAndWhiskerData:
    """One box: its quartiles, whiskers and outliers."""

    label: str
    min: float
    first_quartile: float
    median: float
    third_quartile: float
    max: float
    outliers: list[float] = field(default_factory=list)


@dataclass
class BoxAndWhiskerChart(Chart2D):
    """Boxes: each element a `BoxAndWhiskerData`."""


@dataclass
class SuperChart(Chart):
    """A figure of several charts: each element a chart."""


def _scale(value: Any) -> ScaleType:
    try:
        return ScaleType(value)
    except ValueError:
        return ScaleType.UNKNOWN


def _axes(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data.get(name) for name in ("x_label", "y_label", "x_unit", "y_unit")}


def _points(data: dict[str, Any]) -> dict[str, Any]:
    return {
        **_axes(data),
        "x_ticks": list(data.get("x_ticks") or []),
        "x_tick_labels": list(data.get("x_tick_labels") or []),
        "x_scale": _scale(data.get("x_scale")),
        "y_ticks": list(data.get("y_ticks") or []),
        "y_tick_labels": list(data.get("y_tick_labels") or []),
        "y_scale": _scale(data.get("y_scale")),
    }


def chart_from_dict(data: dict[str, Any] | None) -> Chart | None:
    """The typed chart for a figure's chart data (None for none)."""
    if not data:
        return None
    kind = data.get("type") or ChartType.UNKNOWN.value
    title, raw = data.get("title"), data
    items = list(data.get("elements") or [])
    if kind in (ChartType.LINE.value, ChartType.SCATTER.value):
        series = [PointData(e.get("label", ""), [tuple(p) for p in e["points"]]) for e in items]
        cls = LineChart if kind == ChartType.LINE.value else ScatterChart
        return cls(ChartType(kind), title, list(series), raw, **_points(data))
    if kind == ChartType.BAR.value:
        bars = [BarData(e.get("label", ""), e.get("group", ""), e.get("value")) for e in items]
        return BarChart(ChartType.BAR, title, list(bars), raw, **_axes(data))
    if kind == ChartType.PIE.value:
        slices = [
            PieData(e.get("label", ""), e.get("angle", 0.0), e.get("radius", 0.0)) for e in items
        ]
        return PieChart(ChartType.PIE, title, list(slices), raw)
    if kind == ChartType.BOX_AND_WHISKER.value:
        boxes = [
            BoxAndWhiskerData(
                e.get("label", ""),
                e["min"],
                e["first_quartile"],
                e["median"],
                e["third_quartile"],
                e["max"],
                list(e.get("outliers") or []),
            )
            for e in items
        ]
        return BoxAndWhiskerChart(ChartType.BOX_AND_WHISKER, title, list(boxes), raw, **_axes(data))
    if kind == ChartType.SUPERCHART.value:
        charts = [chart for chart in map(chart_from_dict, items) if chart is not None]
        return SuperChart(ChartType.SUPERCHART, title, list(charts), raw)
    known = kind if kind in {t.value for t in ChartType} else ChartType.UNKNOWN.value
    return Chart(ChartType(known), title, items, raw)
