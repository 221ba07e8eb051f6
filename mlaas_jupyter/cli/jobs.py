"""``mlaas jobs``: submit and follow jobs through the core, like ``%mlaas`` does.

::

    mlaas jobs submit train.yaml --executor dask --wait
    mlaas jobs list --state running
    mlaas jobs show ID | logs ID | events ID | wait ID | cancel ID | delete ID
    mlaas jobs resume ID --wait      # a lost job, again: same id, from its checkpoint

The client finds the Jupyter server this shell belongs to (``$MLAAS_SERVER_URL``,
JupyterHub, the running server whose root holds the current folder), else runs the
core in this process: then ``submit --wait`` is needed for the job to finish before
the command exits (its jobs become lost when it does).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``mlaas jobs``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    submit = actions.add_parser("submit", help="submit a training spec (YAML/JSON)")
    submit.add_argument("spec", help="training spec file")
    submit.add_argument("--executor", help="local, dask, kernel, or another installed one")
    submit.add_argument("--kernel", metavar="NAME", help="kernel spec of kernel jobs")
    submit.add_argument("--name", help="the job's name")
    submit.add_argument("--wait", action="store_true", help="block until the job finishes")
    listing = actions.add_parser("list", help="the jobs, newest first")
    listing.add_argument("--state", help="comma-separated states (queued,running,...)")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (20)")
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    resume = actions.add_parser(
        "resume", help="run a lost job again, the same job, from its last checkpoint"
    )
    resume.add_argument("job_id", metavar="ID")
    resume.add_argument("--wait", action="store_true", help="block until the job finishes")
    for name, text in (
        ("show", "one job's record (JSON)"),
        ("logs", "what a job printed"),
        ("events", "a job's events as JSON lines"),
        ("wait", "block until a job finishes; exit 1 unless it succeeded"),
        ("cancel", "cancel a queued or running job"),
        ("delete", "remove a finished job, its events and its run folder"),
    ):
        actions.add_parser(name, help=text).add_argument("job_id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    """Run one action; a job that ends other than succeeded exits with 1."""
    from ..client import Client
    from ..client._table import JobTable

    client = Client()
    action = args.action
    if action == "submit":
        job = client.submit(
            args.spec, executor=args.executor, kernel_name=args.kernel, name=args.name
        )
        print(f"job {job['id']} ({job['name']}): {job['executor']} executor, {client.where}")
        return _finished(client.wait(job["id"])) if args.wait else 0
    if action == "list":
        jobs = client.jobs(state=args.state, limit=args.limit)
        print(json.dumps(jobs, indent=1) if args.json else repr(JobTable(jobs)))
        return 0
    if action == "logs":
        print(client.logs(args.job_id), end="")
        return 0
    if action == "events":
        for event in client.events(args.job_id):
            print(json.dumps(event))
        return 0
    if action == "wait":
        return _finished(client.wait(args.job_id))
    if action == "resume":
        job = client.resume(args.job_id)
        print(f"job {job['id']} ({job['name']}): {job['state']} again, {client.where}")
        return _finished(client.wait(job["id"])) if args.wait else 0
    calls = {"show": client.job, "cancel": client.cancel, "delete": client.delete}
    print(json.dumps(calls[action](args.job_id), indent=1))
    return 0


def _finished(job: dict[str, Any]) -> int:
    metrics = {k: v for k, v in (job.get("metrics") or {}).items() if isinstance(v, float)}
    shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"job {job['id']}: {job['state']}" + (f"  {shown}" if shown else ""))
    if job.get("error"):
        print(f"error: {job['error']}")
    return 0 if job["state"] == "succeeded" else 1
