"""The main job of the Quick start: the whole pipeline on the bundled example data.

``python -m mlaas_jupyter.demo [DIR]`` writes the toy dataset (see
:mod:`mlaas_jupyter.examples`) to ``DIR`` (default ``./example-data``), then runs
the CLI on it: inspect a real scikit-hep-testdata file and the toy files,
compute the statistics, stream batches, train a model and score a file.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    _step("statistics pass (cached on a second run)", ["stats", str(spec)])
    _step("stream training batches", ["stream", str(spec)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
