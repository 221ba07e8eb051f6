"""Plumbing of the batch pipeline: generators run in threads, and the shuffled concat."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ROUND_END", "Batch", "background", "concat", "take_rows"]


class Batch(NamedTuple):
    """Features ``x`` ``(n, width)`` float32, labels or targets ``y`` ``(n,)``, weights ``w``."""

    x: np.ndarray[Any, np.dtype[np.float32]]
    y: np.ndarray[Any, Any]
    w: np.ndarray[Any, np.dtype[np.float32]]


_DONE = object()
#: marks the end of the first round, when every open file has given a chunk
ROUND_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def concat(blocks: list[Batch], rng: np.random.Generator | None) -> Batch:
    """One batch of all ``blocks``, its rows shuffled when ``rng`` is given.

    Shuffling scatters each block straight to its new rows: one copy of the data,
    no concatenated intermediate, which keeps peak memory near the buffer size.
    """
    if len(blocks) == 1 and rng is None:
        return blocks[0]
    total = sum(len(b.y) for b in blocks)
    first = blocks[0]
    x = np.empty((total, *first.x.shape[1:]), dtype=first.x.dtype)
    y = np.empty(total, dtype=first.y.dtype)
    w = np.empty(total, dtype=first.w.dtype)
    where = rng.permutation(total) if rng is not None else None
    start = 0
    for block in blocks:
        stop = start + len(block.y)
        if where is None:
            x[start:stop], y[start:stop], w[start:stop] = block.x, block.y, block.w
        else:
            rows = where[start:stop]
            if x.size:
                _rows(x)[rows] = _rows(np.ascontiguousarray(block.x))
            y[rows], w[rows] = block.y, block.w
        start = stop
    return Batch(x, y, w)


def take_rows(x: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``x[rows]`` for a C-ordered matrix, each row moved in one piece."""
    taken: np.ndarray[Any, Any] = x[rows] if not x.size else _rows(x)[rows].view(x.dtype)
    return taken.reshape(len(rows), *x.shape[1:])


def _rows(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A C-ordered matrix as a vector of opaque rows: a fancy-indexed copy then moves
    each row in one piece instead of running an inner loop per row (2x faster)."""
    items = int(np.prod(x.shape[1:]))
    row = np.dtype((np.void, x.dtype.itemsize * items))
    return x.reshape(len(x), items).view(row).reshape(len(x))


def background(factory: Callable[[], Generator[Any, None, None]], depth: int) -> Iterator[Any]:
    """Run the generator ``factory()`` in a thread, ``depth`` items ahead of the caller.

    Exceptions in the thread are re-raised here; closing this generator (or leaving a
    loop over it early) stops and joins the thread and closes the inner generator.
    """
    if depth <= 0:
        yield from factory()
        return
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        inner = factory()
        try:
            for item in inner:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as error:  # handed to the consumer, re-raised there
            slots.put(_Failure(error))
        finally:
            inner.close()

    worker = threading.Thread(target=produce, name="mlaas-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()
