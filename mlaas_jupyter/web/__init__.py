"""The Jupyter Server extension of mlaas-jupyter: REST API, jobs and the event bus.

Register it as the server extension module ``mlaas_jupyter.web`` (the package's
``jupyter-config`` does so); the REST API lives under ``{base_url}mlaas/api/`` and is
described by ``openapi.yaml`` next to this file.
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
