"""Sphinx configuration: Markdown pages (MyST), the PyData theme, the Python client's reference
from its docstrings, and the configuration table generated from the traits themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import TraitType

from jupyter_interp_ext import __version__
from jupyter_interp_ext.app import InterpreterApp

project = "jupyter_interp_ext"
author = "jupyter_interp_ext contributors"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated/*.md"]
suppress_warnings = ["myst.xref_missing"]

html_theme = "pydata_sphinx_theme"
html_title = "jupyter_interp_ext"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
# Docstrings here are written with Markdown's `code`: show single backquotes as code.
default_role = "literal"

GENERATED = Path(__file__).parent / "_generated"
MIB = 1024 * 1024


def shown_default(trait: TraitType[Any, Any]) -> str:
    """A trait's default as a reader wants it (sizes in MiB, classes by name)."""
    value = trait.default_value
    if isinstance(value, type):
        return f"`{value.__name__}`"
    if isinstance(value, bool) or value in (None, "", [], {}):
        return f"`{value!r}`"
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        return f"{value // MIB} MiB"
    if isinstance(value, dict):
        return ", ".join(f"`{k}`: `{v}`" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value)
    return f"`{value}`"


def configuration_table() -> str:
    """Every option of every configurable class, from the traits: one source of truth."""
    lines = []
    for cls in (InterpreterApp, *InterpreterApp.classes):
        lines.append(f"## {cls.__name__}\n")
        lines.append(" ".join((cls.__doc__ or "").split()) + "\n")
        for name, trait in sorted(cls.class_own_traits(config=True).items()):
            meaning = " ".join(trait.help.split())
            lines.append(f"`{cls.__name__}.{name}` (default {shown_default(trait)})\n: {meaning}\n")
    return "\n".join(lines)


def write_generated(app: Any) -> None:
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "configuration-table.md").write_text(configuration_table())


def setup(app: Any) -> None:
    app.connect("builder-inited", write_generated)
