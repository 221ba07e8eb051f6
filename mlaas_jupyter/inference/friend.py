"""Scores as a ROOT friend tree: one entry per entry of the source tree, in the same order.

The output tree has the source tree's name, so ``tree.AddFriend("Events", "scores.root")``
in ROOT (or reading both files side by side with uproot) lines scores up with events.
It is written in the input's format by default: an RNTuple for an RNTuple, a TTree for
a TTree (and for Parquet or CSV input); ``output_format`` chooses one explicitly.
A ``TObjString`` named ``mlaas_friend`` (JSON: model, scored file, tree, branches)
marks the file as scores, so a dataset glob that matches it leaves it out.
It is streamed chunk by chunk (memory bounded by one chunk) into a temporary file that
is renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._version import __version__
from ..errors import DataError
from ..stream._friends import FRIEND_MARK
from ..stream.schema import TreeSource
from .bundle import ModelBundle

__all__ = [
    "FRIEND_FORMATS",
    "PARTIAL_SUFFIX",
    "check_output",
    "friend_format",
    "score_branches",
    "write_friend_tree",
    "write_partial_friend_tree",
]

#: suffix of the hidden files a friend tree is written to before it is complete
PARTIAL_SUFFIX = ".partial"

FriendFormat = Literal["auto", "TTree", "RNTuple"]
#: ``output_format`` values: the input's format, or one of the two ROOT formats
FRIEND_FORMATS: tuple[str, ...] = ("auto", "TTree", "RNTuple")


def friend_format(source: TreeSource, output_format: str = "auto") -> str:
    """``"RNTuple"`` or ``"TTree"``: ``output_format``, or for ``"auto"`` the format of
    ``source`` (an RNTuple stays an RNTuple; TTrees and tables become TTrees)."""
    if output_format not in FRIEND_FORMATS:
        choices = ", ".join(FRIEND_FORMATS)
        raise DataError(f"friend tree format {output_format!r}: use one of {choices}")
    if output_format != "auto":
        return output_format
    return "RNTuple" if getattr(source, "format", None) == "RNTuple" else "TTree"


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
    on_chunk: Callable[[int], None] | None = None,
    output_format: FriendFormat = "auto",
) -> int:
    """Score every entry of ``tree`` of ``root_file`` and write the scores to ``out_path``.

    Parameters
    ----------
    bundle
        A loaded bundle (:func:`~mlaas_jupyter.inference.load_bundle`).
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
    on_chunk
        Called with the number of entries of each chunk once it is written (progress;
        an exception it raises stops the writing and leaves no output).
    output_format
        ``"auto"`` (the input's format: an RNTuple for an RNTuple, else a TTree),
        ``"TTree"`` or ``"RNTuple"``.

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
    partial, written = write_partial_friend_tree(
        bundle, root_file, out_path, tree, branch_prefix, step_size, on_chunk, output_format
    )
    try:
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def write_partial_friend_tree(
    bundle: ModelBundle,
    root_file: str | Path,
    out_path: str | Path,
    tree: str | None = None,
    branch_prefix: str = "score",
    step_size: int | str = "64 MB",
    on_chunk: Callable[[int], None] | None = None,
    output_format: FriendFormat = "auto",
) -> tuple[Path, int]:
    """Like :func:`write_friend_tree`, but leave the complete friend tree under a hidden
    temporary name beside ``out_path`` and return (that path, entries): the caller
    renames it into place (``os.replace``) when everything it writes is complete.
    On any error (or interruption) the temporary file is removed."""
    import uproot

    out = Path(out_path)
    check_output(out, root_file)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", branch_prefix):
        raise DataError(f"branch prefix {branch_prefix!r}: use letters, digits and _ only")
    names = score_branches(bundle, branch_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = bundle.open_source(str(root_file), tree)
    try:
        kind = friend_format(source, output_format)
    except DataError:
        source.close()
        raise
    # a fresh hidden name (uproot creates it, with the umask's permissions)
    partial = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}"
    written = 0
    try:
        with uproot.recreate(partial) as output:
            types = dict.fromkeys(names, np.float32)
            # mkrntuple or mktree, then extend chunk by chunk (output[name] = {...} would
            # need every score at once)
            if kind == "RNTuple":
                friend = output.mkrntuple(source.name, types)
            else:
                friend = output.mktree(source.name, types)
            # the mark that tells this file from events (a class glob that matches it
            # leaves it out: see mlaas_jupyter.stream._friends)
            output[FRIEND_MARK] = json.dumps(
                {
                    "model": bundle.name,
                    "source": str(root_file),
                    "tree": source.name,
                    "branches": names,
                    "mlaas_jupyter": __version__,
                }
            )
            for scores in bundle.iter_scores(source, step_size):
                friend.extend(_branches(names, scores))
                written += len(scores)
                if on_chunk is not None:
                    on_chunk(len(scores))
        if written != source.entries:
            raise DataError(f"{root_file}: scored {written} entries of {source.entries}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return partial, written


def check_output(out: Path, root_file: str | Path) -> None:
    """DataError when the friend tree ``out`` would overwrite the events it scores."""
    if "://" in str(root_file):
        return
    if out.exists() and out.resolve() == Path(root_file).resolve():
        raise DataError(f"{out}: the output file would overwrite the events being scored")


def _branches(names: list[str], scores: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    values = np.asarray(scores, dtype=np.float32)
    if values.ndim == 1:
        return {names[0]: values}
    return {name: np.ascontiguousarray(values[:, k]) for k, name in enumerate(names)}
