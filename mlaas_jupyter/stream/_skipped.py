"""The files a statistics pass skipped under the dataset's ``on_error: skip``: each is a
row of the pass's ``files`` with ``skipped`` (why, in one line) and ``events_lost``
(the entries its tree says it holds, or None when it cannot be opened). The batch
stream leaves the same files out, so statistics and batches agree.
"""

from __future__ import annotations

from typing import Any

from ..errors import SourceError
from .sources import open_tree

__all__ = ["entries_of", "skipped_files", "skipped_notes"]


def entries_of(path: str, tree: str) -> int | None:
    """The entries a damaged file says its tree holds, or None when it cannot say."""
    try:
        source = open_tree(path, tree)
    except SourceError:
        return None
    try:
        return source.entries
    finally:
        source.close()


def skipped_notes(stats: Any) -> list[str]:
    """One line per file the pass skipped (``on_error: skip``): the file, why, and the
    events lost."""
    notes = []
    for row in stats.files:
        if "skipped" in row:
            lost = row.get("events_lost")
            count = f"{lost} events lost" if lost is not None else "its events lost (unknown count)"
            notes.append(f"skipped {row['path']} ({count}): {row['skipped']}")
    return notes


def skipped_files(stats: Any) -> set[str]:
    """The paths of the files the pass skipped (``on_error: skip``)."""
    return {str(row["path"]) for row in stats.files if "skipped" in row}
