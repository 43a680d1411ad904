"""The in-TensorFlow mini-batches equal scipy's row slicing."""

import numpy as np
import pytest
import scipy.sparse as sp

from skreg._engine.partition import (
    STEPS_PER_PARTITION,
    PartitionedBatches,
    column_major,
    csr_tensors,
    gradient_split,
    row_ids_of,
)
from skreg._estimators.keras_input import make_dataset, n_batches
from skreg._backend.tensorflow import tf


def _csr_with_empty_rows():
    rng = np.random.RandomState(0)
    X = sp.random(50, 30, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    X = X.tolil()
    X[[0, 7, 8, 49], :] = 0  # empty rows, also first and last
    return X.tocsr(), rng


def test_sparse_batches_equal_scipy_rows_in_shuffled_order():
    X, rng = _csr_with_empty_rows()
    y = np.arange(50, dtype=np.float32)
    batches = list(make_dataset(X, y, batch_size=16, shuffle=True, seed=3))
    assert len(batches) == n_batches(50, 16) == 4
    seen = []
    for x_batch, y_batch in batches:
        rows = y_batch.numpy().astype(int)  # y carries the row numbers
        np.testing.assert_array_equal(tf.sparse.to_dense(x_batch).numpy(), X[rows].toarray())
        seen.extend(rows)
    assert sorted(seen) == list(range(50))
    assert seen != list(range(50))  # shuffled


def test_a_batch_of_only_empty_rows():
    X = sp.csr_matrix((3, 5), dtype=np.float32)
    (x_batch,) = next(iter(make_dataset(X, batch_size=3)))
    assert x_batch.indices.shape[0] == 0
    assert tuple(x_batch.dense_shape.numpy()) == (3, 5)


def test_each_epoch_has_a_new_order_and_the_seed_repeats_them():
    X, _ = _csr_with_empty_rows()
    y = np.arange(50, dtype=np.float32)

    def epochs(seed):
        data = make_dataset(X, y, batch_size=50, shuffle=True, seed=seed)
        return [next(iter(data))[1].numpy().tolist() for _ in range(2)]

    first, second = epochs(seed=1)
    assert first != second
    assert epochs(seed=1) == [first, second]


def _epoch_batches(X, batch_size, order, binary):
    """Every step's (rows, halves, non-zeros in column order) as numpy, from
    PartitionedBatches, partition by partition."""
    data = (*csr_tensors(X), *column_major(X, binary), tf.constant(7, tf.int64), row_ids_of(X))
    batches = PartitionedBatches(*data, binary=binary)
    position = tf.math.invert_permutation(tf.constant(order, tf.int64))
    n_steps = n_batches(X.shape[0], batch_size)
    steps = []
    for first in range(0, n_steps, STEPS_PER_PARTITION):
        partition = batches.partition(position, batch_size, first)
        for step in range(min(STEPS_PER_PARTITION, n_steps - first)):
            halves = []
            for second in (0, 1):
                n_rows, entries = partition.half(step, second)
                halves.append((int(n_rows), [None if a is None else a.numpy() for a in entries]))
            by_column = [None if a is None else a.numpy() for a in partition.by_column(step)]
            steps.append((partition.batch_rows(step).numpy(), halves, by_column))
    return steps


def _coo(X):
    X = X.tocoo()
    return X.row, X.col, X.data


@pytest.mark.parametrize("binary", [False, True], ids=["values", "multi-hot"])
def test_partitioned_batches_hold_the_rows_of_a_shuffled_cut(binary):
    X, rng = _csr_with_empty_rows()
    if binary:
        X.data[:] = 1.0
    X = sp.vstack([X] * 6, format="csr")  # 300 rows: batches of 2 take two partitions
    batch_size = 2
    order = rng.permutation(X.shape[0])
    steps = _epoch_batches(X, batch_size, order, binary)
    assert len(steps) == 150 > STEPS_PER_PARTITION
    for s, (rows, halves, (places, columns, values)) in enumerate(steps):
        # The rows the order gives the batch, each half sorted.
        cut = order[s * batch_size : (s + 1) * batch_size]
        first = len(cut) // 2
        np.testing.assert_array_equal(rows, np.r_[np.sort(cut[:first]), np.sort(cut[first:])])
        # Each half's non-zeros in row order: scipy's of the same rows.
        offset = 0
        for n_rows, (h_places, h_columns, h_values) in halves:
            half_rows = rows[offset : offset + n_rows]
            row, col, data = _coo(X[half_rows])
            np.testing.assert_array_equal(h_places, row)
            np.testing.assert_array_equal(h_columns, col)
            if binary:
                assert h_values is None
            else:
                np.testing.assert_array_equal(h_values, data)
            offset += n_rows
        assert offset == len(rows)
        # The batch's non-zeros in column order (by row number within a column).
        row, col, data = _coo(X[rows])
        by_column = np.lexsort((rows[row], col))
        np.testing.assert_array_equal(places, row[by_column])
        np.testing.assert_array_equal(columns, col[by_column])
        if not binary:
            np.testing.assert_array_equal(values, data[by_column])


def test_gradient_split_balances_equal_columns_and_frequent_ones():
    uniform = sp.csr_matrix(np.ones((40, 100), np.float32))
    assert 45 <= gradient_split(uniform, 10) <= 55
    # Frequent first columns, as MultiHotVectorizer orders words: the cut moves left.
    rng = np.random.RandomState(0)
    frequency = 1.0 / np.arange(1, 101)
    skewed = sp.csr_matrix((rng.rand(400, 100) < frequency).astype(np.float32))
    assert 0 < gradient_split(skewed, 10) < 45
