"""The batch systems (dask-jobqueue) and analysis-facility gateways (dask-gateway)
of :mod:`mlaas_jupyter.stream.distributed`: the keyword arguments a
:class:`~mlaas_jupyter.specs.cluster.ClusterSpec` becomes, checked before anything
starts, and the gateway's credentials (from the environment, never from a spec).
"""

from __future__ import annotations

import difflib
import inspect
import os
from typing import Any

from ..errors import MlaasError, SpecError
from ..specs.cluster import GatewayCluster, JobqueueCluster

__all__ = ["gateway_address", "gateway_auth", "jobqueue_cluster", "jobqueue_options", "refused"]

_JOBQUEUE = {"htcondor": "HTCondorCluster", "pbs": "PBSCluster", "slurm": "SLURMCluster"}
#: keywords of the dask-jobqueue classes that are set from the spec's own fields
_INTERNAL = {"self", "asynchronous", "loop", "job_cls", "n_workers"}


# -- dask-jobqueue ---------------------------------------------------------------------


def _keywords(cls: type) -> set[str]:
    """The keyword arguments the ``__init__`` methods of ``cls`` and its bases name."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                names.add(param.name)
    return names


def _seconds(walltime: str) -> int:
    """``"02:30:00"``, ``"30:00"`` or ``"9000"`` in seconds (HTCondor's MaxRuntime)."""
    try:
        parts = [int(p) for p in walltime.split(":")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise SpecError("cluster.jobqueue.walltime", f"expected HH:MM:SS, got {walltime!r}")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def jobqueue_options(spec: JobqueueCluster) -> tuple[type, dict[str, Any]]:
    """The dask-jobqueue class of ``spec.kind`` and its keyword arguments.

    Raises
    ------
    SpecError
        For an option the class does not take (naming it and the closest ones), or
        one that repeats a field of the spec.
    """
    import dask_jobqueue

    cls: type = getattr(dask_jobqueue, _JOBQUEUE[spec.kind])
    allowed = (_keywords(cls) | _keywords(cls.job_cls)) - _INTERNAL  # type: ignore[attr-defined]
    fields = set(JobqueueCluster.model_fields) & set(spec.options)
    if fields:
        name = sorted(fields)[0]
        raise SpecError(f"cluster.jobqueue.options.{name}", f"set it as cluster.jobqueue.{name}")
    for name in sorted(set(spec.options) - allowed):
        close = difflib.get_close_matches(name, sorted(allowed), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise SpecError(
            f"cluster.jobqueue.options.{name}",
            f"not an option of dask-jobqueue's {cls.__name__} ({spec.kind}){hint}",
        )
    options: dict[str, Any] = {"cores": spec.cores, "memory": spec.memory, **spec.options}
    if spec.disk is not None:
        options["disk"] = spec.disk
    if spec.kind == "htcondor":
        # HTCondor has no walltime or account keywords: they are submit-file lines
        extra = dict(options.get("job_extra_directives") or {})
        if spec.walltime is not None:
            extra.setdefault("+MaxRuntime", _seconds(spec.walltime))
        if spec.account is not None:
            extra.setdefault("accounting_group", spec.account)
        if extra:
            options["job_extra_directives"] = extra
    else:
        for key in ("walltime", "queue", "account"):
            if getattr(spec, key) is not None:
                options[key] = getattr(spec, key)
    return cls, options


def jobqueue_cluster(spec: JobqueueCluster, **extra: Any) -> Any:
    """The dask-jobqueue cluster object of ``spec``, with its scheduler started here
    and no worker submitted yet: ``job_script()`` is the batch job each worker
    becomes. Use it as a context manager (its scheduler closes on exit)."""
    cls, options = jobqueue_options(spec)
    try:
        return cls(**options, **extra)
    except (TypeError, ValueError, RuntimeError) as err:  # a value it refuses, no scheduler
        raise MlaasError(f"cluster.jobqueue: cannot make the {spec.kind} cluster: {err}") from err


# -- dask-gateway ----------------------------------------------------------------------


def _auth_setting(name: str) -> str | None:
    """A keyword of the gateway's authentication: the environment as it is now
    (``DASK_GATEWAY__AUTH__KWARGS__<NAME>``; dask read it only at import), then dask's
    configuration (``gateway.auth.kwargs.<name>``), templates filled in."""
    import dask
    from dask_gateway.utils import format_template

    value = os.environ.get(f"DASK_GATEWAY__AUTH__KWARGS__{name.upper()}")
    if value is None:
        value = dask.config.get(f"gateway.auth.kwargs.{name}", None)
    return None if value is None else str(format_template(str(value)))


def gateway_address(spec: GatewayCluster) -> str | None:
    """The gateway's address: the spec's, else dask's ``gateway.address``."""
    if spec.address is not None:
        return spec.address
    import dask
    from dask_gateway.utils import format_template

    configured = dask.config.get("gateway.address", None)
    return None if configured is None else str(format_template(str(configured)))


def gateway_auth(spec: GatewayCluster) -> Any:
    """The ``dask_gateway.auth`` object of ``spec.auth`` (default: the dask config's
    ``gateway.auth.type``, itself ``basic`` by default); secrets come from the
    environment, never from the spec."""
    import dask
    from dask_gateway.auth import BasicAuth, GatewayAuth, JupyterHubAuth, get_auth

    kind = spec.auth or str(dask.config.get("gateway.auth.type", None) or "basic")
    if kind == "none":
        return GatewayAuth()
    if kind == "basic":
        user = spec.username or _auth_setting("username")
        return BasicAuth(username=user, password=_auth_setting("password"))
    if kind == "jupyterhub":
        token = _auth_setting("api_token") or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise MlaasError(
                f"cluster.gateway.auth: jupyterhub authentication to "
                f"{gateway_address(spec) or 'the gateway'} needs a "
                "token: set JUPYTERHUB_API_TOKEN (JupyterHub sets it in its servers)"
            )
        return JupyterHubAuth(api_token=token)
    return get_auth(kind)  # kerberos, or a class path from the dask config


def refused(spec: GatewayCluster, auth: Any) -> str:
    user = getattr(auth, "username", None)
    who = f" as user {user!r}" if user else ""
    hint = (
        " (its password: DASK_GATEWAY__AUTH__KWARGS__PASSWORD)"
        if type(auth).__name__ == "BasicAuth"
        else ""
    )
    return f"authentication refused{who}{hint}"
