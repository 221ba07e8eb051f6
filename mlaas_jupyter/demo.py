"""The main job of the Quick start: the whole pipeline on the bundled example data.

``python -m mlaas_jupyter.demo [DIR]`` writes the toy dataset (see
:mod:`mlaas_jupyter.examples`) to ``DIR`` (default ``./example-data``), then runs
the CLI on it: inspect a real scikit-hep-testdata file and the toy files,
compute the statistics, stream batches, train a model and score a file (into
``DIR/scores/``). It runs again on the same folder: the toy files are kept, the
statistics come from the cache and the run folder and scores are replaced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .cli import main as cli
from .examples import write_example_dataset


def _step(title: str, argv: list[str]) -> None:
    print(f"\n$ mlaas {' '.join(argv)}    # {title}", flush=True)
    status = cli(argv)
    if status != 0:
        raise SystemExit(status)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else "example-data")
    spec = write_example_dataset(directory)
    print(f"example dataset: {spec}")
    _step("what is in a file", ["inspect", str(directory / "signal_0.root"), "--filter", "Jet_*"])
    _step("stream training batches", ["stream", str(spec)])
    train_spec = _write_train_spec(directory)
    _step("expected yields at 138 fb^-1 (cached on a second run)", ["stats", str(train_spec)])
    run_dir = directory / "run"
    _step(
        "train a model (torch MLP) into a bundle",
        ["train", str(train_spec), "--run-dir", str(run_dir)],
    )
    # the friend tree goes to scores/ beside the input, out of the reach of the
    # dataset's globs (signal_*.root), so the demo runs again on the same folder
    _step(
        "score a file with the bundle (a friend tree in scores/)",
        ["predict", str(run_dir / "bundle"), str(directory / "signal_0.root")],
    )
    print(f"\nplots: {', '.join(str(p) for p in sorted((run_dir / 'plots').glob('*.png')))}")
    return 0


def _write_train_spec(directory: Path) -> Path:
    """A training spec next to the dataset: the dataset spec as a physicist would mix
    it (ttH vs ttbar at their cross-sections for 138 fb^-1, trained on equal yields,
    with the dijet mass), plus a model and settings."""
    dataset = yaml.safe_load((directory / "dataset.yaml").read_text())
    dataset["luminosity"] = 138_000.0  # pb^-1
    dataset["classes"] = {
        "ttbar": {"files": dataset["classes"]["background"], "xsec": 833.9},  # pb
        "ttH": {"files": dataset["classes"]["signal"], "xsec": 0.5071},
    }
    dataset["balance"] = "weights"
    dataset["new_branches"]["m_jj"] = "inv_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass, n=2)"
    spec = {
        "dataset": dataset,
        "model": {"name": "mlp", "params": {"sizes": [64, 64]}},
        "training": {"epochs": 5, "batch_size": 512, "early_stopping": 2, "style": "CMS"},
    }
    path = directory / "train.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
