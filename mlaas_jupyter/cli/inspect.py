"""``mlaas inspect``: the trees (TTrees and RNTuples) of ROOT files and the tables of
Parquet or CSV files, their format, entries and branches.

Each branch is listed with its kind (how it becomes columns of the training matrix);
unsupported branches are listed with the reason, and a last line warns that they
will be left out. A tree that cannot be read (an RNTuple written before ROOT 6.34) or a
ROOT file without trees is one line saying so; when nothing at all can be read the
command fails (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Iterable
from fnmatch import fnmatchcase

from ..errors import MlaasError
from ..stream.schema import BranchInfo, TreeInfo
from ..stream.sources import find_trees, inspect_file, resolve_files

__all__ = ["add_parser", "describe", "format_tree", "run", "survey", "unsupported_warning"]


def survey(
    patterns: Iterable[str], tree: str | None = None, branch_filter: str | None = None
) -> tuple[list[TreeInfo], list[str]]:
    """The readable trees of every file that ``patterns`` name, and one line
    (``"<file>: <why>"``) per tree that cannot be read or file without trees.

    Parameters are those of :func:`describe`; a ``tree`` that a file lacks or cannot
    read raises (SourceError) instead.
    """
    infos: list[TreeInfo] = []
    problems: list[str] = []
    for path in resolve_files(patterns):
        if tree is not None:
            infos += inspect_file(path, tree)
            continue
        listing = find_trees(path)
        problems += [f"{path}: {reason}" for reason in listing.unreadable.values()]
        if not listing.formats and not listing.unreadable:
            problems.append(f"{path}: the file holds no TTree or RNTuple")
        for name in listing.formats:
            infos += inspect_file(path, name)
    if branch_filter is None:
        return infos, problems
    filtered = [
        dataclasses.replace(
            info, branches=tuple(b for b in info.branches if fnmatchcase(b.name, branch_filter))
        )
        for info in infos
    ]
    return filtered, problems


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
    infos, problems = survey(patterns, tree, branch_filter)
    if problems and not infos:
        raise MlaasError("; ".join(problems))
    if problems:
        warnings.warn("; ".join(problems), UserWarning, stacklevel=2)
    return infos


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


def run(args: argparse.Namespace) -> int:
    """Print the trees and branches; the warnings go to stderr with ``--json``.

    Trees that cannot be read are one ``warning:`` line each; when nothing at all can
    be read, the error (exit status 2) says why for each."""
    infos, problems = survey(args.files, args.tree, args.filter)
    if problems and not infos:
        raise MlaasError("; ".join(problems))
    warning = unsupported_warning(infos)
    notes = [f"warning: {problem}" for problem in problems]
    if args.json:
        json.dump([info.to_dict() for info in infos], sys.stdout, indent=2)
        sys.stdout.write("\n")
        for note in [*notes, *([f"warning: {warning}"] if warning else [])]:
            print(note, file=sys.stderr)
        return 0
    print("\n\n".join(format_tree(info) for info in infos))
    if args.filter is not None and not any(info.branches for info in infos):
        print(f"no branch matches {args.filter!r}")
    if notes:
        print("\n" + "\n".join(notes))
    if warning:
        print(f"\nwarning: {warning}")
    return 0
