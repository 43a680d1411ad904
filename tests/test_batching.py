"""The in-TensorFlow mini-batches equal scipy's row slicing."""

import numpy as np
import scipy.sparse as sp

from skreg._batching import make_dataset, n_batches
from skreg._tensorflow import tf


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
