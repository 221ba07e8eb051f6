"""A corpus of broken local inputs, made from one small good ROOT file of the example
dataset: truncations at ten offsets (inside the header, the directory, the streamer
info, baskets, the tree's metadata, one byte short), flipped bytes inside baskets, an
empty file, a text file named ``.root``, a folder named ``x.root``, a file its reader
may not read and a symbolic link loop.

Each case is a :class:`BrokenInput`: the path to give a command, what the one line on
stderr must say, and whether reading only the metadata (``mlaas inspect``) already
finds it (flipped bytes inside a basket show only when the basket is read).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import uproot

from mlaas_jupyter.examples import write_example_dataset

__all__ = ["CORPUS_CASES", "EVENTS", "BrokenInput", "write_corpus"]

#: small enough that a command over one file takes a moment, large enough for cuts
EVENTS = 400


@dataclass(frozen=True)
class BrokenInput:
    """One broken input: ``path`` as given to a command; ``says``, words the one line
    naming it must hold; ``in_metadata``, whether opening the file finds the problem
    (else only reading its baskets does)."""

    name: str
    path: str
    says: str
    in_metadata: bool = True


def _truncation_offsets(good: Path) -> dict[str, int]:
    """Ten offsets to cut ``good`` at, named by what they fall inside."""
    handle = uproot.open(good)
    try:
        events = handle["Events"]
        seek_info = int(handle.file.fSeekInfo)
        info_bytes = int(handle.file.fNbytesInfo)
        tree_key = int(handle.key("Events").fSeekKey)
        baskets = {
            str(b.name): (int(b.member("fBasketSeek")[0]), int(b.basket_compressed_bytes(0)))
            for b in events.values()
        }
    finally:
        handle.close()
    size = good.stat().st_size
    first = min(baskets.values())
    jet = baskets["Jet_pt"]
    last = max(baskets.values())
    return {
        "in-magic": 2,
        "in-header": 14,
        "after-header": 80,
        "in-streamer-info": seek_info + info_bytes // 2,
        "at-first-basket": first[0] + 8,
        "in-jagged-basket": jet[0] + jet[1] // 2,
        "half": size // 2,
        "in-last-basket": last[0] + last[1] // 2,
        "in-tree-metadata": tree_key + 40,
        "one-byte-short": size - 1,
    }


def _flip(path: Path, offset: int, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def write_corpus(folder: Path) -> tuple[Path, list[BrokenInput]]:
    """Write the good file and every broken input into ``folder``; return the good
    file and the cases (the one a user cannot read is made unreadable to others by
    its mode: only a process without root's rights sees the refusal)."""
    data = folder / "good"
    write_example_dataset(data, events_per_file=EVENTS, files_per_class=1)
    good = data / "signal_0.root"
    cases: list[BrokenInput] = []
    size = good.stat().st_size
    for name, offset in _truncation_offsets(good).items():
        cut = folder / f"cut-{name}.root"
        cut.write_bytes(good.read_bytes()[:offset])
        says = f"truncated: {offset} of {size} bytes"
        if offset < 16:  # too short to say its size
            says = f"truncated: {offset} bytes, shorter than its ROOT header"
        cases.append(BrokenInput(f"cut-{name}", str(cut), says))
    handle = uproot.open(good)
    try:
        baskets = {
            str(b.name): (int(b.member("fBasketSeek")[0]), int(b.basket_compressed_bytes(0)))
            for b in handle["Events"].values()
        }
    finally:
        handle.close()
    for branch in ("MET_pt", "Jet_pt"):
        flipped = folder / f"flipped-{branch}.root"
        shutil.copyfile(good, flipped)
        seek, nbytes = baskets[branch]
        _flip(flipped, seek + nbytes // 2)
        says = f"branch {branch!r}"
        cases.append(BrokenInput(f"flipped-{branch}", str(flipped), says, in_metadata=False))
    empty = folder / "empty.root"
    empty.write_bytes(b"")
    cases.append(BrokenInput("empty", str(empty), "the file is empty"))
    text = folder / "notes.root"
    text.write_text("run 2024, fill 9876: good\n")
    cases.append(BrokenInput("text", str(text), "not a ROOT file"))
    directory = folder / "x.root"
    directory.mkdir()
    cases.append(BrokenInput("folder", str(directory), "folder"))
    locked = folder / "locked.root"
    shutil.copyfile(good, locked)
    os.chmod(locked, 0o000)
    cases.append(BrokenInput("no-permission", str(locked), "Permission denied"))
    loop = folder / "loop.root"
    os.symlink(folder / "loop-back.root", loop)
    os.symlink(loop, folder / "loop-back.root")
    cases.append(BrokenInput("symlink-loop", str(loop), "symbolic link"))
    return good, cases


#: the names of the cases, for parametrising tests before the corpus is written
CORPUS_CASES = (
    "cut-in-magic",
    "cut-in-header",
    "cut-after-header",
    "cut-in-streamer-info",
    "cut-at-first-basket",
    "cut-in-jagged-basket",
    "cut-half",
    "cut-in-last-basket",
    "cut-in-tree-metadata",
    "cut-one-byte-short",
    "flipped-MET_pt",
    "flipped-Jet_pt",
    "empty",
    "text",
    "folder",
    "no-permission",
    "symlink-loop",
)
