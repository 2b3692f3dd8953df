"""Rich data on results, set up inside Python kernels by their prelude.

A matplotlib figure's display also carries its chart data (`CHART_MIME`); a pandas DataFrame's
or Series' carries its rows as a Table Schema data resource (`TABLE_MIME`, the Jupyter
convention). The formatters are registered by type *name*: nothing here imports matplotlib or
pandas, so a kernel that never imports them pays nothing, and the chart extractor itself is
imported on the first figure shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from jupyter_interp_ext.protocol.mimes import CHART_MIME, TABLE_MIME


def install(shell: Any, *, charts: bool, table_rows: int, table_bytes: int) -> None:
    """Add the chart and table formatters to an IPython shell (limits 0: no tables)."""
    formatters = shell.display_formatter.formatters
    if charts:
        formatters[CHART_MIME] = _formatter(CHART_MIME, {("matplotlib", "Figure"): _figure_chart})
    if table_rows > 0 and table_bytes > 0:

        def as_table(obj: Any) -> dict[str, Any] | None:
            return table_resource(obj, table_rows, table_bytes)

        types = {("pandas", "DataFrame"): as_table, ("pandas", "Series"): as_table}
        formatters[TABLE_MIME] = _formatter(TABLE_MIME, types)


def _formatter(mime: str, handlers: Mapping[tuple[str, str], Callable[[Any], Any]]) -> Any:
    """An IPython formatter for `mime` that handles the classes named in `handlers` (and
    their subclasses) by top-level package and name (pandas 3 names its classes' module
    `pandas`, older ones `pandas.core.frame`). Not IPython's `for_type_by_name`: the inline
    matplotlib backend removes every formatter's Figure printers when it starts."""
    from IPython.core.formatters import JSONFormatter

    class NamedTypesFormatter(JSONFormatter):
        def __call__(self, obj: Any) -> Any:
            for cls in type(obj).__mro__:
                handler = handlers.get((cls.__module__.partition(".")[0], cls.__name__))
                if handler is not None:
                    try:
                        return handler(obj)
                    except Exception:  # rich data is a bonus: never an error in a cell
                        return None
            return None

    return NamedTypesFormatter(format_type=mime)


def _figure_chart(figure: Any) -> dict[str, Any] | None:
    try:
        from .charts import figure_chart
    except ImportError:  # matplotlib without the `datascience` extra's extractor
        return None
    return figure_chart(figure)


def table_resource(obj: Any, max_rows: int, max_bytes: int) -> dict[str, Any] | None:
    """A DataFrame or Series as `{schema, data}` (pandas' `to_json(orient="table")`), its first
    rows only when it has more than `max_rows` or its JSON would pass `max_bytes`; then `note`
    says so. None for what Table Schema cannot describe (MultiIndex columns…)."""
    try:
        frame = obj.to_frame() if obj.ndim == 1 else obj
        total = len(frame)
        rows = min(total, max_rows)
        while True:
            text = frame.head(rows).to_json(orient="table", date_format="iso", default_handler=str)
            if len(text.encode()) <= max_bytes or rows == 0:
                break
            rows //= 2
        resource = json.loads(text)
    except Exception:
        return None
    if rows < total:
        resource["note"] = (
            f"first {rows} of {total} rows (the limits are {max_rows} rows and {max_bytes} bytes)"
        )
    return resource
