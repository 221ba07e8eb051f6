"""Shared fixtures: real ROOT, Parquet and CSV files written into ``tmp_path``.

Generated files are small and seeded, and each factory returns the arrays it wrote so
tests compare what they read against what was written.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import skhep_testdata
import uproot
from toy_bundles import write_toy_bundle

# Names accepted by ``make_root_file(compression=...)``; level 1 keeps the tests fast.
ROOT_COMPRESSIONS: dict[str, Any] = {
    "zlib": uproot.ZLIB(1),
    "lz4": uproot.LZ4(1),
    "zstd": uproot.ZSTD(1),
    "lzma": uproot.LZMA(1),
    "none": None,
}


@dataclass
class GeneratedFile:
    """A file written by a factory fixture and the columns written into it."""

    path: str
    tree: str
    entries: int
    arrays: dict[str, Any] = field(default_factory=dict)


def event_arrays(n: int, seed: int = 0, nonfinite: bool = False) -> dict[str, Any]:
    """NanoAOD-like events: flat ``MET_*``, counter ``nJet``, jagged ``Jet_pt``/``Jet_eta``.

    Events 0 and 3 (when present) have no jets; ``label`` is 0/1, correlated with
    ``MET_pt`` so that a model can learn it. With ``nonfinite`` a few ``MET_pt`` values
    are NaN, one is +inf, and one jet ``pt`` is -inf.
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, n).astype(np.int32)
    counts[[i for i in (0, 3) if i < n]] = 0
    total = int(counts.sum())
    met_pt = rng.exponential(40.0, n).astype(np.float32)
    jet_pt = (20.0 + rng.exponential(30.0, total)).astype(np.float32)
    if nonfinite and n >= 10 and total:
        met_pt[[1, 5]] = np.nan
        met_pt[7] = np.inf
        jet_pt[0] = -np.inf
    return {
        "MET_pt": met_pt,
        "MET_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "nJet": counts,
        "Jet_pt": ak.unflatten(jet_pt, counts),
        "Jet_eta": ak.unflatten(rng.normal(0.0, 1.5, total).astype(np.float32), counts),
        "label": (met_pt + rng.normal(0.0, 20.0, n) > 40.0).astype(np.int32),
    }


def write_root_file(
    path: str | Path,
    arrays: dict[str, Any],
    tree: str = "Events",
    compression: str = "zlib",
    baskets: int = 4,
    extra_trees: tuple[str, ...] = (),
) -> None:
    """Write ``arrays`` (from :func:`event_arrays`) as a TTree in ``baskets`` baskets.

    ``Jet_pt``/``Jet_eta`` are written as one ``Jet`` record so that uproot makes a single
    counter branch ``nJet`` (as NanoAOD does). ``extra_trees`` get one float64 branch ``x``.
    """
    flat = {k: v for k, v in arrays.items() if not k.startswith(("Jet_", "nJet"))}
    jets = ak.zip({"pt": arrays["Jet_pt"], "eta": arrays["Jet_eta"]})
    n = len(arrays["MET_pt"])
    bounds = np.linspace(0, n, max(1, baskets) + 1).astype(int)
    with uproot.recreate(path, compression=ROOT_COMPRESSIONS[compression]) as handle:
        # mktree + extend: uproot >= 5.7 writes an RNTuple for handle[name] = {...}.
        types = {**{k: v.dtype for k, v in flat.items()}, "Jet": jets.type.content}
        out = handle.mktree(tree, types)
        for lo, hi in itertools.pairwise(bounds):
            out.extend({**{k: v[lo:hi] for k, v in flat.items()}, "Jet": jets[lo:hi]})
        for name in extra_trees:
            handle.mktree(name, {"x": np.float64}).extend({"x": np.arange(n, dtype=np.float64)})


@pytest.fixture
def make_root_file(tmp_path: Path) -> Callable[..., GeneratedFile]:
    """Factory: ``make_root_file(name="events.root", *, n=1000, seed=0, compression="zlib",
    tree="Events", nonfinite=False, baskets=4, extra_trees=())`` -> :class:`GeneratedFile`.

    A relative ``name`` is placed in ``tmp_path``; ``compression`` is a key of
    ``ROOT_COMPRESSIONS`` ("zlib", "lz4", "zstd", "lzma", "none").
    """

    def make(
        name: str | Path = "events.root",
        *,
        n: int = 1000,
        seed: int = 0,
        compression: str = "zlib",
        tree: str = "Events",
        nonfinite: bool = False,
        baskets: int = 4,
        extra_trees: tuple[str, ...] = (),
    ) -> GeneratedFile:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = event_arrays(n, seed, nonfinite)
        write_root_file(path, arrays, tree, compression, baskets, extra_trees)
        return GeneratedFile(str(path), tree, n, arrays)

    return make


def write_table_file(path: str | Path, arrays: dict[str, Any], row_group_size: int = 256) -> None:
    """Write ``arrays`` as Parquet (jagged columns as ``list<float>``) or CSV (flat only).

    The format follows the suffix; CSV gets only the 1-D NumPy columns.
    """
    if str(path).endswith(".csv"):
        flat = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 1}
        pacsv.write_csv(pa.table(flat), str(path))
        return
    columns = {
        k: ak.to_arrow(v, extensionarray=False) if isinstance(v, ak.Array) else v
        for k, v in arrays.items()
    }
    pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)


@pytest.fixture
def make_table_file(tmp_path: Path) -> Callable[..., GeneratedFile]:
    """Factory: ``make_table_file(name="events.parquet", *, n=1000, seed=0, nonfinite=False,
    row_group_size=256)`` -> :class:`GeneratedFile` (tree ``"table"``).

    The same events as :func:`make_root_file`; a ``.csv`` name leaves out the jagged
    columns, and ``arrays`` then holds only what the file holds.
    """

    def make(
        name: str | Path = "events.parquet",
        *,
        n: int = 1000,
        seed: int = 0,
        nonfinite: bool = False,
        row_group_size: int = 256,
    ) -> GeneratedFile:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = event_arrays(n, seed, nonfinite)
        if path.suffix == ".csv":
            arrays = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
        write_table_file(path, arrays, row_group_size)
        return GeneratedFile(str(path), "table", n, arrays)

    return make


@pytest.fixture(params=sorted(ROOT_COMPRESSIONS))
def root_compression(request: pytest.FixtureRequest) -> str:
    """Each compression name of ``ROOT_COMPRESSIONS`` in turn."""
    return str(request.param)


@pytest.fixture
def hzz_path() -> str:
    """``uproot-HZZ.root`` of scikit-hep-testdata: tree ``events``, 2421 entries."""
    return str(skhep_testdata.data_path("uproot-HZZ.root"))


@pytest.fixture
def make_id_file(tmp_path: Path) -> Callable[..., GeneratedFile]:
    """Factory: ``make_id_file(name, *, n=1000, seed=0, first_id=0, nonfinite=False,
    drop=(), baskets=4)`` -> :class:`GeneratedFile`.

    The events of :func:`event_arrays` plus ``event_id`` (int64, ``first_id + entry``, so
    every event of a dataset can be told apart in a batch) and a regression ``target``
    (float32, ``2 * MET_phi + 1``); the flat branches named in ``drop`` are left out.
    """

    def make(
        name: str | Path,
        *,
        n: int = 1000,
        seed: int = 0,
        first_id: int = 0,
        nonfinite: bool = False,
        drop: tuple[str, ...] = (),
        baskets: int = 4,
    ) -> GeneratedFile:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = event_arrays(n, seed, nonfinite)
        arrays["event_id"] = np.arange(first_id, first_id + n, dtype=np.int64)
        arrays["target"] = (2.0 * arrays["MET_phi"] + 1.0).astype(np.float32)
        arrays = {k: v for k, v in arrays.items() if k not in drop}
        write_root_file(path, arrays, "Events", "zlib", baskets)
        return GeneratedFile(str(path), "Events", n, arrays)

    return make


# -- hand-made model bundles (serving tests): see toy_bundles.py --------------------
@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_bundle(folder_name="bundle", **options)`` -> the folder of a
    hand-made bundle in ``tmp_path`` (options of :func:`write_toy_bundle`)."""

    def make(folder_name: str = "bundle", **options: Any) -> Path:
        folder = tmp_path / folder_name
        write_toy_bundle(folder, **options)
        return folder

    return make


@pytest.fixture(scope="session")
def toy_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hand-made bundles, written once: ``flat`` (28 flat inputs, binary), ``jagged``
    (4 flat inputs, ``Jet_pt`` and the new branch ``HT``), ``multiclass`` and
    ``regression`` (flat inputs)."""
    root = tmp_path_factory.mktemp("toy-bundles")
    options: dict[str, dict[str, Any]] = {
        "flat": {"name": "toy-flat"},
        "jagged": {"name": "toy-jagged", "n_flat": 4, "jagged": True, "seed": 1},
        "multiclass": {"name": "toy-multi", "task": "multiclass", "n_flat": 6, "seed": 2},
        "regression": {"name": "toy-reg", "task": "regression", "n_flat": 5, "seed": 3},
    }
    for key, option in options.items():
        write_toy_bundle(root / key, **option)
    return {key: root / key for key in options}


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No server in the environment; the store and runtime files under ``tmp_path``."""
    for name in ("MLAAS_SERVER_URL", "MLAAS_TOKEN", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("MLAAS_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setenv("MLAAS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run last: Playwright's synchronous API leaves its event loop
    set in the main thread, which the asynchronous server tests would then trip over."""
    items.sort(key=lambda item: item.path.parent.name == "ui")  # stable: order kept
