"""``mlaas train``: train from a spec file, or from MLaaS4HEP's inputs, into a bundle."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._progress import progress_bar
from ..errors import NotFound, SpecError

if TYPE_CHECKING:
    from ..specs.training import TrainSpec


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec", nargs="?", help="training spec (YAML/JSON: dataset, model, training)"
    )
    parser.add_argument(
        "--model", help="model file defining model(idim), or a built-in: mlp, deepsets, bdt"
    )
    add_training_overrides(parser)
    parser.add_argument("--run-dir", help="folder for checkpoints, plots and the bundle")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the run folder's last checkpoint; without --run-dir, the "
        "latest checkpointed run of the same spec under training.output",
    )
    parser.add_argument(
        "--json", action="store_true", help="print events as JSON lines instead of a progress bar"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep the libraries' start-up lines (TensorFlow's oneDNN and absl lines)",
    )
    legacy = add_mlaas4hep_arguments(parser)
    legacy.add_argument("--fout", help="output folder (MLaaS4HEP's --fout); same as --run-dir")


def add_training_overrides(parser: argparse.ArgumentParser) -> None:
    """``--epochs``, ``--workers``, ``--folds`` and ``--cluster``, shared by ``mlaas train``
    and ``%mlaas train``; :func:`with_overrides` applies them."""
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument(
        "--workers", type=int, help="override training.workers (data-parallel torch ranks)"
    )
    parser.add_argument(
        "--folds", type=int, help="override training.folds (k models, each tested on its fold)"
    )
    parser.add_argument(
        "--cluster",
        metavar="local|ADDRESS|YAML",
        help="dask cluster of the statistics pass and of the data-parallel ranks (overrides "
        "the spec's): 'local', a scheduler address, a YAML file or an inline YAML mapping",
    )


def with_overrides(spec: TrainSpec, args: argparse.Namespace) -> TrainSpec:
    """``spec`` with the options of :func:`add_training_overrides` that were given
    (validated again: ``--workers 0`` is a SpecError naming ``training.workers``)."""
    from .predict import cluster_option

    changes = {
        k: getattr(args, k) for k in ("epochs", "workers", "folds") if getattr(args, k) is not None
    }
    if changes:
        spec = spec.with_training(**changes)
    if args.cluster is not None:
        spec = spec.model_copy(update={"cluster": cluster_option(args.cluster)})
    return spec


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
    """A view of the training events: JSON lines on stdout (``as_json``), or a ``tqdm``
    bar per epoch (drawn where someone watches, see :func:`~mlaas_jupyter._progress.
    progress_bar`) plus one line per epoch and per notable event on ``stream``."""

    def __init__(
        self, stream: TextIO | None = None, as_json: bool = False, bars: bool | None = None
    ) -> None:
        # sys.stderr is looked up now, not at import: redirections made later still apply
        self.stream = stream if stream is not None else sys.stderr
        self.as_json = as_json
        self.bars = bars
        self._bar: Any = None
        self._bar_epoch: int | None = None
        #: the run folder, once the run has started (said when it is interrupted)
        self.run_dir: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "start":
            self.run_dir = str(event["run_dir"])
        if self.as_json:
            print(json.dumps(event, default=str), flush=True)
            return
        kind = event["type"]
        if kind == "progress":
            self._progress(event)
        elif kind == "epoch":
            self._close_bar()
            shown = {
                k: event[k]
                for k in ("loss", "val_loss", "val_accuracy", "val_auc")
                if event.get(k) is not None
            }
            values = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            fold = f"fold {event['fold']}  " if "fold" in event else ""
            self._line(f"{fold}epoch {event['epoch']}/{event['epochs']}  {values}")
        elif kind == "fold":  # k-fold: one fold's test metrics
            shown = {k: v for k, v in event["metrics"].items() if isinstance(v, float)}
            values = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            self._line(f"fold {event['fold']} test  {values}")
        elif kind == "note" and set(event) == {"type", "message"}:
            self._line(f"note: {event['message']}")
        elif kind in ("stats", "model", "note", "early_stop"):
            details = {k: v for k, v in event.items() if k not in ("type", "features")}
            self._line(f"{kind}: {details}")
        elif kind in ("test", "done", "error", "cancelled"):
            self._close_bar()

    def _progress(self, event: dict[str, Any]) -> None:
        if self._bar is None or self._bar_epoch != event["epoch"]:
            self._close_bar()
            self._bar = progress_bar(
                total=max(int(event["batches"]), 1),
                desc=f"epoch {event['epoch']}",
                unit="batch",
                show=self.bars,
                file=self.stream,
                leave=False,  # the epoch's line replaces it
                smoothing=0,  # the epoch's mean rate, like the events' events_per_s
                mininterval=0,  # progress events come at most once a second: draw each
                miniters=1,
            )
            self._bar_epoch = event["epoch"]
            rate = float(event.get("events_per_s") or 0.0)
            if not self._bar.disable and rate > 0:
                # made at the epoch's first progress event: its clock starts with the epoch
                self._bar.start_t -= float(event.get("events", 0)) / rate
        self._bar.set_postfix_str(f"{event['events_per_s']:,.0f} events/s", refresh=False)
        self._bar.update(max(int(event["batch"]) - self._bar.n, 0))

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = self._bar_epoch = None

    def close(self) -> None:
        """Take an unfinished bar off the screen (the run stopped in an epoch)."""
        self._close_bar()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _legacy_spec(args: argparse.Namespace) -> Any:
    from ..train.compat import from_mlaas4hep

    missing = [
        flag for flag in ("files", "labels", "model", "params") if getattr(args, flag) is None
    ]
    if missing:
        raise SpecError(
            "--" + missing[0], "MLaaS4HEP inputs need --files, --labels, --model and --params"
        )
    with warnings.catch_warnings():  # said once, as the run's note events (spec.notes)
        warnings.simplefilter("ignore", UserWarning)
        spec, _ = from_mlaas4hep(args.files, args.labels, args.model, args.params, args.preproc)
    return spec


def interrupted(args: argparse.Namespace, run_dir: str | None, epochs: int) -> str:
    """The one line of a run stopped by Ctrl-C: what it kept, and the command that
    resumes it (the options that chose its spec, its run folder and ``--resume``)."""
    from ..train._runs import checkpoint_epoch

    epoch = checkpoint_epoch(run_dir) if run_dir is not None else None
    if run_dir is None:
        return "mlaas train: interrupted before the run started"
    if epoch is None:
        return (
            f"mlaas train: interrupted before the first epoch ended; nothing to resume in "
            f"{run_dir} (start again without --resume)"
        )
    command = ["mlaas", "train", *([args.spec] if args.spec is not None else [])]
    for option in ("files", "labels", "params", "preproc", "model", "epochs", "workers", "folds"):
        if getattr(args, option, None) is not None:
            command += [f"--{option}", str(getattr(args, option))]
    if args.cluster is not None:
        command += ["--cluster", args.cluster]
    command += ["--run-dir", str(Path(run_dir)), "--resume"]
    return (
        f"mlaas train: interrupted after epoch {epoch} of {epochs}, checkpointed in "
        f"{run_dir}; resume with: {shlex.join(command)}"
    )


def run(args: argparse.Namespace) -> int:
    from ..specs.training import BUILTINS, ModelSpec, TrainSpec
    from ..train._runs import checkpoint_epoch
    from ..train.runner import train

    if args.spec is None and args.files is None:
        raise SpecError("spec", "give a training spec file, or MLaaS4HEP inputs (--files ...)")
    if args.verbose:  # read where TensorFlow is imported, here and in rank processes
        from ..train._tf_quiet import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"
    if args.spec is not None:
        spec = TrainSpec.from_file(args.spec)
        if args.model is not None:
            model = (
                ModelSpec(name=args.model)
                if args.model in BUILTINS
                else ModelSpec(name=None, file=args.model)
            )
            spec = spec.model_copy(update={"model": model})
    else:
        spec = _legacy_spec(args)
    spec = with_overrides(spec, args)
    run_dir = args.run_dir or args.fout
    if args.resume:
        if run_dir is not None and checkpoint_epoch(run_dir) is None:
            raise NotFound(
                f"nothing to resume in {run_dir}: it has no checkpoint "
                "(checkpoint/progress.json); train without --resume to start a run there"
            )
        spec = spec.with_training(resume=True)
    printer = ProgressPrinter(as_json=args.json)
    try:
        result = train(
            spec,
            on_event=printer,
            run_dir=run_dir,
            progress=False if args.json else None,  # --json: nothing but JSON lines
        )
    except KeyboardInterrupt:
        printer.close()
        print(interrupted(args, printer.run_dir, spec.training.epochs), file=sys.stderr)
        return 130
    finally:
        printer.close()
    if not args.json:
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
        print("test metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        cut = result.metrics.get("best_cut")
        if isinstance(cut, dict):
            print(
                f"best cut: score >= {cut['score']:.3g}, expected significance Z "
                f"{cut['significance']:.3g} (s {cut['signal']:,.0f}, b {cut['background']:,.0f})"
            )
        print(f"bundle: {result.bundle}")
    return 0
