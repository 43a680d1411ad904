"""Cross-validated penalty search: every candidate and fold trained at once.

``RegularizedMLPClassifierCV`` and ``RegularizedMLPRegressorCV`` are to the
regularized networks what ``LogisticRegressionCV`` is to logistic
regression: an estimator that runs its own search. Candidates x folds
networks train side by side as the towers of one TensorFlow program
(:mod:`skreg._engine`), in groups under a memory budget; each tower learns
from its fold's training rows and is scored on the held-out rows after
every epoch. What the tower program does not cover is searched one fit at
a time, with the same results.

The candidates come from a grid or are sampled (``param_distributions``);
the search runs in rungs (:mod:`skreg._search.schedule`): one for a plain search,
several with successive halving, whose survivors go on training in their
towers. Modules: ``_search_runs`` (the two ways of running), ``_search_groups``
(a group of towers, here or as a joblib task), ``_search_scores`` (held-out
scores), ``_search_results`` (``cv_results_`` and the fitted attributes).
"""

import numbers
import time

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context, clone, is_classifier
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import ParameterGrid, ParameterSampler, check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._estimators.base import BaseRegularizedMLP, checked_sample_weight
from ._estimators.docs import search_doc
from ._estimators.interface import encoded_targets, is_multilabel
from ._estimators.params import did_you_mean
from ._estimators.rollback import rolled_back_on_failure
from ._search.schedule import halving_rungs, single_rung, survivors
from ._search.results import RungRows, search_results
from ._search.structures import FIXED_PARAMS, SearchRuns
from ._search.scores import SearchScores
from ._estimators.sklearn_callbacks import GroupTasks as _GroupTasks
from ._estimators.sklearn_callbacks import SearchTask as _SearchTask
from ._estimators.sklearn_callbacks import with_callbacks
from .ensemble import FoldEnsembleClassifier, FoldEnsembleRegressor
from .mlp import RegularizedMLPClassifier, RegularizedMLPRegressor
from .network import _check_network_params

__all__ = ["RegularizedMLPClassifierCV", "RegularizedMLPRegressorCV"]

DEFAULT_PARAM_GRID = {"l2": [0.0, 1e-4, 1e-3, 1e-2]}

_search_constraints = {
    "param_grid": [dict, list, None],
    "param_distributions": [dict, list, None],
    "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "factor": [Interval(numbers.Integral, 2, None, closed="left"), None],
    "min_epochs": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "cv": ["cv_object"],
    "scoring": [StrOptions(set(get_scorer_names())), callable, list, tuple, set, dict, None],
    "refit": ["boolean", str],
    "fold_ensemble": ["boolean"],
    "return_train_score": ["boolean"],
    "aggressive_elimination": ["boolean"],
    "error_score": [StrOptions({"raise"}), numbers.Real],
    "select_epochs": ["boolean"],
    "memory_budget": [Interval(numbers.Real, 0, None, closed="neither")],
    "n_jobs": [numbers.Integral, None],
}


class _BaseRegularizedMLPCV(BaseRegularizedMLP):
    """The search; the two public classes add the base estimator's own parameters."""

    _estimator_class = None

    def _base_estimator(self):
        params = self.get_params(deep=False)
        for name in _search_constraints:
            params.pop(name)
        return self._estimator_class(**params)

    def _candidates(self, base):
        """The candidates: the grid's, or ``n_iter`` drawn from the
        distributions with ``random_state`` (as RandomizedSearchCV's)."""
        if self.param_grid is not None and self.param_distributions is not None:
            raise ValueError(
                "param_grid and param_distributions are exclusive: give a grid to try "
                "every combination, or distributions to sample n_iter candidates."
            )
        sampled = self.param_distributions is not None
        space = self.param_distributions if sampled else self.param_grid
        space = DEFAULT_PARAM_GRID if space is None else space
        name = "param_distributions" if sampled else "param_grid"
        for space_dict in space if isinstance(space, list) else [space]:
            if not isinstance(space_dict, dict):
                raise TypeError(f"{name} must be a dict or a list of dicts; got {space!r}.")
            for param, values in space_dict.items():
                self._check_searchable(base, name, param)
                if sampled and not (hasattr(values, "rvs") or isinstance(values, (list, tuple))):
                    raise TypeError(
                        f"param_distributions[{param!r}] must be a list of values or a "
                        "scipy.stats distribution (with an rvs method, such as "
                        f"loguniform(1e-6, 1e-1)); got {values!r}."
                    )
        if sampled:
            candidates = list(ParameterSampler(space, self.n_iter, random_state=self.random_state))
        else:
            candidates = list(ParameterGrid(space))
        if not candidates:
            raise ValueError(f"{name} has no candidates.")
        for candidate in candidates:
            network = clone(base).set_params(**candidate)
            network._validate_params()
            _check_network_params(network.hidden_layer_sizes, network.l1, network.l2,
                                  network.dropout)  # fmt: skip
        return candidates

    def _check_searchable(self, base, name, param):
        if param in FIXED_PARAMS:
            raise ValueError(f"{name} cannot search {param!r}: {FIXED_PARAMS[param]}.")
        # Routed options (optimizer__momentum, model__..., fit__...) are
        # checked as the candidates' set_params takes them.
        if param in base.get_params() or "__" in param:
            return
        known = [p for p in base.get_params() if p not in FIXED_PARAMS]
        raise ValueError(f"{name} cannot search {param!r}: it is not a parameter of "
                         f"{type(base).__name__}.{did_you_mean(param, known)}")  # fmt: skip

    def _rungs(self, n_candidates, epochs):
        if self.factor is None:
            return single_rung(n_candidates, epochs)
        return halving_rungs(n_candidates, epochs, factor=self.factor, min_epochs=self.min_epochs,
                             aggressive_elimination=self.aggressive_elimination)  # fmt: skip

    def _check_fit_params(self):
        if self.early_stopping:
            raise ValueError(
                f"{type(self).__name__} does not stop early: it scores every epoch on "
                "the held-out folds instead. Set select_epochs=True to choose the number "
                "of epochs by cross-validation."
            )
        if self.fold_ensemble and not self.refit:
            raise ValueError("fold_ensemble=True keeps the best candidate's fold networks as "
                             "the final model; refit=False asks for none.")  # fmt: skip
        if self.fold_ensemble and self.select_epochs:
            raise ValueError(
                "fold_ensemble=True keeps the fold networks as trained to the last epoch, "
                "while select_epochs=True chooses an earlier one for the final model: "
                "set one of them (the refit trains the chosen epochs)."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Score every candidate on every fold, then refit the best on all the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; scipy sparse input stays sparse.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (class labels for the classifier).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the training loss of every fit (not in
            the scores).
        groups : array-like of shape (n_samples,), default=None
            Group labels of the samples, for a group splitter as ``cv``
            (``GroupKFold``: for instance, every review of one author in one
            fold), as ``GridSearchCV.fit`` passes them.

        Returns
        -------
        self
        """
        # All or nothing, as the plain estimators' fits: a search that fails
        # or is interrupted (in the search or the refit) leaves every fitted
        # attribute as it was, from an earlier fit or none.
        with rolled_back_on_failure(self, keep_weights=False):
            return self._fit_search(X, y, sample_weight, groups)

    # Inside the rollback, so that callbacks are torn down before a failed
    # search restores the estimator.
    @with_callbacks
    def _fit_search(self, X, y, sample_weight, groups):
        self._check_fit_params()
        base = self._base_estimator()
        _check_network_params(base.hidden_layer_sizes, base.l1, base.l2, base.dropout)
        candidates = self._candidates(base)
        X, y = self._validate_X_y(X, y, reset=True)
        template = clone(base)
        y_encoded = encoded_targets(template, y)
        if is_classifier(self) and not is_multilabel(template):
            y = column_or_1d(y)  # a column vector, as the classifier takes it (it warned)
        self._set_target_attributes(template)
        if sample_weight is not None:
            sample_weight = checked_sample_weight(sample_weight, X)
        if groups is not None:
            groups = column_or_1d(groups)
            if len(groups) != X.shape[0]:
                raise ValueError(f"groups has {len(groups)} labels for {X.shape[0]} samples.")
        splits = list(check_cv(self.cv, y, classifier=is_classifier(self)).split(X, y, groups))
        self.n_splits_ = len(splits)

        # scikit-learn's callbacks: the search, then the refit (whose epochs
        # are its subtasks), as the two subtasks of this fit's task.
        refits = self.refit and not self.fold_ensemble
        task = _SearchTask(self, X, y, n_subtasks=1 + bool(refits))
        # Its groups of towers (two may run at once) are the search's subtasks.
        with task.subtask("search", max_subtasks=None, sequential_subtasks=False) as context:
            search = SearchRuns.plan(self, base, template, X, candidates)
            self.training_path_, self.training_path_reason_ = search.training_path, search.reason
            if self.verbose and search.reason is not None:
                print(f"[{type(self).__name__}] searching one fit at a time, several times "
                      "slower than side by side on skreg's program, which does not cover "
                      f"{search.reason}.", flush=True)  # fmt: skip
            results = SearchScores(template, self.scoring, len(candidates), len(splits),
                                   base.epochs, refit=self.refit,
                                   train_scores=self.return_train_score)  # fmt: skip
            tasks = _GroupTasks(context, self, halving=self.factor is not None)
            search.start(X, y, y_encoded, sample_weight, splits, results, tasks=tasks)
            rows = self._run_rungs(search, self._rungs(len(candidates), base.epochs), results,
                                   tasks)  # fmt: skip
            search.report_failures()
            self._record_results(candidates, results, rows)
            if self.fold_ensemble:
                start = time.perf_counter()
                self.best_estimator_ = self._fold_ensemble(search, rows, base, X, y,
                                                           sample_weight)  # fmt: skip
                self.refit_time_ = time.perf_counter() - start
            search.finish()

        if refits:
            start = time.perf_counter()
            self.best_estimator_ = clone(base).set_params(**self.best_params_)
            # The refit runs on the program the towers traced, and on the
            # data as the towers took it (same matrix).
            with search.sharing(self.best_estimator_, self.best_params_), \
                    task.subtask("refit", self.best_estimator_):
                self.best_estimator_.fit(X, y, sample_weight=sample_weight)
            self.refit_time_ = time.perf_counter() - start
        task.end()
        return self

    def _fold_ensemble(self, search, rows, base, X, y, sample_weight):
        """The best candidate's fold networks, averaged (before the search
        lets go of them)."""
        best = int(np.concatenate([row.candidates for row in rows])[self.best_index_])
        try:
            members = search.fold_networks(best, X, y, sample_weight)
        except ValueError as error:
            raise ValueError(f"fold_ensemble=True has no ensemble to keep: {error}; "
                             "set fold_ensemble=False to refit the best candidate.") from None
        ensemble = FoldEnsembleClassifier if is_classifier(self) else FoldEnsembleRegressor
        return ensemble.from_fitted(clone(base).set_params(**self.best_params_), members,
                                    cv=self.cv)  # fmt: skip

    def _run_rungs(self, search, rungs, results, tasks):
        """Train the rungs one after the other, the best ``1/factor`` of each
        going on to the next; the rows of ``cv_results_``, a list per rung.
        ``tasks``: scikit-learn's callbacks' tasks of the rungs and groups."""
        alive = list(range(rungs[0].n_candidates))
        rows = []
        start = time.perf_counter()
        for rung in rungs:
            trained = rows[-1].rung.epochs if rows else 0
            with tasks.rung(rung.number, rung.epochs - trained):
                search.train(alive, rung.epochs)
            rows.append(RungRows(rung, alive, results, select_epochs=self.select_epochs))
            if self.verbose and len(rungs) > 1:
                print(rows[-1].describe(type(self).__name__, len(rungs), search.candidates,
                                        time.perf_counter() - start), flush=True)  # fmt: skip
            if rung is not rungs[-1]:
                alive = survivors(alive, rows[-1].split_scores.mean(axis=1), self.factor)
        return rows

    def _record_results(self, candidates, results, rows):
        for name, value in search_results(candidates, results, rows,
                                          select_epochs=self.select_epochs,
                                          factor=self.factor, epochs=self.epochs,
                                          error_score=self.error_score).items():  # fmt: skip
            setattr(self, name, value)

    # -- prediction, through the refitted best estimator --------------------------

    def _best(self, method):
        check_is_fitted(self, "cv_results_")
        if not self.refit:
            raise AttributeError(
                f"This {type(self).__name__} was fitted with refit=False: {method} needs "
                "the best candidate refitted on all the data (refit=True)."
            )
        return self.best_estimator_

    def predict(self, X):
        """Predictions of ``best_estimator_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray
        """
        return self._best("predict").predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class RegularizedMLPClassifierCV(ClassifierMixin, _BaseRegularizedMLPCV):
    __doc__ = search_doc(
        RegularizedMLPClassifier.__doc__,
        """A :class:`RegularizedMLPClassifier` that picks its penalties (and
    optionally its number of epochs) by cross-validation, training every
    candidate and fold at once.

    Same answers as ``GridSearchCV`` over ``RegularizedMLPClassifier`` with
    the same folds, in a fraction of the time on small networks. The
    remaining parameters are the classifier's: they hold for every
    candidate and for the refit.
""",
    ) + """
    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skreg import RegularizedMLPClassifierCV
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> search = RegularizedMLPClassifierCV(param_grid={"l2": [0, 1e-3, 1e-2]}, cv=3,
    ...                                     random_state=0).fit(X, y)
    >>> sorted(search.best_params_)
    ['l2']
    >>> search.test_score_curves_.shape
    (3, 20)
    """

    _estimator_class = RegularizedMLPClassifier
    _parameter_constraints = {
        **RegularizedMLPClassifier._parameter_constraints,
        **_search_constraints,
    }

    def __init__(
        self,
        *,
        param_grid=None,
        param_distributions=None,
        n_iter=10,
        factor=None,
        min_epochs="auto",
        aggressive_elimination=False,
        cv=5,
        scoring=None,
        refit=True,
        fold_ensemble=False,
        error_score=np.nan,
        return_train_score=False,
        select_epochs=False,
        memory_budget=512,
        n_jobs=None,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        hidden_noise=0.0,
        max_norm=None,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        weight_decay=None,
        batch_size="auto",
        epochs=20,
        class_weight=None,
        label_smoothing=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        random_state=None,
        verbose=0,
        **routed_params,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, l1=l1, l2=l2,
            dropout=dropout, hidden_noise=hidden_noise, max_norm=max_norm, batch_norm=batch_norm,
            input_dropout=input_dropout, input_noise=input_noise, image_shape=image_shape,
            image_shift=image_shift, image_rotation=image_rotation, image_flip=image_flip,
            optimizer=optimizer, learning_rate=learning_rate, weight_decay=weight_decay,
            batch_size=batch_size, epochs=epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, warm_start=warm_start,
            random_state=random_state, verbose=verbose, **routed_params,
        )  # fmt: skip
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.param_grid = param_grid
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.factor = factor
        self.min_epochs = min_epochs
        self.aggressive_elimination = aggressive_elimination
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.fold_ensemble = fold_ensemble
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.select_epochs = select_epochs
        self.memory_budget = memory_budget
        self.n_jobs = n_jobs

    def _set_target_attributes(self, template):
        self.classes_ = template.classes_

    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._best("predict_proba").predict_proba(X)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return self._best("predict_log_proba").predict_log_proba(X)

    def decision_function(self, X):
        """Logits of ``best_estimator_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._best("decision_function").decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class RegularizedMLPRegressorCV(RegressorMixin, _BaseRegularizedMLPCV):
    __doc__ = search_doc(
        RegularizedMLPRegressor.__doc__,
        """A :class:`RegularizedMLPRegressor` that picks its penalties (and
    optionally its number of epochs) by cross-validation, training every
    candidate and fold at once.

    Same answers as ``GridSearchCV`` over ``RegularizedMLPRegressor`` with
    the same folds, in a fraction of the time on small networks. The
    remaining parameters are the regressor's: they hold for every
    candidate and for the refit.
""",
    )

    _estimator_class = RegularizedMLPRegressor
    _parameter_constraints = {
        **RegularizedMLPRegressor._parameter_constraints,
        **_search_constraints,
    }

    def __init__(
        self,
        *,
        param_grid=None,
        param_distributions=None,
        n_iter=10,
        factor=None,
        min_epochs="auto",
        aggressive_elimination=False,
        cv=5,
        scoring=None,
        refit=True,
        fold_ensemble=False,
        error_score=np.nan,
        return_train_score=False,
        select_epochs=False,
        memory_budget=512,
        n_jobs=None,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        hidden_noise=0.0,
        max_norm=None,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        weight_decay=None,
        batch_size="auto",
        epochs=20,
        loss="squared_error",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        random_state=None,
        verbose=0,
        **routed_params,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, l1=l1, l2=l2,
            dropout=dropout, hidden_noise=hidden_noise, max_norm=max_norm, batch_norm=batch_norm,
            input_dropout=input_dropout, input_noise=input_noise, image_shape=image_shape,
            image_shift=image_shift, image_rotation=image_rotation, image_flip=image_flip,
            optimizer=optimizer, learning_rate=learning_rate, weight_decay=weight_decay,
            batch_size=batch_size, epochs=epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, warm_start=warm_start,
            random_state=random_state, verbose=verbose, **routed_params,
        )  # fmt: skip
        self.loss = loss
        self.param_grid = param_grid
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.factor = factor
        self.min_epochs = min_epochs
        self.aggressive_elimination = aggressive_elimination
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.fold_ensemble = fold_ensemble
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.select_epochs = select_epochs
        self.memory_budget = memory_budget
        self.n_jobs = n_jobs

    def _set_target_attributes(self, template):
        self.n_outputs_ = template.n_outputs_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
