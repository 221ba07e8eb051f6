"""MLaaS4HEP workflow inputs (files.txt, labels.txt, model, params.json, preproc.json) as a
:class:`TrainSpec`. Keys without a counterpart are named in warnings; keys MLaaS4HEP never
had are :class:`SpecError`. Migration guide: ``docs/mlaas4hep.md``. Reading the input
files is in :mod:`._mlaas4hep_files`, ``preproc.json`` in :mod:`._mlaas4hep_preproc`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..specs.dataset import DatasetSpec, JaggedSpec, Split
from ..specs.training import ModelSpec, TrainConfig, TrainSpec
from ._mlaas4hep_files import _check_keys, _classes, _int, _names, _read_json
from ._mlaas4hep_preproc import _preproc

__all__ = ["DEFAULT_IDENTIFIER", "DEFAULT_REDIRECTOR", "MLAAS4HEP_SPLIT", "from_mlaas4hep"]

#: MLaaS4HEP's default XRootD redirector (used when ``params.json`` has no ``redirector``).
DEFAULT_REDIRECTOR = "root://cms-xrd-global.cern.ch"
#: Branches MLaaS4HEP never used as features when ``identifier`` is empty or absent.
DEFAULT_IDENTIFIER = ("run", "event", "luminosityBlock")
#: MLaaS4HEP held out 20 % for test, then 20 % of the rest for validation.
MLAAS4HEP_SPLIT = Split(train=0.64, validation=0.16, test=0.2)

_MAPPED = (
    "batch_size",
    "branch",
    "chunk_size",
    "epochs",
    "exclude_branches",
    "identifier",
    "nevts",
    "redirector",
    "selected_branches",
    "shuffle",
)
_IGNORED = {
    "verbose": "has no effect here (logging and progress are not set by the spec)",
    "hist": "has no effect (MLaaS4HEP's workflow did not read it either); no input "
    "histograms are written",
    "nan": "has no effect (MLaaS4HEP's training replaced NaN by 0 anyway); padded jagged "
    "slots are 0 here",
    "split": "has no effect (MLaaS4HEP's workflow did not use it either); the split is "
    "train 0.64 / validation 0.16 / test 0.2, as MLaaS4HEP's hard-coded one",
    "drop": "(legacy, columns dropped by the JSON/CSV readers) is not supported; list the "
    "columns in exclude_branches",
}


def _pattern(name: str) -> str:
    """An fnmatch pattern matching exactly ``name`` (MLaaS4HEP took names, not patterns)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def from_mlaas4hep(
    files: str | Path,
    labels: str | Path,
    model: str | Path,
    params: str | Path,
    preproc: str | Path | None = None,
) -> tuple[TrainSpec, list[str]]:
    """Translate MLaaS4HEP workflow inputs into a :class:`TrainSpec`.

    Parameters
    ----------
    files
        ``files.txt``: one file per line (``#`` lines skipped). A name that is not a
        local file becomes ``redirector + "/" + name``, as MLaaS4HEP did.
    labels
        ``labels.txt``: one integer label per line, one per file, in the same order.
        Files are grouped into classes ``label_<value>`` in increasing label order.
    model
        A Python file defining ``model(idim)``; kept as a user model file.
    params
        ``params.json`` (MLaaS4HEP's keys only).
    preproc
        Optional ``preproc.json`` (``new_branch``, ``flat_cut``, ``jagged_cut``).

    Returns
    -------
    tuple[TrainSpec, list[str]]
        The spec and the warnings (also issued as :class:`UserWarning`).

    Raises
    ------
    SpecError
        A file is missing or malformed, a key is unknown, or a value is invalid.
    """
    notes: list[str] = []
    params_path = Path(params)
    raw = _read_json(params_path, "parameters file")
    _check_keys("params", raw, (*_MAPPED, *_IGNORED), cuts=False)
    for key, reason in _IGNORED.items():
        if key in raw:
            notes.append(f"params.json key '{key}' {reason}")
    redirector = raw.get("redirector", DEFAULT_REDIRECTOR)
    if not isinstance(redirector, str):
        raise SpecError("params.redirector", f"expected a string, got {redirector!r}")
    classes = _classes(Path(files), Path(labels), redirector.strip(), notes)
    base = params_path.parent
    selected = _names("params.selected_branches", raw.get("selected_branches"), base)
    excluded = _names("params.exclude_branches", raw.get("exclude_branches"), base)
    if selected and excluded:
        notes.append(
            "params.json key 'exclude_branches' is ignored because selected_branches is "
            "set (MLaaS4HEP ignored it too)"
        )
        excluded = []
    identifier = _names("params.identifier", raw.get("identifier"), base)
    identifier = identifier or list(DEFAULT_IDENTIFIER)
    new, cuts, removed = _preproc(Path(preproc)) if preproc is not None else ([], [], [])
    exclude = list(dict.fromkeys(identifier + excluded + removed))
    branches: tuple[str, ...] = ("*",)
    if selected:
        kept = dict.fromkeys(selected + [name for name, _ in new if name not in removed])
        branches = tuple(_pattern(name) for name in kept)
    tree = raw.get("branch", "Events")
    if not isinstance(tree, str) or not tree.strip():
        raise SpecError("params.branch", f"expected the tree name, got {tree!r}")
    nevts = _int("params.nevts", raw.get("nevts", -1), allow_all=True)
    if nevts != -1:
        notes.append(
            f"params.json key 'nevts' ({nevts}) is not supported: MLaaS4HEP read at most "
            f"{nevts} events in total, shared among the files in proportion to their "
            "entries; here every event that passes the cuts is used"
        )
    chunk = _int("params.chunk_size", raw.get("chunk_size", 1000), allow_all=True)
    step: str | int = DatasetSpec.model_fields["step_size"].default
    if chunk == -1:
        notes.append(
            "params.json key 'chunk_size' (-1, whole files at once) has no effect; "
            f"files are read in steps of {step}"
        )
    else:
        step = chunk
    shuffle = raw.get("shuffle", True)
    if not isinstance(shuffle, bool | int):
        raise SpecError("params.shuffle", f"expected true or false, got {shuffle!r}")
    if not shuffle:
        notes.append(
            "params.json key 'shuffle' (false) is not supported: training events are "
            "always shuffled (within shuffle_buffer)"
        )
    model_path = Path(model)
    if not model_path.is_file():
        raise SpecError(str(model_path), "cannot read the MLaaS4HEP model file (not found)")
    dataset = DatasetSpec(
        classes=classes,
        tree=tree.strip(),
        branches=branches,
        exclude=tuple(_pattern(name) for name in exclude),
        new_branches=tuple(new),
        cuts=tuple(cuts),
        jagged=(("*", JaggedSpec(length="max", pad_value=0.0, mask=False)),),
        normalisation="minmax",
        split=MLAAS4HEP_SPLIT,
        step_size=step,
    )
    training = TrainConfig(
        epochs=_int("params.epochs", raw.get("epochs", 10)),
        batch_size=_int("params.batch_size", raw.get("batch_size", 50)),
        early_stopping=None,
    )
    model_spec = ModelSpec(name=None, file=str(model_path.resolve()))
    fates = _fates(raw, dataset, training, identifier, notes)
    spec = TrainSpec(dataset=dataset, model=model_spec, training=training, notes=fates)
    for message in notes:
        warnings.warn(message, UserWarning, stacklevel=2)
    return spec, notes


def _fates(
    raw: Mapping[str, Any],
    dataset: DatasetSpec,
    training: TrainConfig,
    identifier: list[str],
    notes: list[str],
) -> tuple[str, ...]:
    """One line per ``params.json`` key, in the file's order, saying what became of it
    (the warning, for a key ignored or not supported), then the other warnings."""
    honoured = {
        "branch": f"tree {dataset.tree} (dataset.tree)",
        "redirector": f"{raw.get('redirector')!r}: the prefix of files.txt names that are "
        "not local files (dataset.classes)"
        if raw.get("redirector")
        else "'': every files.txt name is read as written",
        "selected_branches": f"{len(dataset.branches)} branches read as features (dataset.branches)"
        if dataset.branches != ("*",)
        else "empty: every branch is read (less the excluded ones)",
        "exclude_branches": "kept out of the features (dataset.exclude)",
        "identifier": f"{', '.join(identifier)} never used as features (dataset.exclude)",
        "epochs": f"{training.epochs} epochs (training.epochs), each one pass over every file",
        "batch_size": f"{training.batch_size} events per batch (training.batch_size)",
        "chunk_size": f"{dataset.step_size} entries per read (dataset.step_size)",
        "nevts": "-1: every event that passes the cuts is read (as MLaaS4HEP's -1)",
        "shuffle": "true: training events are shuffled (within dataset.shuffle_buffer)",
    }
    lines: list[str] = []
    for key in raw:
        said = [n for n in notes if n.startswith(f"params.json key '{key}'")]
        lines.extend(said or [f"params.json key '{key}' is honoured: {honoured[key]}"])
    return tuple(lines + [n for n in notes if n not in lines])
