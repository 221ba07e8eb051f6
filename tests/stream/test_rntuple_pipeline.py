"""The same events as TTrees and as RNTuples stream, train and score alike.

The toy dataset is written as TTrees, streamed, then rewritten in place as RNTuples
(same paths, so the per-event split is the same) and streamed again: the statistics
and every batch must be identical. A small model trained on the RNTuples scores both
formats alike, and its friend trees take the input's format.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference.batch import run_prediction
from mlaas_jupyter.inference.bundle import load_bundle
from mlaas_jupyter.inference.friend import write_friend_tree
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream import BatchStream, DatasetSpec, compute_stats
from mlaas_jupyter.train.runner import train

EVENTS = 1500


def rewrite_as_rntuple(path: Path, clusters: int = 3) -> None:
    """Replace the TTree ``Events`` of ``path`` by an RNTuple of the same branches."""
    with uproot.open(path) as handle:
        arrays = handle["Events"].arrays(library="ak", how=dict)
    n = len(arrays["MET_pt"])
    bounds = np.linspace(0, n, clusters + 1).astype(int)
    with uproot.recreate(path) as handle:
        out = handle.mkrntuple("Events", ak.zip(arrays, depth_limit=1).layout.form)
        for lo, hi in itertools.pairwise(bounds):
            out.extend({k: v[lo:hi] for k, v in arrays.items()})


def without_key(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k != "key"}


def epoch(spec: DatasetSpec, split: str) -> list[Any]:
    stats = compute_stats(spec, cache=False)
    return list(BatchStream(spec, split, 256, shuffle=False, stats=stats, cache=False))


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """TTree batches and statistics, then the same files as RNTuples (and a TTree copy)."""
    folder = tmp_path_factory.mktemp("toy")
    spec_path = write_example_dataset(folder / "data", events_per_file=EVENTS, files_per_class=1)
    spec = DatasetSpec.from_file(spec_path)
    ttree = {
        "stats": without_key(compute_stats(spec, cache=False).to_dict()),
        "train": epoch(spec, "train"),
        "test": epoch(spec, "test"),
    }
    shutil.copytree(folder / "data", folder / "ttree")
    for path in sorted((folder / "data").glob("*.root")):
        rewrite_as_rntuple(path)
    return {"folder": folder, "spec": spec, "spec_path": spec_path, "ttree": ttree}


def test_the_files_are_rntuples_now(toy: dict[str, Any]) -> None:
    with uproot.open(toy["folder"] / "data" / "signal_0.root") as handle:
        assert handle.classnames() == {"Events;1": "ROOT::RNTuple"}


def test_stats_and_batches_equal_the_ttree_ones(toy: dict[str, Any]) -> None:
    spec = toy["spec"]
    # all but the cache key (made of the files' sizes and times)
    assert without_key(compute_stats(spec, cache=False).to_dict()) == toy["ttree"]["stats"]
    for split in ("train", "test"):
        ours, theirs = epoch(spec, split), toy["ttree"][split]
        assert len(ours) == len(theirs) > 1
        for mine, reference in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine.x, reference.x)
            np.testing.assert_array_equal(mine.y, reference.y)
            np.testing.assert_array_equal(mine.w, reference.w)


def test_train_on_rntuples_and_score_both_formats(toy: dict[str, Any], tmp_path: Path) -> None:
    spec = TrainSpec.from_dict(
        {
            "dataset": yaml.safe_load(Path(toy["spec_path"]).read_text()),
            "model": {"name": "bdt", "params": {"max_iter": 10}},
            "training": {"output": str(tmp_path / "runs"), "device": "cpu"},
        },
        Path(toy["spec_path"]).parent,
    )
    result = train(spec, cache=False)
    assert result.metrics["auc"] > 0.7
    bundle = load_bundle(result.bundle)
    folder = toy["folder"]

    def scores(path: Path, kind: str) -> np.ndarray[Any, Any]:
        with uproot.open(path) as handle:
            # the scores, and the mark that keeps dataset globs off them
            assert handle.classnames() == {"Events;1": kind, "mlaas_friend;1": "TObjString"}
            return np.asarray(handle["Events"].arrays(library="np", how=dict)["score"])

    # the friend takes the input's format; scores agree exactly
    assert write_friend_tree(bundle, folder / "data/signal_0.root", tmp_path / "rn.root") == EVENTS
    write_friend_tree(bundle, folder / "ttree/signal_0.root", tmp_path / "tt.root")
    from_rntuple = scores(tmp_path / "rn.root", "ROOT::RNTuple")
    np.testing.assert_array_equal(from_rntuple, scores(tmp_path / "tt.root", "TTree"))
    # an explicit choice wins
    write_friend_tree(
        bundle, folder / "data/signal_0.root", tmp_path / "as_tree.root", output_format="TTree"
    )
    np.testing.assert_array_equal(scores(tmp_path / "as_tree.root", "TTree"), from_rntuple)

    # a prediction job writes RNTuple friends for RNTuple inputs
    events: list[dict[str, Any]] = []
    done = run_prediction(
        {
            "predict": {
                "bundle": str(result.bundle),
                "files": [str(folder / "data/background_0.root")],
                "output": str(tmp_path / "job"),
            }
        },
        events.append,
    )
    (out,) = done["outputs"]
    assert len(scores(Path(out), "ROOT::RNTuple")) == EVENTS
