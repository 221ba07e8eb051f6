"""``mlaas inspect``: the trees (TTrees and RNTuples) of ROOT files and the tables of
Parquet or CSV files, their format, entries and branches.

Each branch is listed with its kind (how it becomes columns of the training matrix);
unsupported branches are listed with the reason, and a last line warns that they
will be left out. The other objects of a file (histograms, strings...) are named with
their class in a ``note:`` line, as is a friend tree of scores (which datasets leave
out). A tree that cannot be read (an RNTuple written before ROOT 6.34, a corrupted
key) or a ROOT file without trees is one ``warning:`` line saying what the file holds
and why nothing is listed; when nothing at all can be read the command fails (exit
status 2) with those lines. ``%mlaas inspect`` shows the same (:func:`report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Iterable
from fnmatch import fnmatchcase

from ..errors import MlaasError, SourceError
from ..stream._friends import FRIEND_MARK, friend_mark
from ..stream.schema import BranchInfo, TreeInfo
from ..stream.sources import find_trees, inspect_file, resolve_files

__all__ = [
    "Survey",
    "add_parser",
    "describe",
    "format_tree",
    "remarks",
    "report",
    "run",
    "survey",
    "unsupported_warning",
]


@dataclasses.dataclass
class Survey:
    """What :func:`survey` found: the readable ``trees``; ``problems``, one line
    (``"<file>: <why>"``) per tree that cannot be read or file without trees; and
    ``notes``, one line per file with other objects or that is a friend tree."""

    trees: list[TreeInfo]
    problems: list[str]
    notes: list[str]

    def checked(self) -> Survey:
        """Itself, when something could be read; else MlaasError with the problems."""
        if self.problems and not self.trees:
            raise MlaasError("; ".join(self.problems + self.notes))
        return self


def survey(
    patterns: Iterable[str], tree: str | None = None, branch_filter: str | None = None
) -> Survey:
    """The readable trees of every file that ``patterns`` name, and what cannot be read.

    Parameters are those of :func:`describe`; a ``tree`` that a file lacks or cannot
    read raises (SourceError) instead.
    """
    found = Survey([], [], [])
    for path in resolve_files(patterns):
        if tree is not None:
            found.trees += inspect_file(path, tree)
            continue
        _survey_file(path, found)
    if branch_filter is not None:
        found.trees = [
            dataclasses.replace(
                info,
                branches=tuple(b for b in info.branches if fnmatchcase(b.name, branch_filter)),
            )
            for info in found.trees
        ]
    return found


def _survey_file(path: str, found: Survey) -> None:
    try:
        listing = find_trees(path)
    except SourceError as err:  # not ROOT, or its list of objects is unreadable
        found.problems.append(str(err))
        return
    mark = friend_mark(path) if FRIEND_MARK in listing.others else None
    if mark is not None:
        model = f" of model {mark['model']!r}" if mark.get("model") else ""
        scored = f" for {mark['source']}" if mark.get("source") else ""
        found.notes.append(
            f"{path}: a friend tree of scores{model}{scored} (written by mlaas predict); "
            "datasets leave it out"
        )
        listing = dataclasses.replace(
            listing, others={k: v for k, v in listing.others.items() if k != FRIEND_MARK}
        )
    if not listing.formats:
        found.problems.append(f"{path}: {listing.why_nothing()}")
        return
    found.problems += [f"{path}: {reason}" for reason in listing.unreadable.values()]
    if listing.others:
        found.notes.append(
            f"{path}: also {listing.other_objects()} (not listed: not events to train on)"
        )
    for name in listing.formats:
        try:
            found.trees += inspect_file(path, name)
        except SourceError as err:  # a corrupted key: the other trees are still shown
            found.problems.append(str(err))


def describe(
    patterns: Iterable[str], tree: str | None = None, branch_filter: str | None = None
) -> list[TreeInfo]:
    """Describe the trees of every file that ``patterns`` name.

    Parameters
    ----------
    patterns
        Files, directories or globs, as :func:`~mlaas_jupyter.stream.sources.resolve_files`
        expands them.
    tree
        Only this tree of each file; every tree when ``None``.
    branch_filter
        fnmatch pattern (case-sensitive) that branch names must match.

    Returns
    -------
    list of TreeInfo
        One per file and tree, in file order.

    Raises
    ------
    SourceError
        When a file is missing, unreadable or lacks ``tree``.
    MlaasError
        When no file holds a readable tree (one line per file and tree saying why);
        when only some do, a UserWarning says which others cannot be read.
    """
    found = survey(patterns, tree, branch_filter).checked()
    if found.problems:
        warnings.warn("; ".join(found.problems), UserWarning, stacklevel=2)
    return found.trees


def _detail(branch: BranchInfo) -> str:
    if branch.kind == "fixed":
        return f"width {branch.width}"
    if branch.kind == "unsupported":
        return branch.reason or ""
    return ""


def format_tree(info: TreeInfo) -> str:
    """A header line with the format, name and entries, then one aligned row per branch."""
    count = len(info.branches)
    lines = [
        f"{info.file}  {info.format or 'tree'} {info.name!r}: {info.entries} entries, "
        f"{count} branch{'es' if count != 1 else ''}"
    ]
    if not info.branches:
        return lines[0]
    rows = [("name", "kind", "type", "detail")]
    rows += [(b.name, b.kind, b.type, _detail(b)) for b in info.branches]
    # The last column is free text (reasons), so only the first three are padded.
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append(("  " + "  ".join([*cells, row[3]])).rstrip())
    return "\n".join(lines)


def unsupported_warning(infos: Iterable[TreeInfo]) -> str | None:
    """``"N unsupported branches will be excluded: a, b"``, or ``None`` when there are none."""
    names = list(
        dict.fromkeys(b.name for info in infos for b in info.branches if b.kind == "unsupported")
    )
    if not names:
        return None
    noun = "branch" if len(names) == 1 else "branches"
    return f"{len(names)} unsupported {noun} will be excluded: {', '.join(names)}"


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas inspect``."""
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="files, directories or globs (quote globs)"
    )
    parser.add_argument("--tree", metavar="NAME", help="only this tree of each file")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON list of trees to stdout, nothing else"
    )
    parser.add_argument(
        "--filter", metavar="PATTERN", help="only branches whose names match (fnmatch: 'Jet_*')"
    )


def remarks(found: Survey) -> list[str]:
    """The ``note:`` and ``warning:`` lines under the trees."""
    lines = [f"note: {note}" for note in found.notes]
    lines += [f"warning: {problem}" for problem in found.problems]
    if warning := unsupported_warning(found.trees):
        lines.append(f"warning: {warning}")
    return lines


def report(found: Survey, branch_filter: str | None = None) -> str:
    """The text of ``mlaas inspect`` (and ``%mlaas inspect``): the trees, then the notes
    and warnings."""
    parts = ["\n\n".join(format_tree(info) for info in found.trees)]
    if branch_filter is not None and not any(info.branches for info in found.trees):
        parts.append(f"no branch matches {branch_filter!r}")
    lines = remarks(found)
    return "\n".join(parts) + ("\n\n" + "\n".join(lines) if lines else "")


def run(args: argparse.Namespace) -> int:
    """Print the trees and branches; the notes and warnings go to stderr with ``--json``.

    Trees that cannot be read are one ``warning:`` line each; when nothing at all can
    be read, the error (exit status 2) says why for each."""
    found = survey(args.files, args.tree, args.filter).checked()
    if args.json:
        json.dump([info.to_dict() for info in found.trees], sys.stdout, indent=2)
        sys.stdout.write("\n")
        for line in remarks(found):
            print(line, file=sys.stderr)
        return 0
    print(report(found, args.filter))
    return 0
