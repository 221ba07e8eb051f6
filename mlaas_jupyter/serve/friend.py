"""Scores as a ROOT friend tree: one entry per entry of the source tree, in the same order.

The output tree has the source tree's name, so ``tree.AddFriend("Events", "scores.root")``
in ROOT (or reading both files side by side with uproot) lines scores up with events.
It is streamed chunk by chunk (memory bounded by one chunk) into a temporary file that
is renamed into place only when complete.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .bundle import ModelBundle

__all__ = ["score_branches", "write_friend_tree"]


def score_branches(bundle: ModelBundle, branch_prefix: str = "score") -> list[str]:
    """Branch names of the scores: ``prefix`` alone, or ``prefix_<class>`` per class
    for multi-class models (characters other than letters, digits and ``_`` become ``_``)."""
    if bundle.task != "multiclass":
        return [branch_prefix]
    names: list[str] = []
    for index, label in enumerate(bundle.classes):
        name = f"{branch_prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', label)}"
        names.append(name if name not in names else f"{name}_{index}")
    return names


def write_friend_tree(
    bundle: ModelBundle,
    root_file: str | Path,
    out_path: str | Path,
    tree: str | None = None,
    branch_prefix: str = "score",
    step_size: int | str = "64 MB",
) -> int:
    """Score every entry of ``tree`` of ``root_file`` and write the scores to ``out_path``.

    Parameters
    ----------
    bundle
        A loaded bundle (:func:`~mlaas_jupyter.serve.load_bundle`).
    root_file
        The events to score (ROOT, or Parquet/CSV).
    out_path
        The ROOT file to write; replaced atomically when it exists.
    tree
        Tree of ``root_file``; the bundle's training tree by default.
    branch_prefix
        Name of the score branch (``<prefix>_<class>`` for multi-class models).
    step_size
        Entries (int) or bytes (``"64 MB"``) read per chunk.

    Returns
    -------
    int
        The number of entries written (that of the source tree).

    Raises
    ------
    DataError
        When ``out_path`` is the input file, or the tree lacks inputs of the model.
    SourceError
        When the input cannot be read.
    """
    import uproot

    out = Path(out_path)
    if out.exists() and out.resolve() == Path(root_file).resolve():
        raise DataError(f"{out}: the output file would overwrite the events being scored")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", branch_prefix):
        raise DataError(f"branch prefix {branch_prefix!r}: use letters, digits and _ only")
    names = score_branches(bundle, branch_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = bundle.open_source(str(root_file), tree)
    handle, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    written = 0
    try:
        with uproot.recreate(partial) as output:
            # mktree + extend: uproot >= 5.7 writes an RNTuple for output[name] = {...}.
            friend = output.mktree(source.name, dict.fromkeys(names, np.float32))
            for scores in bundle.iter_scores(source, step_size):
                friend.extend(_branches(names, scores))
                written += len(scores)
        if written != source.entries:
            raise DataError(f"{root_file}: scored {written} entries of {source.entries}")
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return written


def _branches(names: list[str], scores: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    values = np.asarray(scores, dtype=np.float32)
    if values.ndim == 1:
        return {names[0]: values}
    return {name: np.ascontiguousarray(values[:, k]) for k, name in enumerate(names)}
