"""The shuffled concat of the shuffle buffer."""

from __future__ import annotations

from collections import Counter

import numpy as np

from mlaas_jupyter.stream._pipeline import Batch, concat


def block(first: int, n: int) -> Batch:
    ids = np.arange(first, first + n)
    x = np.column_stack([ids, -ids]).astype(np.float32)
    return Batch(x, ids.astype(np.int64), ids.astype(np.float32) / 2)


def test_concat_is_an_aligned_permutation_of_every_row() -> None:
    blocks = [block(0, 700), block(700, 300), block(1000, 24)]
    pool = concat(blocks, np.random.default_rng(1))
    assert sorted(pool.y.tolist()) == list(range(1024))
    assert np.array_equal(pool.x[:, 0], pool.y.astype(np.float32))
    assert np.array_equal(pool.x[:, 1], -pool.y.astype(np.float32))
    assert np.array_equal(pool.w, pool.y.astype(np.float32) / 2)
    # every block is mixed, the first one too, and the later ones land everywhere
    assert not np.all(np.diff(pool.y[pool.y < 700]) > 0)
    assert pool.y[:300].max() >= 700
    assert pool.y[-300:].min() < 700


def test_concat_without_rng_keeps_the_order() -> None:
    pool = concat([block(0, 5), block(5, 3)], None)
    assert pool.y.tolist() == list(range(8))
    assert np.array_equal(pool.x[:, 0], np.arange(8, dtype=np.float32))


def test_concat_gives_uniform_permutations() -> None:
    rng = np.random.default_rng(3)
    seen = Counter(tuple(concat([block(0, 2), block(2, 1)], rng).y.tolist()) for _ in range(6000))
    assert len(seen) == 6
    assert max(abs(n - 1000) for n in seen.values()) < 100
