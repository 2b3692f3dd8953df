"""A Jupyter Server extension serving the Cloudflare Sandbox code-interpreter API."""

from jupyter_interp_ext._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict]:
    from jupyter_interp_ext.app import InterpreterApp

    return [{"module": "jupyter_interp_ext.app", "app": InterpreterApp}]
