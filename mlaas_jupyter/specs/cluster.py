"""`ClusterSpec`: which dask cluster a job's parallel work runs on.

One of (YAML)::

    cluster: local                                   # a LocalCluster on this machine
    cluster: {local: {workers: 4, threads: 1}}
    cluster: {scheduler: tcp://scheduler.example.org:8786}
    cluster:
      gateway:                                       # dask-gateway (JupyterHub facilities)
        address: https://gateway.example.org
        auth: jupyterhub                             # basic | kerberos | jupyterhub | none
        cluster_options: {worker_cores: 2, worker_memory: 4}
        workers: 20                                  # or {minimum: 2, maximum: 50}
    cluster:
      jobqueue:                                      # dask-jobqueue on a batch system
        kind: htcondor                               # htcondor | slurm | pbs
        cores: 4
        memory: 8GB
        walltime: "02:00:00"
        workers: 10
        options: {job_extra_directives: {+JobFlavour: '"workday"'}}
    cluster: {scheduler: tcp://host:8786, timeout: 10}   # seconds to reach it (default 60)

Credentials never go in a spec (specs are stored with their jobs): ``auth: basic``
takes its password from ``DASK_GATEWAY__AUTH__KWARGS__PASSWORD`` (and the user from
``username``, ``DASK_GATEWAY__AUTH__KWARGS__USERNAME`` or the login name),
``auth: jupyterhub`` its token from ``JUPYTERHUB_API_TOKEN``.

The statistics pass, data-parallel training (``training.workers``) and predictions
over many files use it; a job spec without one uses the server's ``c.Mlaas.cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, GetJsonSchemaHandler, Tag, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from ._base import SpecModel, field_error
from ._types import Count, Number, Text, choice

__all__ = [
    "AdaptiveWorkers",
    "ClusterSpec",
    "GatewayCluster",
    "JobqueueCluster",
    "LocalCluster",
]

JobqueueKind = Literal["htcondor", "pbs", "slurm"]
GatewayAuth = Literal["basic", "jupyterhub", "kerberos", "none"]
_KINDS = ("local", "scheduler", "gateway", "jobqueue")


class AdaptiveWorkers(SpecModel):
    """Workers added and removed with the load, between ``minimum`` and ``maximum``."""

    minimum: Annotated[int, Field(ge=0, strict=True)] = 0
    maximum: Count

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveWorkers:
        if self.minimum > self.maximum:
            raise PydanticCustomError(
                "workers", "minimum ({low}) > maximum ({high})", {"low": self.minimum,
                                                                   "high": self.maximum}
            )  # fmt: skip
        return self


def _workers_kind(value: Any) -> str:
    return "dict" if isinstance(value, Mapping | AdaptiveWorkers) else "int"


#: a number of workers, or adaptive bounds; tagged so that an error in the bounds is
#: reported as such, not as "expected an integer" (the tags are left out of messages)
Workers = Annotated[
    Annotated[Count, Tag("int")] | Annotated[AdaptiveWorkers, Tag("dict")],
    Discriminator(_workers_kind),
]


class LocalCluster(SpecModel):
    """A ``distributed.LocalCluster`` of worker processes on this machine."""

    workers: Count = 2
    threads: Count = 1


class GatewayCluster(SpecModel):
    """A cluster of a dask-gateway server (what JupyterHub analysis facilities run)."""

    address: Text | None = Field(
        default=None,
        description="the gateway's URL; default: dask's gateway.address (what facilities "
        "set in their images, DASK_GATEWAY__ADDRESS)",
    )
    proxy_address: Text | None = Field(
        default=None, description="its scheduler proxy; default: dask's, or the address"
    )
    auth: Annotated[GatewayAuth, choice(GatewayAuth)] | None = Field(
        default=None, description="authentication; default: the gateway's configured one"
    )
    username: Text | None = Field(
        default=None,
        description="user of basic auth (its password: DASK_GATEWAY__AUTH__KWARGS__PASSWORD)",
    )
    cluster_options: dict[str, Any] = Field(
        default_factory=dict, description="the gateway's cluster options (worker_cores...)"
    )
    workers: Workers = 2


class JobqueueCluster(SpecModel):
    """Workers submitted as batch jobs by dask-jobqueue (HTCondor, Slurm, PBS)."""

    kind: Annotated[JobqueueKind, choice(JobqueueKind, {"condor": "htcondor"})]
    cores: Count = 1
    memory: Text = "4GB"
    walltime: Text | None = None
    queue: Text | None = None
    account: Text | None = Field(
        default=None, description="account charged (HTCondor: its accounting_group)"
    )
    disk: Text | None = Field(
        default=None, description="scratch disk of a worker job (HTCondor needs it)"
    )
    workers: Workers = 1
    options: dict[str, Any] = Field(
        default_factory=dict, description="other keyword arguments of the dask-jobqueue class"
    )

    @model_validator(mode="after")
    def _batch_system_keywords(self) -> JobqueueCluster:
        if self.kind != "htcondor" and self.disk is not None:
            raise field_error("disk", f"only HTCondor jobs request a disk, not {self.kind}")
        if self.kind == "htcondor" and self.queue is not None:
            raise field_error(
                "queue",
                "HTCondor has no queues: choose the job's class with "
                "options.job_extra_directives (e.g. {+JobFlavour: '\"workday\"'} at CERN)",
            )
        return self


class ClusterSpec(SpecModel):
    """Exactly one of ``local``, ``scheduler``, ``gateway`` or ``jobqueue``; the string
    ``local`` (or a scheduler address) is short for the mapping."""

    spec_root = "cluster"

    local: LocalCluster | None = None
    scheduler: Text | None = Field(default=None, description="a scheduler address")
    gateway: GatewayCluster | None = None
    jobqueue: JobqueueCluster | None = None
    timeout: Annotated[Number, Field(gt=0)] = Field(
        default=60.0,
        description="seconds to reach the scheduler or gateway, and for a gateway to "
        "start a cluster's scheduler (batch workers may queue longer)",
    )

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            text = data.strip()
            return {"local": {}} if text.lower() == "local" else {"scheduler": text}
        if isinstance(data, Mapping):
            # a key set to null is not given (a model dumped with its None fields)
            given = [k for k in _KINDS if data.get(k) is not None]
            if not given and "local" in data:  # ``local:`` with nothing after it
                return {**data, "local": {}}
            if len(given) != 1:
                raise PydanticCustomError(
                    "cluster",
                    "give exactly one of local, scheduler, gateway, jobqueue (got {given})",
                    {"given": ", ".join(given) or "none"},
                )
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        mapping = {**handler(schema), "anyOf": [{"required": [k]} for k in _KINDS]}
        short = {
            "type": "string",
            "minLength": 1,
            "description": "'local', or a scheduler address (tcp://host:8786)",
        }
        return {"anyOf": [short, mapping]}

    @property
    def kind(self) -> str:
        """``local``, ``scheduler``, ``gateway`` or ``jobqueue``."""
        for name in _KINDS:
            if getattr(self, name) is not None:
                return name
        return "local"

    @property
    def address(self) -> str | None:
        """The scheduler's or the gateway's address (None for the other kinds)."""
        return self.scheduler or (self.gateway.address if self.gateway else None)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (only the kind given) that :meth:`parse` turns back into
        an equal spec."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return data
