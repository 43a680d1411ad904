"""Held-out scores and losses of a search's networks, every epoch: one
metric or several (``scoring`` as a list, a dict or a callable returning a
dict, as scikit-learn's searches take it), on the held-out rows and, with
``return_train_score``, on the training rows."""

import copy
import threading
import time

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring

from .._estimators.params import did_you_mean

from .._backend.tensorflow import tf
from .._engine.losses import loss_kind, per_sample_loss
from .._engine.trainer import label_tensor
from .._estimators.interface import is_multilabel, keras_loss, predictions_from_outputs

__all__ = ["SearchScores", "refit_metric"]

# The name of a single metric's columns (``mean_test_score``).
SINGLE = "score"


def refit_metric(scoring, refit):
    """The metric that ranks the candidates (halving's, ``best_*``'s):
    ``"score"`` for one metric, else ``refit``, which must name one of
    ``scoring``'s (a callable's names are known when it first scores:
    :meth:`SearchScores.add` checks them then)."""
    if not isinstance(scoring, (list, tuple, set, dict)):
        return SINGLE
    names = list(scoring)
    if not isinstance(refit, str):
        raise ValueError(
            f"With several metrics (scoring={scoring!r}), refit must name the one that "
            f"ranks the candidates and picks the best, one of {names}; got refit={refit!r}."
        )
    if refit not in names:
        raise ValueError(f"refit={refit!r} is not a metric of scoring: one of {names}."
                         f"{did_you_mean(refit, names)}")  # fmt: skip
    return refit


def _stand_in(template, outputs):
    """A copy of the encoded, unfitted template that predicts from the given
    network outputs: scikit-learn's scorers then score held-out outputs.
    One per scoring, since two groups of towers may score at once."""
    stand_in = copy.copy(template)
    stand_in._raw_predict = lambda X: outputs
    return stand_in


class SearchScores:
    """Scores and losses of every candidate, fold and epoch.

    ``tables[subset][metric]``: [candidates, folds, epochs] of each metric
    on the held-out rows (``"test"``) and, with ``train_scores``, the
    training rows (``"train"``); ``scores`` is the ranking metric's
    held-out table (:func:`refit_metric`).
    """

    def __init__(self, template, scoring, n_candidates, n_splits, n_epochs, *, refit=True,
                 train_scores=False):  # fmt: skip
        self.shape = shape = (n_candidates, n_splits, n_epochs)
        self.metric = refit_metric(scoring, refit)
        self._refit = refit
        self._lock = threading.Lock()  # two groups may score at once
        self.tables = {"test": {self.metric: np.full(shape, np.nan)}}
        if train_scores:
            self.tables["train"] = {}
        self.scores = self.tables["test"][self.metric]
        self.train_losses = np.full(shape, np.nan)
        self.test_losses = np.full(shape, np.nan)
        self.fit_times = np.zeros(shape[:2])
        self.score_times = np.zeros(shape[:2])
        self._template = template
        self._scoring = scoring
        self._scorer = check_scoring(template, scoring=scoring)
        self._loss = loss_kind(keras_loss(template))

    @property
    def train_scores(self):
        """Whether the training rows are scored too (``return_train_score``)."""
        return "train" in self.tables

    def add(self, networks, outputs, y, y_encoded, first_epoch=0, subset="test"):
        """Score the ``outputs`` of some networks on rows they share (one
        fold's held-out rows, or its training rows with ``subset="train"``),
        for the epochs from ``first_epoch`` on.

        ``networks``: their (candidate, fold); ``outputs``: [epochs, rows,
        networks, outputs]. Every network and epoch is scored at once.
        """
        start = time.perf_counter()
        n_epochs, n_rows, n_networks = outputs.shape[:3]
        finite = np.isfinite(outputs).all(axis=(1, 3))  # [epochs, networks]
        candidates, folds = (list(column) for column in zip(*networks))
        epochs = slice(first_epoch, first_epoch + n_epochs)
        for metric, scores in self._scores(outputs, y, finite).items():
            table = self.tables[subset].setdefault(metric, np.full(self.shape, np.nan))
            table[candidates, folds, epochs] = np.where(finite, scores, np.nan).T
        if subset == "test":
            self._add_losses(candidates, folds, epochs, outputs, y_encoded, finite)
        self.score_times[candidates, folds] += (time.perf_counter() - start) / n_networks

    def _scores(self, outputs, y, finite):
        """{metric: [epochs, networks]} of the outputs [epochs, rows, networks, outputs]."""
        if self._scoring is None:
            return {SINGLE: self._default_scores(outputs, y)}
        n_epochs, n_rows, n_networks = outputs.shape[:3]
        scores = {}
        placeholder = np.empty((n_rows, 0))  # the stand-in ignores X
        for epoch, k in np.argwhere(finite):
            stand_in = _stand_in(self._template, outputs[epoch, :, k].astype(np.float64))
            value = self._scorer(stand_in, placeholder, y)
            for metric, score in (value.items() if isinstance(value, dict)
                                  else [(SINGLE, value)]):  # fmt: skip
                scores.setdefault(metric, np.full((n_epochs, n_networks), np.nan))[epoch, k] = score
        if scores and self.metric not in scores:
            self._name_the_metric(sorted(scores))
        return scores or {self.metric: np.full((n_epochs, n_networks), np.nan)}

    def _name_the_metric(self, names):
        """A callable scoring gave several metrics: ``refit`` names the one
        that ranks, whose tables (made for one metric) take its name."""
        with self._lock:
            if self.metric in names:
                return
            if not isinstance(self._refit, str) or self._refit not in names:
                raise ValueError(
                    f"scoring gave the metrics {names}: refit must name the one that ranks "
                    f"the candidates and picks the best; got refit={self._refit!r}."
                )
            for tables in self.tables.values():
                if self.metric in tables:
                    tables[self._refit] = tables.pop(self.metric)
            self.metric = self._refit

    def _add_losses(self, candidates, folds, epochs, outputs, y_encoded, finite):
        n_epochs, n_rows, n_networks = outputs.shape[:3]
        # One loss computation for every epoch and network: [epochs * networks * rows, outputs].
        losses = per_sample_loss(
            self._loss,
            tf.constant(np.transpose(outputs, (0, 2, 1, 3)).reshape(-1, outputs.shape[3])),
            tf.tile(label_tensor(y_encoded), [n_epochs * n_networks, 1]),
        )
        losses = np.reshape(losses.numpy(), (n_epochs, n_networks, n_rows)).mean(axis=2)
        self.test_losses[candidates, folds, epochs] = np.where(finite, losses, np.nan).T

    def _default_scores(self, outputs, y_test):
        """The estimator's ``score`` of each network after each epoch, all
        at once ([epochs, networks] from [epochs, rows, networks, outputs]):
        accuracy_score (subset accuracy for multilabel) or r2_score with
        uniformly averaged outputs, as scikit-learn computes them."""
        template = self._template
        if is_classifier(template):
            if is_multilabel(template):
                return np.all((outputs > 0) == (y_test[:, None, :] > 0), axis=3).mean(axis=1)
            codes = outputs[..., 0] > 0 if outputs.shape[3] == 1 else outputs.argmax(axis=3)
            return (template.classes_[codes.astype(np.intp)] == y_test[:, None]).mean(axis=1)
        y = np.asarray(y_test, np.float64).reshape(len(y_test), 1, -1)
        predictions = predictions_from_outputs(template, outputs.astype(np.float64))
        residual = ((predictions - y) ** 2).sum(axis=1)  # [epochs, networks, outputs]
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
        return r2.mean(axis=2)
