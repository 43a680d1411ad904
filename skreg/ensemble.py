"""Fold ensembles: the networks a cross-validation trained, one per fold,
kept and averaged as the final model instead of a refit on all the rows.

A CV search with ``fold_ensemble=True`` makes one from its best candidate's
fold networks, which it has trained anyway: no refit is trained. Each
member learned from (k - 1)/k of the rows; their average is often as
accurate as one network refitted on all of them, or more, as the bagged
models of AutoGluon and the ensembles of TabM are. Fitted on its own, a
fold ensemble trains one clone of its ``estimator`` per fold of ``cv``.
"""

import numpy as np
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, clone,
                          is_classifier)
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

__all__ = ["FoldEnsembleClassifier", "FoldEnsembleRegressor"]


class _BaseFoldEnsemble(BaseEstimator):
    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "cv": ["cv_object"],
    }

    def __init__(self, estimator, *, cv=5):
        self.estimator = estimator
        self.cv = cv

    @classmethod
    def from_fitted(cls, estimator, members, *, cv):
        """The ensemble of ``members`` (fitted clones of ``estimator``, one
        per fold of ``cv``), fitted without training anything."""
        ensemble = cls(estimator, cv=cv)
        ensemble._set_members(list(members))
        return ensemble

    # The members validate their own parameters (nested: not skipped).
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit a clone of ``estimator`` on the training rows of each fold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter as ``cv``.

        Returns
        -------
        self
        """
        splits = check_cv(self.cv, y, classifier=is_classifier(self)).split(X, y, groups)
        members = []
        for train, _ in splits:
            weight = None if sample_weight is None else _safe_indexing(sample_weight, train)
            member = clone(self.estimator)
            member.fit(_safe_indexing(X, train), _safe_indexing(y, train), sample_weight=weight)
            members.append(member)
        self._set_members(members)
        return self

    def _set_members(self, members):
        if not members:
            raise ValueError("A fold ensemble needs at least one fitted network.")
        self.estimators_ = members
        self.n_features_in_ = members[0].n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = True
        return tags


class FoldEnsembleClassifier(ClassifierMixin, _BaseFoldEnsemble):
    """The average of classifiers fitted on the folds of a cross-validation.

    Its probabilities are the mean of its members' (each member's columns
    placed at its classes among the ensemble's, so a fold that lacked a
    class counts 0 for it); its prediction is their most probable class
    (labels above 0.5 for multilabel targets).

    Parameters
    ----------
    estimator : classifier
        What each member is a clone of, such as a
        :class:`~skreg.RegularizedMLPClassifier`.
    cv : int, cross-validation generator or iterable, default=5
        The folds whose training rows each member learns from (stratified
        for an int), as in ``cross_validate``.

    Attributes
    ----------
    estimators_ : list of classifiers
        The fitted members, one per fold.
    classes_ : ndarray of shape (n_classes,)
        The class labels (of all the members).
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    skreg.RegularizedMLPClassifierCV : with ``fold_ensemble=True``, keeps
        its best candidate's fold networks as one of these.
    """

    def _set_members(self, members):
        super()._set_members(members)
        self._multilabel = bool(getattr(members[0], "_multilabel", False))
        self.classes_ = (members[0].classes_ if self._multilabel
                         else np.unique(np.concatenate([m.classes_ for m in members])))

    def predict_proba(self, X):
        """Mean class probabilities of the members.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "estimators_")
        total = 0.0
        for member in self.estimators_:
            proba = member.predict_proba(X)
            if not self._multilabel and len(member.classes_) != len(self.classes_):
                placed = np.zeros((proba.shape[0], len(self.classes_)))
                placed[:, np.searchsorted(self.classes_, member.classes_)] = proba
                proba = placed
            total = total + proba
        return total / len(self.estimators_)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X):
        """Scores whose sign or largest column gives :meth:`predict`: the
        log-odds of the mean probabilities (binary or multilabel), or their
        logarithm (multiclass).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            if self._multilabel:
                return np.log(proba) - np.log1p(-proba)
            if len(self.classes_) == 2:
                return np.log(proba[:, 1]) - np.log(proba[:, 0])
            return np.log(proba)

    def predict(self, X):
        """The most probable class of the mean probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]


class FoldEnsembleRegressor(RegressorMixin, _BaseFoldEnsemble):
    """The average of regressors fitted on the folds of a cross-validation.

    Parameters
    ----------
    estimator : regressor
        What each member is a clone of, such as a
        :class:`~skreg.RegularizedMLPRegressor`.
    cv : int, cross-validation generator or iterable, default=5
        The folds whose training rows each member learns from.

    Attributes
    ----------
    estimators_ : list of regressors
        The fitted members, one per fold.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    skreg.RegularizedMLPRegressorCV : with ``fold_ensemble=True``, keeps its
        best candidate's fold networks as one of these.
    """

    def predict(self, X):
        """Mean prediction of the members.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self, "estimators_")
        return np.mean([member.predict(X) for member in self.estimators_], axis=0)
