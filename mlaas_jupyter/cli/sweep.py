"""``mlaas sweep``: a hyperparameter sweep of a training spec, through the core.

::

    mlaas sweep train.yaml --param model.params.dropout=0,0.1,0.3 \\
        --param training.learning_rate=loguniform:1e-4:1e-2 --trials 12 --parallel 2

It waits (unless ``--no-wait``) and prints a line per finished trial and the best
trial, whose bundle is registered as a model named after the sweep; ``mlaas sweeps``
lists, shows, cancels and deletes sweeps. :func:`add_sweep_arguments` and
:func:`sweep_options` are shared with ``%mlaas sweep``.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .train import add_training_overrides, with_overrides

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["add_parser", "add_sweep_arguments", "run", "sweep_options", "watch"]

_ENDED = ("succeeded", "failed", "cancelled", "lost")


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="training spec (YAML/JSON: dataset, model, training)")
    add_sweep_arguments(parser)
    add_training_overrides(parser)
    parser.add_argument(
        "--no-wait", action="store_true", help="print the sweep's id and return at once"
    )


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a sweep, shared by ``mlaas sweep`` and ``%mlaas sweep``."""
    parser.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="PATH=FORM",
        help="a swept spec path: choices 64,128,256, or uniform:a:b, loguniform:a:b, "
        "int:a:b, logint:a:b (repeat for several)",
    )
    parser.add_argument("--trials", type=int, help="trials (default: the grid size, else 10)")
    parser.add_argument("--parallel", type=int, default=1, help="trials at once (default 1)")
    parser.add_argument(
        "--sampler", choices=["grid", "random", "tpe"], default="tpe", help="default tpe"
    )
    parser.add_argument("--metric", help="epoch metric (default val_auc; regression val_loss)")
    parser.add_argument("--direction", choices=["maximize", "minimize"], help="default: by metric")
    parser.add_argument(
        "--no-prune", action="store_true", help="let every trial run all its epochs"
    )
    parser.add_argument("--seed", type=int, help="seed of the sampler")
    parser.add_argument("--executor", help="local, dask, kernel, or another installed one")
    parser.add_argument("--kernel", metavar="NAME", help="kernel spec of kernel jobs")
    parser.add_argument("--name", help="the sweep's name (and its best model's)")
    parser.add_argument(
        "--no-register", action="store_true", help="do not register the best trial's bundle"
    )


def parse_params(items: list[str]) -> dict[str, str]:
    """``["PATH=FORM", ...]`` -> ``{PATH: FORM}``; SpecError naming ``--param``."""
    params: dict[str, str] = {}
    for item in items:
        path, sep, form = item.partition("=")
        if not sep or not path.strip() or not form.strip():
            raise SpecError(
                "--param", f"expected PATH=FORM, e.g. training.epochs=2,4; got {item!r}"
            )
        if path.strip() in params:
            raise SpecError("--param", f"{path.strip()} is given twice")
        params[path.strip()] = form.strip()
    return params


def sweep_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :meth:`Client.submit_sweep` but the spec."""
    return {
        "params": parse_params(args.param),
        "trials": args.trials,
        "parallel": args.parallel,
        "sampler": args.sampler,
        "metric": args.metric,
        "direction": args.direction,
        "prune": not args.no_prune,
        "seed": args.seed,
        "executor": args.executor,
        "kernel_name": args.kernel,
        "name": args.name,
        "register": not args.no_register,
    }


def watch(client: Client, sweep_id: str, poll: float = 1.0) -> dict[str, Any]:
    """Wait for a sweep, printing each trial as it ends; its last record."""
    from ..client._sweep_table import trial_line

    shown: set[int] = set()
    while True:
        record = client.sweep(sweep_id)
        for trial in record["trials"]:
            if trial["state"] in (*_ENDED, "pruned") and trial["number"] not in shown:
                shown.add(trial["number"])
                print(trial_line(record, trial), flush=True)
        if record["state"] in _ENDED:
            return record
        time.sleep(poll)


def run(args: argparse.Namespace) -> int:
    from ..client import Client
    from ..client._sweep_table import SweepTable
    from ..specs.training import TrainSpec

    spec = with_overrides(TrainSpec.from_file(args.spec), args)
    client = Client()
    record = client.submit_sweep(spec, **sweep_options(args))
    print(
        f"sweep {record['id']} ({record['name']}): {record['trials_total']} trials, "
        f"{record['parallel']} at a time, {record['sampler']} sampler, {record['direction']} "
        f"{record['metric']}; {client.where}",
        flush=True,
    )
    if args.no_wait:
        return 0
    record = watch(client, record["id"])
    print(SweepTable(record).head)
    return 0 if record["state"] == "succeeded" else 1
