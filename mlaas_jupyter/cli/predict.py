"""``mlaas predict``: score the events of files with a trained bundle.

The scores are written as a friend tree (same tree name, same entries in the same
order): by default to ``scores/<stem>_score.root`` beside each input, where a dataset's
glob (``data/signal_*.root``) does not reach, or to ``--out scores.root``; ``--json``
prints the scores of the first ``--limit`` entries of one file instead. Several files
(or ``--cluster``) are a prediction run
(:func:`~mlaas_jupyter.inference.batch.run_prediction`) writing one friend tree per
input (into the folder ``--out`` when given), on the dask cluster of ``--cluster``
when given::

    mlaas predict bundle/ data/*.root --cluster local    # data/scores/*_score.root
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_cluster_option", "add_parser", "cluster_option", "run", "score_files"]

CLUSTER_HELP = (
    "score the files on a dask cluster, one task per file: 'local', a scheduler "
    "address (tcp://host:8786), a YAML file or an inline YAML mapping"
)


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """The ``--cluster local|ADDRESS|YAML`` option (``mlaas predict``, ``mlaas models
    score``, ``%mlaas predict``)."""
    parser.add_argument("--cluster", metavar="local|ADDRESS|YAML", help=CLUSTER_HELP)


def cluster_option(text: str | None) -> dict[str, Any] | None:
    """The cluster mapping of a ``--cluster`` value (None for None).

    ``local``, a scheduler address, a YAML/JSON file (the cluster mapping, or a spec
    whose ``cluster:`` is used) or an inline mapping (``{local: {workers: 4}}``).

    Raises
    ------
    SpecError
        Naming ``--cluster`` (or the file) when the value is none of these.
    """
    import yaml

    from ..errors import SpecError
    from ..specs._base import load_mapping
    from ..specs.cluster import ClusterSpec

    if text is None:
        return None
    value: Any = text.strip()
    where = "--cluster"
    if value.startswith("{"):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise SpecError("--cluster", f"not a valid YAML mapping: {err}") from None
    elif Path(value).suffix.lower() in (".yaml", ".yml", ".json") or Path(value).is_file():
        where = f"{value}: cluster"
        mapping = load_mapping(value)
        value = mapping.get("cluster", mapping)  # a job spec's cluster, or the mapping
    elif value.lower() != "local" and ":" not in value:
        raise SpecError(
            "--cluster",
            f"{text!r} is not 'local', a scheduler address (tcp://host:8786), "
            "a YAML file or a mapping",
        )
    return ClusterSpec.parse(value, where).to_dict()


DEFAULT_LIMIT = 1000


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas predict``."""
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by mlaas train")
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="ROOT (or Parquet/CSV) files, folders or globs"
    )
    parser.add_argument("--tree", metavar="NAME", help="tree to score (default: the training tree)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--out",
        metavar="SCORES.root|DIR",
        help="write the scores as a friend tree (a folder of them for several files); "
        "default: scores/<name>_<prefix>.root beside each input",
    )
    mode.add_argument("--json", action="store_true", help="print the scores as JSON instead")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"with --json: score only the first N entries (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--prefix", default="score", help="score branch name (default: score)")
    parser.add_argument("--step-size", default="64 MB", help="bytes or entries read per chunk")
    parser.add_argument(
        "--engine",
        choices=("auto", "onnxruntime", "native"),
        default="auto",
        help="auto: ONNX Runtime when the bundle has an ONNX model (one file only)",
    )
    add_cluster_option(parser)


def _step(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def run(args: argparse.Namespace) -> int:
    """Write the friend tree (``--out``) or print JSON scores (``--json``)."""
    from ..errors import DataError
    from ..inference.bundle import load_bundle

    if args.limit is not None and not args.json:
        raise DataError("--limit applies to --json only")
    if args.limit is not None and args.limit < 0:
        raise DataError(f"--limit must be >= 0, got {args.limit}")
    step = _step(str(args.step_size))
    first = args.files[0]
    pattern = any(char in first for char in "*?[") or Path(first).is_dir()
    if len(args.files) > 1 or args.cluster is not None or pattern:
        if args.json:
            raise DataError("--json scores one file; give --out for several files or --cluster")
        return _run_many(args, step)
    args.file = args.files[0]
    bundle = load_bundle(args.bundle, engine=args.engine)
    if args.json:
        import numpy as np

        limit = DEFAULT_LIMIT if args.limit is None else args.limit
        source = bundle.open_source(args.file, args.tree)
        try:
            parts = list(bundle.iter_scores(source, step, entry_stop=limit)) if limit else []
            entries, tree = source.entries, source.name
        finally:
            source.close()
        scores = np.concatenate(parts) if parts else np.zeros(0)
        document = {
            "bundle": bundle.name,
            "task": bundle.task,
            "classes": bundle.classes,
            "file": args.file,
            "tree": tree,
            "entries": entries,
            "scored": len(scores),
            "scores": scores.tolist(),
        }
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
        if len(scores) < entries:
            print(
                f"note: scored the first {len(scores)} of {entries} entries (--limit)",
                file=sys.stderr,
            )
        return 0
    from .._progress import progress_bar
    from ..inference.friend import score_branches, write_friend_tree
    from ..specs.prediction import default_output

    # by default scores/ beside the input: out of reach of the globs naming the inputs
    out = args.out or str(default_output(args.file, args.prefix))
    source = bundle.open_source(args.file, args.tree)  # the bar's total; DataError early
    try:
        entries = source.entries
    finally:
        source.close()
    with progress_bar(total=entries, desc="scoring", unit="event") as bar:
        written = write_friend_tree(
            bundle, args.file, out, args.tree, args.prefix, step, on_chunk=bar.update
        )
    branches = ", ".join(score_branches(bundle, args.prefix))
    print(
        f"scored {written} entries with {bundle.name!r} ({bundle.engine}); "
        f"wrote {out} (branches {branches})"
    )
    return 0


def _run_many(args: argparse.Namespace, step: int | str) -> int:
    """Several files (or ``--cluster``): a prediction run, one friend tree per input."""
    from ..errors import DataError

    if args.engine != "auto":
        raise DataError("--engine applies to one file scored here; leave it out")
    task = {"tree": args.tree, "prefix": args.prefix, "step_size": step}
    done = score_files(args.bundle, args.files, args.out, args.cluster, **task)
    metrics = done["metrics"]
    print(f"scored {metrics['entries']} entries of {metrics['files']} files")
    return 0


def score_files(
    bundle: str, files: list[str], out: str | None, cluster: str | None = None, **task: Any
) -> dict[str, Any]:
    """Score ``files`` with the bundle folder ``bundle`` into friend trees in ``out``
    (None: in ``scores/`` beside each input), in this process or on the ``--cluster``
    value ``cluster``, with a progress bar of files; prints one line per file (entries,
    or why it failed) and returns the ``done`` event. Relative paths are taken from the
    current folder (a cluster's workers may run elsewhere). The other ``task`` fields
    are the PredictSpec's.

    Raises
    ------
    FilesFailed
        When some files failed (the others' friend trees are in place).
    """
    from .._progress import progress_bar
    from ..inference.batch import FilesFailed, run_prediction
    from ..specs.prediction import PredictSpec

    fields = {"bundle": bundle, "files": files, "output": out, **task}
    if (mapping := cluster_option(cluster)) is not None:
        fields["cluster"] = mapping
    spec = PredictSpec.from_dict(fields, base_dir=Path.cwd()).to_dict()
    with progress_bar(total=None, desc="scoring", unit="file") as bar:

        def on_event(event: dict[str, Any]) -> None:
            if event["type"] == "start":
                bar.total = event["files"]
                bar.refresh()
            elif event["type"] == "progress" and "file" in event:
                bar.update(event["files_done"] - bar.n)

        try:
            done = run_prediction(spec, on_event)
        except FilesFailed as failed:
            _print_results(failed.results)
            raise
    _print_results(done["results"])
    return done


def _print_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        if "error" in result:
            print(f"{result['input']}: FAILED: {result['error']}")
        else:
            print(f"{result['input']}: {result['entries']} entries -> {result['output']}")
