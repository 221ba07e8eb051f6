"""dask-jobqueue clusters (no batch system here): the job script each worker becomes,
and a wrong option refused by name before anything is submitted."""

from __future__ import annotations

from typing import Any

import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs.cluster import ClusterSpec, JobqueueCluster
from mlaas_jupyter.stream.distributed import jobqueue_cluster

pytest.importorskip("dask_jobqueue")


def batch(**fields: Any) -> JobqueueCluster:
    spec = ClusterSpec.parse({"jobqueue": fields}).jobqueue
    assert spec is not None
    return spec


def script(spec: JobqueueCluster) -> list[str]:
    with jobqueue_cluster(spec, scheduler_options={"dashboard_address": None}) as cluster:
        return [line.strip() for line in cluster.job_script().splitlines()]


def test_htcondor_job_script_like_cern_lxbatch() -> None:
    lines = script(
        batch(
            kind="condor",
            cores=4,
            memory="8GB",
            disk="10GB",
            walltime="02:30:00",
            account="group_u_CMS.u_zh",
            options={
                "job_extra_directives": {"+JobFlavour": '"workday"'},
                "python": "/cvmfs/sft.cern.ch/lcg/views/LCG_107/x86_64-el9-gcc13-opt/bin/python",
            },
        )
    )
    assert lines[0] == "#!/usr/bin/env condor_submit"
    assert "MY.DaskWorkerCores = 4" in lines
    assert "MY.DaskWorkerMemory = 8000000000" in lines
    assert "MY.DaskWorkerDisk = 10000000000" in lines
    assert '+JobFlavour = "workday"' in lines
    assert "+MaxRuntime = 9000" in lines  # the walltime, in seconds
    assert "accounting_group = group_u_CMS.u_zh" in lines
    arguments = next(line for line in lines if line.startswith("Arguments"))
    assert "/cvmfs/sft.cern.ch/lcg/views/LCG_107/x86_64-el9-gcc13-opt/bin/python -m" in arguments


def test_slurm_job_script() -> None:
    lines = script(
        batch(
            kind="slurm",
            cores=8,
            memory="16GB",
            walltime="04:00:00",
            queue="short",
            account="hep",
            options={"processes": 1, "job_extra_directives": ["--constraint=cpu"]},
        )
    )
    assert lines[0] == "#!/usr/bin/env bash"
    for line in (
        "#SBATCH -p short",
        "#SBATCH -A hep",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=15G",
        "#SBATCH -t 04:00:00",
        "#SBATCH --constraint=cpu",
    ):
        assert line in lines
    assert any("--nthreads 8" in line for line in lines)


def test_pbs_job_script() -> None:
    lines = script(
        batch(kind="PBS", cores=2, memory="4GB", walltime="00:30:00", queue="q1", account="a1")
    )
    for line in (
        "#PBS -q q1",
        "#PBS -A a1",
        "#PBS -l select=1:ncpus=2:mem=3815MB",
        "#PBS -l walltime=00:30:00",
    ):
        assert line in lines


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kind": "slurm", "options": {"job_extra_directive": ["--x"]}},
            "cluster.jobqueue.options.job_extra_directive: not an option of dask-jobqueue's "
            "SLURMCluster (slurm); did you mean job_extra_directives",
        ),
        (
            {"kind": "pbs", "options": {"walltime": "01:00:00"}},
            "cluster.jobqueue.options.walltime: set it as cluster.jobqueue.walltime",
        ),
        (
            {"kind": "htcondor", "walltime": "two hours"},
            "cluster.jobqueue.walltime: expected HH:MM:SS, got 'two hours'",
        ),
    ],
)
def test_a_wrong_option_is_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        jobqueue_cluster(batch(**fields))
    assert str(info.value).startswith(message)
