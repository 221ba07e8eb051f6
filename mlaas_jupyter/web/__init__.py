"""The one HTTP layer: the routes of the core service as a Jupyter server extension.

The same handlers serve inside JupyterLab's server and in ``mlaas serve`` (a Jupyter
server of its own); ``openapi.json`` beside this file is generated from the routes
and the request models (``python -m mlaas_jupyter.web.openapi``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MlaasExtension", "_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The extension points for ``jupyter server extension`` (one ExtensionApp)."""
    from .extension import MlaasExtension

    return [{"module": "mlaas_jupyter", "app": MlaasExtension}]


def __getattr__(name: str) -> Any:
    # lazy: importing the package must not import jupyter_server (the CLI does not need it)
    if name == "MlaasExtension":
        from .extension import MlaasExtension

        return MlaasExtension
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
