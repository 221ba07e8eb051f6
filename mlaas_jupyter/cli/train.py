"""``mlaas train``: train from a spec file, or from MLaaS4HEP's inputs, into a bundle."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from ..errors import SpecError


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec", nargs="?", help="training spec (YAML/JSON: dataset, model, training)"
    )
    parser.add_argument(
        "--model", help="model file defining model(idim), or a built-in: mlp, deepsets, bdt"
    )
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument("--run-dir", help="folder for checkpoints, plots and the bundle")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's last checkpoint"
    )
    parser.add_argument(
        "--json", action="store_true", help="print events as JSON lines instead of a progress bar"
    )
    legacy = add_mlaas4hep_arguments(parser)
    legacy.add_argument("--fout", help="output folder (MLaaS4HEP's --fout); same as --run-dir")


def add_mlaas4hep_arguments(parser: argparse.ArgumentParser) -> Any:
    """The MLaaS4HEP input options (``--files --labels --params --preproc``), shared by
    ``mlaas train`` and ``%mlaas train``; returns their argument group."""
    legacy = parser.add_argument_group("MLaaS4HEP inputs")
    legacy.add_argument("--files", help="files.txt: one (logical) file name per line")
    legacy.add_argument("--labels", help="labels.txt: one label per line of files.txt")
    legacy.add_argument("--params", help="params.json")
    legacy.add_argument("--preproc", help="preproc.json (new branches and cuts)")
    return legacy


class ProgressPrinter:
    """Prints events as a one-line progress bar plus one line per epoch."""

    def __init__(self, stream: TextIO | None = None, as_json: bool = False) -> None:
        # sys.stderr is looked up now, not at import: redirections made later still apply
        self.stream = stream if stream is not None else sys.stderr
        self.as_json = as_json

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(event, default=str), flush=True)
            return
        kind = event["type"]
        if kind == "progress":
            done = event["batch"] / max(event["batches"], 1)
            bar = "#" * int(done * 30)
            self.stream.write(
                f"\repoch {event['epoch']} [{bar:<30}] {event['batch']}/{event['batches']} "
                f"{event['events_per_s']:,.0f} events/s"
            )
            self.stream.flush()
        elif kind == "epoch":
            shown = {
                k: event[k]
                for k in ("loss", "val_loss", "val_accuracy", "val_auc")
                if event.get(k) is not None
            }
            values = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            self.stream.write(f"\repoch {event['epoch']}/{event['epochs']}  {values}{' ' * 20}\n")
        elif kind in ("stats", "model", "note", "early_stop"):
            details = {k: v for k, v in event.items() if k not in ("type", "features")}
            self.stream.write(f"{kind}: {details}\n")


def _legacy_spec(args: argparse.Namespace) -> Any:
    from ..train.compat import from_mlaas4hep

    missing = [
        flag for flag in ("files", "labels", "model", "params") if getattr(args, flag) is None
    ]
    if missing:
        raise SpecError(
            "--" + missing[0], "MLaaS4HEP inputs need --files, --labels, --model and --params"
        )
    spec, _ = from_mlaas4hep(args.files, args.labels, args.model, args.params, args.preproc)
    return spec


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..train.runner import train
    from ..train.spec import BUILTINS, ModelSpec, TrainSpec

    if args.spec is None and args.files is None:
        raise SpecError("spec", "give a training spec file, or MLaaS4HEP inputs (--files ...)")
    if args.spec is not None:
        spec = TrainSpec.from_file(args.spec)
        if args.model is not None:
            model = (
                ModelSpec(name=args.model)
                if args.model in BUILTINS
                else ModelSpec(name=None, file=args.model)
            )
            spec = replace(spec, model=model)
    else:
        spec = _legacy_spec(args)
    if args.epochs is not None:
        spec = spec.with_training(epochs=args.epochs)
    if args.resume:
        spec = spec.with_training(resume=True)
    result = train(
        spec, on_event=ProgressPrinter(as_json=args.json), run_dir=args.run_dir or args.fout
    )
    if not args.json:
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
        print("test metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        print(f"bundle: {result.bundle}")
    return 0
