"""MIME types on the wire: the short names a `result` event carries its formats under, and the
types of the chart and table data this package adds."""

from __future__ import annotations

# Our own type for a matplotlib figure's chart data (the client's `result.chart`).
CHART_MIME = "application/vnd.jupyter-interp-ext.chart+json"
# A DataFrame's or Series' rows as a Table Schema data resource (the Jupyter convention).
TABLE_MIME = "application/vnd.dataresource+json"

# Short name on a `result` event → the Jupyter MIME type it carries (the official client reads
# these names; other types travel under `data`). The client reverses it to rebuild a bundle.
FORMATS: dict[str, str] = {
    "text": "text/plain",
    "html": "text/html",
    "markdown": "text/markdown",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "pdf": "application/pdf",
    "latex": "text/latex",
    "json": "application/json",
    "javascript": "application/javascript",
    "chart": CHART_MIME,
}

# Jupyter MIME type → its short name on a `result` event.
RESULT_KEYS: dict[str, str] = {mime: name for name, mime in FORMATS.items()}
