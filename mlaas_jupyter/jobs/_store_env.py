"""Where a job store lives by default, and whether the process that owns a job is alive.

What :class:`~mlaas_jupyter.jobs.store.JobStore` takes from its surroundings rather than
from its file: the default locations of the store file and of the run folders
(``$MLAAS_JOB_STORE``, ``$MLAAS_RUNS_DIR``, else the Jupyter data folder), and the
identity (``host:pid``) of the process that creates a job, which the store records so
that only the jobs of processes that are gone are marked lost.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["default_runs_dir", "default_store_path", "owner_alive", "this_owner"]


def _data_dir() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlaas"


def default_store_path() -> Path:
    """``$MLAAS_JOB_STORE``, else ``<jupyter data dir>/mlaas/jobs.sqlite``."""
    env = os.environ.get("MLAAS_JOB_STORE")
    return Path(env) if env else _data_dir() / "jobs.sqlite"


def default_runs_dir() -> Path:
    """``$MLAAS_RUNS_DIR``, else ``<jupyter data dir>/mlaas/runs`` (one folder per job)."""
    env = os.environ.get("MLAAS_RUNS_DIR")
    return Path(env) if env else _data_dir() / "runs"


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process ``host:pid`` that owns a job is still running (and is not us).

    A job of this very process counts as not alive: a new store or manager in the
    same process means the one that ran it is gone. Another host cannot be checked
    and counts as gone (a restarted container gets a new host name).
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
