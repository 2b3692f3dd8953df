"""Each context's notebook: its runs as cells, written through the ContentsManager, and
appended live to a document open with jupyter-collaboration."""
