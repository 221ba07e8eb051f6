"""Friend trees of scores among a dataset's files: recognised, and never trained on.

A friend tree written by :mod:`mlaas_jupyter.inference.friend` carries a small
``TObjString`` named :data:`FRIEND_MARK` (JSON: the model, the scored file, the score
branches). Its tree has the name of the events' tree but only score branches, so a
class glob such as ``signal_*.root`` that also matches ``signal_0_score.root`` would
fail (missing branches) or, worse, train on scores. :func:`dataset_files` expands a
class's paths and globs like :func:`~.sources.resolve_files`, leaves out the friend
trees that a glob or folder matched (with a note saying which) and refuses one named
explicitly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from ..errors import SourceError
from ._root_io import is_remote

__all__ = ["FRIEND_MARK", "dataset_files", "friend_mark"]

#: the key of the marker that every friend tree of scores written by mlaas carries
FRIEND_MARK = "mlaas_friend"
_GLOB_CHARS = set("*?[")


def friend_mark(path: str) -> dict[str, Any] | None:
    """The marker of a friend tree of scores written by mlaas (``{}`` when its text is
    not JSON), or None for any other file (remote files and files that are not ROOT
    files included: reading them later says what is wrong)."""
    import uproot

    if is_remote(path) or not path.lower().endswith(".root") or not os.path.isfile(path):
        return None
    try:
        with uproot.open(path, array_cache=None, object_cache=None) as handle:
            if FRIEND_MARK not in handle.keys(cycle=False, recursive=False):
                return None
            text = str(handle[FRIEND_MARK])
    except Exception:  # not readable as ROOT: not ours; the reader names the cause
        return None
    try:
        mark = json.loads(text)
    except ValueError:
        return {}
    return mark if isinstance(mark, dict) else {}


def _what(path: str, mark: dict[str, Any]) -> str:
    model = f" of model {mark['model']!r}" if mark.get("model") else ""
    scored = f" for {mark['source']}" if mark.get("source") else ""
    return f"{path} (scores{model}{scored}, written by mlaas predict)"


def dataset_files(patterns: Iterable[str], where: str = "") -> tuple[list[str], list[str]]:
    """The data files of ``patterns`` (as :func:`~.sources.resolve_files`), and one note
    per pattern whose matches included friend trees of scores, which are left out.

    Parameters
    ----------
    patterns
        Paths, folders and globs of one class (or sample).
    where
        What the files are for, shown in the notes (``"class 'signal'"``).

    Raises
    ------
    SourceError
        When a friend tree is named explicitly, or a pattern matches nothing else.
    """
    from .sources import resolve_files

    files: list[str] = []
    notes: list[str] = []
    for pattern in patterns:
        matched = resolve_files([pattern])
        explicit = not is_remote(pattern) and not (
            _GLOB_CHARS & set(pattern) or os.path.isdir(os.path.expanduser(pattern))
        )
        marks = {path: friend_mark(path) for path in matched}
        friends = [path for path, mark in marks.items() if mark is not None]
        if not friends:
            files += matched
            continue
        described = ", ".join(_what(path, marks[path] or {}) for path in friends)
        if explicit:
            raise SourceError(
                friends[0],
                "a friend tree of scores written by mlaas predict, not events to train on "
                f"({described}); leave it out of the dataset",
            )
        if len(friends) == len(matched):
            raise SourceError(
                pattern, f"the pattern matches only friend trees of scores: {described}"
            )
        for_what = f" of {where}" if where else ""
        notes.append(
            f"left out {len(friends)} friend tree{'s' if len(friends) > 1 else ''} of "
            f"scores that {pattern!r}{for_what} matches: {described}"
        )
        files += [path for path in matched if marks[path] is None]
    return list(dict.fromkeys(files)), notes
