"""Finding the Jupyter server a :class:`~mlaas_jupyter.client.Client` should talk to.

Without an explicit URL the client looks, in this order, at ``$MLAAS_SERVER_URL`` and
``$MLAAS_TOKEN``; at JupyterHub's ``$JUPYTERHUB_SERVICE_URL`` (or
``http://127.0.0.1:8888`` + ``$JUPYTERHUB_SERVICE_PREFIX``) with
``$JUPYTERHUB_API_TOKEN``; and at the runtime files of this user's running Jupyter
servers (the one whose root folder holds the current folder, or the only one). Only
finding happens here: whether the server answers, and has the ``mlaas`` extension, is
the client's to check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["discover"]


def discover() -> tuple[str, str, str] | None:
    """(url, token, where it came from) of the Jupyter server to use, if any."""
    if url := os.environ.get("MLAAS_SERVER_URL"):
        return url, os.environ.get("MLAAS_TOKEN", ""), "MLAAS_SERVER_URL"
    prefix, hub_token = (
        os.environ.get("JUPYTERHUB_SERVICE_PREFIX"),
        os.environ.get("JUPYTERHUB_API_TOKEN"),
    )
    if prefix and hub_token:
        url = os.environ.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:8888" + prefix
        url = url.replace("//0.0.0.0:", "//127.0.0.1:")
        return url, hub_token, "JupyterHub"
    try:
        from jupyter_server.serverapp import list_running_servers

        servers = list(list_running_servers())
    except Exception:
        return None
    cwd = Path.cwd().resolve()
    best: tuple[int, dict[str, Any]] | None = None
    for info in servers:
        root = info.get("root_dir") or info.get("notebook_dir")
        if not root:
            continue
        root_path = Path(root).expanduser().resolve()
        if (cwd == root_path or root_path in cwd.parents) and (
            best is None or len(root_path.parts) > best[0]
        ):
            best = (len(root_path.parts), info)
    chosen = best[1] if best else (servers[0] if len(servers) == 1 else None)
    if chosen is None:
        return None
    return str(chosen["url"]), str(chosen.get("token", "")), "Jupyter runtime file"
