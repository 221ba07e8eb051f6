"""What a tree holds: branches, their types and kinds, and the number of entries.

Kinds decide how a branch becomes columns of the training matrix:

``flat``
    one number per event (width 1);
``jagged``
    a variable-length list of numbers per event (``var * T``), padded/clipped;
``fixed``
    a fixed-size array of numbers per event (``N * T``), flattened to N columns;
``unsupported``
    strings, objects, nested containers: listed so the user sees them, never read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

import awkward as ak
import numpy as np

__all__ = ["BranchInfo", "Chunk", "Kind", "TreeInfo", "TreeSource"]

Kind = Literal["flat", "jagged", "fixed", "unsupported"]

Column: TypeAlias = np.ndarray[Any, Any] | ak.Array


@dataclass(frozen=True)
class BranchInfo:
    """One branch (or column) of a tree.

    Parameters
    ----------
    name
        Branch name as used in specs and expressions.
    type
        The type as the file states it (C++ type for ROOT, Arrow type otherwise).
    kind
        ``flat``, ``jagged``, ``fixed`` or ``unsupported``.
    dtype
        NumPy dtype name of the numbers, ``None`` when unsupported.
    width
        Number of numbers per event for ``fixed`` arrays, else ``None``.
    reason
        Why an ``unsupported`` branch cannot be used.
    """

    name: str
    type: str
    kind: Kind
    dtype: str | None = None
    width: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TreeInfo:
    """A tree of a file: its path inside the file, entries, branches and format.

    ``format`` says what the tree is: ``"TTree"`` or ``"RNTuple"`` for ROOT files,
    ``"Parquet"`` or ``"CSV"`` for tables; ``None`` when unknown (left out of
    :meth:`to_dict`).
    """

    file: str
    name: str
    entries: int
    branches: tuple[BranchInfo, ...] = field(default=())
    format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        described: dict[str, Any] = {"file": self.file, "name": self.name}
        if self.format is not None:
            described["format"] = self.format
        described["entries"] = self.entries
        described["branches"] = [b.to_dict() for b in self.branches]
        return described


@dataclass
class Chunk:
    """Entries ``[entry_start, entry_stop)`` of one tree, as columns.

    Flat and fixed branches come as NumPy arrays (``(n,)`` and ``(n, width)``),
    jagged branches as awkward ``var * T`` arrays.
    """

    entry_start: int
    entry_stop: int
    columns: dict[str, Column]

    @property
    def entries(self) -> int:
        return self.entry_stop - self.entry_start


class TreeSource(Protocol):
    """A readable tree of one file, whatever the format (ROOT TTree or RNTuple, Parquet,
    CSV). Sources also carry a ``format`` attribute (``"TTree"``, ``"RNTuple"``,
    ``"Parquet"``, ``"CSV"``), read with ``getattr`` so other sources need none."""

    path: str
    name: str

    @property
    def entries(self) -> int: ...

    @property
    def branches(self) -> Mapping[str, BranchInfo]: ...

    def entries_per_step(self, step_size: int | str, columns: Sequence[str]) -> int:
        """Entries per chunk for a step given in entries or as a size like ``"32 MB"``."""
        ...

    def iterate(
        self,
        columns: Sequence[str],
        step_size: int | str,
        entry_start: int = 0,
        entry_stop: int | None = None,
    ) -> Iterator[Chunk]:
        """Read ``columns`` chunk by chunk; errors name the file and the entries."""
        ...

    def close(self) -> None: ...
