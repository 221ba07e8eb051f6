"""Adapters from :class:`BatchStream` to PyTorch and Keras (imported lazily).

A :class:`BatchStream` already is the NumPy batch iterator; these wrap it without
copying: ``torch.from_numpy`` shares the batch memory, and Keras receives the
NumPy arrays as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from .batches import Batch, BatchStream

__all__ = ["keras_dataset", "torch_batches", "torch_dataset"]

# batches Keras reads before an epoch to learn their shapes (keras'
# NUM_BATCHES_FOR_TENSOR_SPEC is 2); more read outside an epoch are not a probe
_KERAS_PROBE = 4


def _labels_for_training(
    stream: BatchStream, y: np.ndarray[Any, Any], scale: tuple[float, float] | None = None
) -> np.ndarray[Any, Any]:
    # binary and regression losses want float targets; multi-class wants class indices
    if scale is not None and stream.spec.task == "regression":
        return ((y.astype(np.float64) - scale[0]) / scale[1]).astype(np.float32)
    return y.astype(np.float32) if stream.spec.task != "multiclass" else y


def torch_batches(stream: BatchStream, device: Any = None) -> Iterator[tuple[Any, Any, Any]]:
    """One epoch of ``(x, y, w)`` torch tensors, moved to ``device`` when given."""
    import torch

    for batch in stream:
        tensors = (
            torch.from_numpy(batch.x),
            torch.from_numpy(_labels_for_training(stream, batch.y)),
            torch.from_numpy(batch.w),
        )
        if device is not None and str(device) != "cpu":
            tensors = tuple(t.to(device, non_blocking=True) for t in tensors)
        yield tensors


def torch_dataset(stream: BatchStream) -> Any:
    """A ``torch.utils.data.IterableDataset`` of whole batches.

    Use it with ``DataLoader(dataset, batch_size=None)``: batching, shuffling and
    prefetching already happen in the stream, so the loader must not re-batch.
    """
    from torch.utils.data import IterableDataset

    class StreamDataset(IterableDataset):  # type: ignore[misc]
        def __init__(self) -> None:
            self.stream = stream

        def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
            return torch_batches(self.stream)

        def __len__(self) -> int:
            return len(self.stream)

    return StreamDataset()


def keras_dataset(stream: BatchStream, target_scale: tuple[float, float] | None = None) -> Any:
    """A Keras 3 ``PyDataset`` yielding ``(x, y, sample_weight)`` per batch; a regression
    target as ``(y - mean) / std`` with ``target_scale=(mean, std)``.

    Keras asks for batches ``0..len-1`` each epoch, between ``on_epoch_begin`` and
    ``on_epoch_end``; the dataset serves them from one pass of the stream, whatever
    the index (Keras may shuffle the indices; the stream has shuffled the events).
    When balancing by sampling makes a pass end a few batches early, the next pass
    starts; at the end of an epoch the pass is closed.

    Before each ``fit``, Keras reads two batches to learn their shapes, then calls
    ``on_epoch_end`` outside any epoch. Those batches are kept and served again first
    when the epoch begins, from the same pass: closing it there would cost a pass
    started and stopped per epoch (the loader reading and shuffling its first pools
    for two batches, the epoch then waiting for a cold start) and would advance the
    stream's epoch twice per ``fit``. A caller that reads batches without
    ``on_epoch_begin`` (more than a few) ends its epoch with ``on_epoch_end`` as before.
    ``tf.data`` calls ``__getitem__`` from its own threads, prefetching, while Keras
    calls ``on_epoch_begin`` / ``on_epoch_end`` from the caller's: a lock keeps them
    from touching the pass at the same time.
    """
    import keras

    class StreamPyDataset(keras.utils.PyDataset):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.stream = stream
            self._iterator: Iterator[Batch] | None = None
            self._lock = threading.Lock()
            self._in_epoch = False
            self._probed: list[tuple[Any, Any, Any]] | None = []  # None: more than a probe
            self._replay: list[tuple[Any, Any, Any]] = []

        def __len__(self) -> int:
            return max(1, len(self.stream))

        def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
            with self._lock:
                if self._replay:
                    return self._replay.pop(0)
                item = self._next()
                if not self._in_epoch and self._probed is not None:
                    self._probed.append(item)
                    if len(self._probed) > _KERAS_PROBE:
                        self._probed = None  # a caller reading an epoch without Keras
                return item

        def _next(self) -> tuple[Any, Any, Any]:
            if self._iterator is None:
                self._iterator = iter(self.stream)
            batch = next(self._iterator, None)
            if batch is None:
                self._iterator = iter(self.stream)
                batch = next(self._iterator)
            return batch.x, _labels_for_training(self.stream, batch.y, target_scale), batch.w

        def on_epoch_begin(self) -> None:
            with self._lock:
                self._in_epoch = True
                self._replay, self._probed = self._probed or [], []

        def on_epoch_end(self) -> None:
            with self._lock:
                if not self._in_epoch and self._probed:
                    return  # Keras's reset after its shape probe: the pass goes on
                self._in_epoch = False
                self._probed, self._replay = [], []
                if self._iterator is not None:
                    close = getattr(self._iterator, "close", None)
                    if close is not None:
                        close()
                self._iterator = None

    return StreamPyDataset()
