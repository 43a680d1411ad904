"""Predictions do not depend on which other rows are in the call."""

import numpy as np
import pytest
import scipy.sparse as sp

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("units", [(16, 16), (96,)])
def test_a_row_gets_the_same_output_in_any_batch(sparse, batch_norm, units):
    rng = np.random.RandomState(0)
    X = rng.rand(203, 37).astype(np.float32) * 3
    if sparse:
        X = sp.csr_matrix(np.where(X > 2.4, X, 0))
    y = np.arange(203) % 3
    clf = RegularizedMLPClassifier(hidden_layer_sizes=units, batch_norm=batch_norm,
                                   epochs=3, random_state=0).fit(X, y)  # fmt: skip
    whole = clf.decision_function(X)
    one_by_one = np.vstack([clf.decision_function(X[i : i + 1]) for i in range(X.shape[0])])
    order = rng.permutation(X.shape[0])
    # Float64 sums of the same products in another order differ by ~1e-16 at
    # most; float32 products gave rows 1e-7 apart (the bug this guards).
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(clf.decision_function(X[order]), whole[order],
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    # Still the network's own outputs, to float32 precision.
    keras_outputs = clf.model_.predict(X, verbose=0)
    np.testing.assert_allclose(whole, keras_outputs, rtol=1e-4, atol=1e-5)


def test_regressor_predictions_are_batch_invariant_and_float64():
    rng = np.random.RandomState(1)
    X = rng.randn(120, 9)
    y = X @ rng.randn(9, 2)
    reg = RegularizedMLPRegressor(epochs=3, random_state=0).fit(X, y)
    whole = reg.predict(X)
    assert whole.dtype == np.float64 and whole.shape == (120, 2)
    np.testing.assert_allclose(np.vstack([reg.predict(row[None]) for row in X]), whole,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
