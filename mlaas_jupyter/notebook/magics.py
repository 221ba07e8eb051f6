"""``%mlaas`` and ``%%mlaas``: train, follow and use models from notebook cells.

``%load_ext mlaas_jupyter`` registers them. Every sub-command calls the same core as
the CLI and the REST API: :class:`~mlaas_jupyter.client.Client` for jobs and for the
per-class yields of ``%mlaas stats``, :func:`~mlaas_jupyter.cli.inspect.describe` for files and
:func:`~mlaas_jupyter.inference.friend.write_friend_tree` for predictions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..cli.train import with_overrides
from ..client import Client, Comparison, Report
from ..client._job import Job
from ..client._sweep_table import SweepTable
from ..client._table import JobTable, job_progress
from ..errors import MlaasError
from ._magic_args import parse, usage
from ._yields import YieldTable
from .widgets._sweep_view import SweepView, show_sweep

__all__ = ["JobTable", "MlaasMagics", "YieldTable", "current_client"]


_client: Client | None = None
#: the sub-commands that take a YAML cell body (``%%mlaas train``, ``%%mlaas stats``)
_CELL_COMMANDS = ("train", "stats")


def current_client() -> Client:
    """The session's client (the Jupyter server when one answers, else in process)."""
    global _client
    if _client is None:
        _client = Client()
    return _client


def _where(job: Job) -> str:
    client = job.client
    if client.transport == "http":
        return f"the {job.executor} executor of {client.where}"
    return f"the {job.executor} executor, {client.where} ({client.reason})"


def _cell_mapping(command: str, cell: str, file_given: bool, keys: str) -> dict[str, Any]:
    """The YAML mapping of a ``%%mlaas COMMAND`` cell body; one-line UsageErrors."""
    if file_given:
        raise UsageError(f"%%mlaas {command}: give the spec in the cell or as a file, not both")
    try:
        data = yaml.safe_load(cell)
    except yaml.YAMLError as err:
        raise UsageError(f"%%mlaas {command}: the cell is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"%%mlaas {command}: the cell must be a YAML mapping ({keys})")
    return data


def _spec_from(args: argparse.Namespace, cell: str | None) -> dict[str, Any]:
    """The TrainSpec dict of ``%mlaas train``, with file paths made absolute (the server
    or a job kernel may run in another folder)."""
    from ..specs.training import TrainSpec
    from ..train.compat import from_mlaas4hep

    cwd = Path.cwd()
    if cell is not None and cell.strip():
        given = args.spec is not None or args.files is not None
        spec = TrainSpec.from_dict(_cell_mapping("train", cell, given, "dataset, model..."), cwd)
    elif args.spec is not None:
        if not Path(args.spec).is_file():
            raise UsageError(f"%mlaas train: no spec file {args.spec!r} (in {cwd})")
        spec = TrainSpec.from_file(Path(args.spec).resolve())
    elif args.files is not None:
        missing = [f"--{k}" for k in ("labels", "model", "params") if getattr(args, k) is None]
        if missing:
            raise UsageError(f"%mlaas train: MLaaS4HEP inputs also need {', '.join(missing)}")
        spec, _ = from_mlaas4hep(args.files, args.labels, args.model, args.params, args.preproc)
    else:
        raise UsageError("%mlaas train: give a spec file, a YAML cell body, or --files ...")
    return with_overrides(spec, args).to_dict()


def _dataset_from(args: argparse.Namespace, cell: str | None) -> dict[str, Any]:
    """The DatasetSpec dict of ``%mlaas stats`` (a training spec's ``dataset:`` too),
    with file paths made absolute (the server may run in another folder)."""
    from ..specs.dataset import DatasetSpec

    if cell is not None and cell.strip():
        data = _cell_mapping("stats", cell, args.spec is not None, "classes, tree...")
        if isinstance(data.get("dataset"), dict):
            data = data["dataset"]
        return DatasetSpec.from_dict(data, Path.cwd()).to_dict()
    if args.spec is None:
        raise UsageError("%mlaas stats: give a spec file, or a YAML cell body (%%mlaas stats)")
    if not Path(args.spec).is_file():
        raise UsageError(f"%mlaas stats: no spec file {args.spec!r} (in {Path.cwd()})")
    return DatasetSpec.from_file(Path(args.spec).resolve()).to_dict()


@magics_class
class MlaasMagics(Magics):
    """The ``%mlaas`` line magic and ``%%mlaas`` cell magic."""

    @line_cell_magic
    def mlaas(self, line: str, cell: str | None = None) -> Any:
        command, args = parse(line)
        if cell is not None and command not in _CELL_COMMANDS:
            raise UsageError(
                f"%%mlaas {command}: only %%mlaas train and %%mlaas stats take a cell body"
            )
        handler: Callable[..., Any] = getattr(self, f"_{command}")
        try:
            return handler(args, cell) if command in _CELL_COMMANDS else handler(args)
        except MlaasError as err:
            raise UsageError(f"%mlaas {command}: {err}") from None

    def _help(self, args: argparse.Namespace) -> None:
        print(usage(args.topic))

    def _train(self, args: argparse.Namespace, cell: str | None) -> Job:
        spec = _spec_from(args, cell)
        job = Job.submit(
            spec,
            executor=args.executor,
            kernel_name=args.kernel,
            name=args.name,
            client=current_client(),
        )
        print(f"job {job.id} submitted to {_where(job)}")
        _show_monitor(job)
        if args.wait:
            job.wait()
            info = job.info
            if info["state"] != "succeeded":
                print(f"job {job.id} {info['state']}: {info.get('error') or ''}", file=sys.stderr)
        return job

    def _stats(self, args: argparse.Namespace, cell: str | None) -> YieldTable | dict[str, Any]:
        summary = current_client().dataset_stats(_dataset_from(args, cell))
        return summary if args.json else YieldTable(summary)

    def _jobs(self, args: argparse.Namespace) -> JobTable:
        return JobTable(current_client().jobs(state=args.state, limit=args.limit))

    def _status(self, args: argparse.Namespace) -> Job:
        job = Job(current_client().job(args.job_id), current_client())
        info = job.info
        print(f"job {job.id} ({info.get('name')}): {info['state']} on {_where(job)}")
        if progress := job_progress(info):
            print(f"  progress: {progress}")
        metrics = {k: v for k, v in (info.get("metrics") or {}).items() if _number(v)}
        if metrics:
            print("  metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        for key in ("bundle", "error"):
            if info.get(key):
                print(f"  {key}: {info[key]}")
        return job

    def _cancel(self, args: argparse.Namespace) -> None:
        job = current_client().cancel(args.job_id)
        print(f"job {job['id']}: {job['state']}")

    def _resume(self, args: argparse.Namespace) -> Job:
        client = current_client()
        job = Job(client.resume(args.job_id), client)
        print(f"job {job.id} resumed on {_where(job)}")
        _show_monitor(job)
        if args.wait:
            job.wait()
            info = job.info
            if info["state"] != "succeeded":
                print(f"job {job.id} {info['state']}: {info.get('error') or ''}", file=sys.stderr)
        return job

    def _logs(self, args: argparse.Namespace) -> None:
        print(current_client().logs(args.job_id), end="")

    def _compare(self, args: argparse.Namespace) -> Comparison:
        comparison = current_client().compare(*args.runs)
        if args.out is not None:
            print(f"wrote {comparison.save(args.out)}")
        return comparison

    def _report(self, args: argparse.Namespace) -> Report:
        from ..client._report import report
        from ..specs.requests import JOB_ID

        # a run folder is read here: no server, no core for it
        if Path(args.run).is_dir() or not JOB_ID.fullmatch(args.run):
            found = report(None, args.run)
        else:
            found = current_client().report(args.run)
        if args.html is not None:
            print(f"wrote {found.save(args.html)}")
        return found

    def _sweep(self, args: argparse.Namespace) -> SweepView:
        from ..cli.sweep import sweep_options, watch
        from ..specs.training import TrainSpec

        if not Path(args.spec).is_file():
            raise UsageError(f"%mlaas sweep: no spec file {args.spec!r} (in {Path.cwd()})")
        spec = with_overrides(TrainSpec.from_file(Path(args.spec).resolve()), args)
        client = current_client()
        record = client.submit_sweep(spec, **sweep_options(args))
        print(f"sweep {record['id']} ({record['name']}) submitted to {client.where}")
        if args.wait:
            record = watch(client, record["id"])
        return show_sweep(record)

    def _sweeps(self, args: argparse.Namespace) -> Any:
        client = current_client()
        if args.sweep_id is None:
            if args.cancel:
                raise UsageError("%mlaas sweeps --cancel: give the sweep's ID")
            return [SweepTable(record).head.splitlines()[0] for record in client.sweeps()]
        call = client.cancel_sweep if args.cancel else client.sweep
        return show_sweep(call(args.sweep_id))

    def _inspect(self, args: argparse.Namespace) -> Any:
        from ..cli.inspect import remarks, report, survey

        # what mlaas inspect says: the trees, then what else the files hold and what
        # cannot be read (MlaasError when nothing can)
        found = survey(args.files, args.tree).checked()
        if args.json:
            for line in remarks(found):
                print(line, file=sys.stderr)
            return [info.to_dict() for info in found.trees]
        print(report(found))
        return None

    def _predict(self, args: argparse.Namespace) -> str | dict[str, Any]:
        from ..inference.bundle import load_bundle
        from ..inference.friend import write_friend_tree
        from ..specs.prediction import default_output

        if len(args.files) > 1 or args.cluster is not None:  # the done event: per-file results
            from ..cli.predict import score_files

            task = {"tree": args.tree, "prefix": args.prefix}
            return score_files(args.bundle, args.files, args.output, args.cluster, **task)
        args.file = args.files[0]
        if not Path(args.file).exists():
            raise UsageError(f"%mlaas predict: no file {args.file!r} (in {Path.cwd()})")
        bundle = load_bundle(args.bundle)
        # by default scores/ beside the input, where no glob naming the inputs reaches
        output = args.output or str(default_output(args.file, args.prefix))
        written = write_friend_tree(bundle, args.file, output, args.tree, args.prefix)
        print(f"scored {written} entries with {bundle.name!r}; wrote {output}")
        return str(output)

    def _connect(self, args: argparse.Namespace) -> Client:
        global _client
        if args.in_process == (args.url is not None):
            raise UsageError("%mlaas connect: give a URL, or --in-process")
        new = Client(transport="in-process") if args.in_process else Client(args.url, args.token)
        _client = new
        print(f"connected: {new!r}")
        return new


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show_monitor(job: Job) -> None:
    """Display the live monitor widget when the widget stack can display here."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return  # a terminal IPython cannot show widgets
    from IPython.display import display

    from .widgets import TrainingMonitor

    display(TrainingMonitor(job))
