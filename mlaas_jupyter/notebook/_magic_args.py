"""The grammar of ``%mlaas``: one argparse sub-parser per sub-command.

argparse prints usage and calls ``sys.exit`` on bad input; in a notebook that would be
a ``SystemExit`` traceback. :class:`MagicParser` turns every such exit into an
IPython ``UsageError``, which IPython shows as one short line.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
from typing import NoReturn

from IPython.core.error import UsageError

from ..cli.predict import add_cluster_option
from ..cli.sweep import add_sweep_arguments
from ..cli.train import add_mlaas4hep_arguments, add_training_overrides

__all__ = ["SUBCOMMANDS", "MagicParser", "parse", "usage"]

SUBCOMMANDS = {
    "train": "submit a training job: %mlaas train SPEC.yaml, or %%mlaas train with a YAML body",
    "jobs": "list the jobs (newest first)",
    "status": "show one job: state, progress, metrics, bundle, error",
    "cancel": "cancel a queued or running job",
    "resume": "run a lost job again, the same job, from its last checkpoint: %mlaas resume ID",
    "logs": "print what a job printed",
    "compare": "finished runs side by side: %mlaas compare ID ID ... (job ids or run folders)",
    "report": "a finished run's training report: %mlaas report ID (or RUN_DIR) [--html FILE]",
    "sweep": "a hyperparameter sweep: %mlaas sweep SPEC.yaml --param PATH=FORM ... --trials N",
    "sweeps": "list the sweeps, or show one: %mlaas sweeps [ID]",
    "stats": "per class events and expected yield of a spec: %mlaas stats SPEC.yaml, or a cell",
    "inspect": "list the trees and branches of ROOT files",
    "predict": "score ROOT files with a bundle into friend trees (--cluster: on dask)",
    "connect": "use the Jupyter server at URL (or --in-process: the core in this kernel)",
    "help": "this help, or %mlaas help COMMAND",
}


class MagicParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ``UsageError`` messages, never exits."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see %mlaas help {self.prog.split()[-1]})")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message.strip() if message else f"{self.prog}: stopped")


def _build() -> dict[str, MagicParser]:
    parsers: dict[str, MagicParser] = {}

    def new(name: str) -> MagicParser:
        parser = MagicParser(prog=f"%mlaas {name}", description=SUBCOMMANDS[name], add_help=False)
        parsers[name] = parser
        return parser

    train = new("train")
    train.add_argument("spec", nargs="?", help="training spec file (YAML/JSON)")
    train.add_argument("--executor", choices=["kernel", "dask", "local"], help="where to run")
    train.add_argument("--kernel", metavar="NAME", help="kernel spec of the kernel executor")
    train.add_argument("--name", help="the job's name")
    train.add_argument("--wait", action="store_true", help="block until the job finishes")
    add_training_overrides(train)
    legacy = add_mlaas4hep_arguments(train)
    legacy.add_argument("--model", help="the MLaaS4HEP model file, defining model(idim)")

    jobs = new("jobs")
    jobs.add_argument(
        "--state", choices=["queued", "running", "succeeded", "failed", "cancelled", "lost"]
    )
    jobs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    for name in ("status", "cancel", "logs"):
        new(name).add_argument("job_id", metavar="ID", help="the job's id")
    resume = new("resume")
    resume.add_argument("job_id", metavar="ID", help="the lost job's id")
    resume.add_argument("--wait", action="store_true", help="block until the job finishes")

    compare = new("compare")
    compare.add_argument("runs", nargs="+", metavar="ID", help="job ids and/or run folders (2+)")
    compare.add_argument("--out", metavar="FILE", help="also write the figure (.png/.pdf/.svg)")

    report = new("report")
    report.add_argument("run", metavar="ID_OR_RUN_DIR", help="a job id or a run folder")
    report.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")

    sweep = new("sweep")
    sweep.add_argument("spec", help="training spec file (YAML/JSON)")
    add_sweep_arguments(sweep)
    add_training_overrides(sweep)
    sweep.add_argument("--wait", action="store_true", help="block until the sweep ends")
    sweeps = new("sweeps")
    sweeps.add_argument("sweep_id", nargs="?", metavar="ID", help="show this sweep")
    sweeps.add_argument("--cancel", action="store_true", help="cancel the sweep ID")

    stats = new("stats")
    stats.add_argument("spec", nargs="?", help="dataset or training spec file (YAML/JSON)")
    stats.add_argument("--json", action="store_true", help="return the whole summary as a dict")

    inspect = new("inspect")
    inspect.add_argument("files", nargs="+", metavar="FILE", help="files, folders or globs")
    inspect.add_argument("--tree", metavar="NAME", help="only this tree")
    inspect.add_argument("--json", action="store_true", help="return the description as JSON")

    predict = new("predict")
    predict.add_argument("bundle", metavar="BUNDLE", help="bundle folder (a job's bundle)")
    predict.add_argument("files", nargs="+", metavar="FILE", help="ROOT file(s) to score")
    predict.add_argument("--tree", metavar="NAME", help="tree (default: the training tree)")
    predict.add_argument(
        "--output",
        metavar="OUT.root|DIR",
        help="friend tree file (folder for several files); default: scores/ beside each input",
    )
    predict.add_argument("--prefix", default="score", help="score branch name (default score)")
    add_cluster_option(predict)

    connect = new("connect")
    connect.add_argument("url", nargs="?", metavar="URL", help="the Jupyter server's URL")
    connect.add_argument("--token", help="the server's API token")
    connect.add_argument(
        "--in-process", action="store_true", help="run the core in this kernel, no server"
    )

    new("help").add_argument("topic", nargs="?", metavar="COMMAND")
    return parsers


PARSERS = _build()


def usage(topic: str | None = None) -> str:
    """The help text of ``%mlaas`` or of one sub-command."""
    if topic is None:
        width = max(map(len, SUBCOMMANDS))
        lines = [f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()]
        return "%mlaas COMMAND [options]   (%%mlaas train|stats: the cell is a YAML spec)\n\n" + (
            "\n".join(lines)
        )
    if topic not in PARSERS:
        raise UsageError(_unknown(topic))
    return PARSERS[topic].format_help().strip()


def _unknown(command: str) -> str:
    close = difflib.get_close_matches(command, SUBCOMMANDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"%mlaas: unknown command {command!r}{hint} (commands: {', '.join(SUBCOMMANDS)})"


def parse(line: str) -> tuple[str, argparse.Namespace]:
    """Split ``line`` into its sub-command and checked arguments."""
    try:
        words = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"%mlaas: cannot split the line: {err}") from None
    if not words:
        raise UsageError("%mlaas: give a command\n\n" + usage())
    command, rest = words[0], words[1:]
    if command in ("-h", "--help"):
        command = "help"
    if command not in PARSERS:
        raise UsageError(_unknown(command))
    if "-h" in rest or "--help" in rest:
        return "help", argparse.Namespace(topic=command)
    return command, PARSERS[command].parse_args(rest)
