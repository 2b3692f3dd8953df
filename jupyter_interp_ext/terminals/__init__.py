"""Terminals: the client's PTY routes on Jupyter's own terminals."""
