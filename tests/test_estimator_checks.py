"""scikit-learn's own estimator checks over the estimators and their CV versions."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skreg import (
    RegularizedMLPClassifier,
    RegularizedMLPClassifierCV,
    RegularizedMLPRegressor,
    RegularizedMLPRegressorCV,
)

# Minibatch stochastic optimisation: a sample weighted 2 is not the same as the
# sample repeated, because the rows are shuffled into a different sequence of
# minibatches (a different random path), so the two fits end at different
# weights. sklearn's own MLP and SGD estimators fail these checks too.
_STOCHASTIC_PATH = (
    "minibatch SGD: weighting a row differs from repeating it, the random "
    "sequence of minibatches changes with the number of rows"
)
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _STOCHASTIC_PATH,
    "check_sample_weight_equivalence_on_sparse_data": _STOCHASTIC_PATH,
}
# A small search: two candidates, two folds.
_SEARCH = dict(param_grid={"l2": [0.0, 1e-3]}, cv=2, random_state=0)


@parametrize_with_checks(
    [
        RegularizedMLPClassifier(random_state=0),
        RegularizedMLPRegressor(random_state=0),
        RegularizedMLPClassifierCV(**_SEARCH),
        RegularizedMLPRegressorCV(**_SEARCH),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
