"""Held-out scores and losses of a search's networks, every epoch."""

import copy
import time

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring

from .._backend.tensorflow import tf
from .._engine.losses import loss_kind, per_sample_loss
from .._engine.trainer import label_tensor
from .._estimators.interface import is_multilabel, keras_loss, predictions_from_outputs

__all__ = ["SearchScores"]


def _stand_in(template, outputs):
    """A copy of the encoded, unfitted template that predicts from the given
    network outputs: scikit-learn's scorers then score held-out outputs.
    One per scoring, since two groups of towers may score at once."""
    stand_in = copy.copy(template)
    stand_in._raw_predict = lambda X: outputs
    return stand_in


class SearchScores:
    """Held-out scores and losses of every candidate, fold and epoch."""

    def __init__(self, template, scoring, n_candidates, n_splits, n_epochs):
        shape = (n_candidates, n_splits, n_epochs)
        self.scores = np.full(shape, np.nan)
        self.train_losses = np.full(shape, np.nan)
        self.test_losses = np.full(shape, np.nan)
        self.fit_times = np.zeros(shape[:2])
        self.score_times = np.zeros(shape[:2])
        self._template = template
        self._scoring = scoring
        self._scorer = check_scoring(template, scoring=scoring)
        self._loss = loss_kind(keras_loss(template))

    def add(self, networks, outputs, y_test, y_test_encoded, first_epoch=0):
        """Score the held-out ``outputs`` of some networks that share their
        held-out rows (one fold's), for the epochs from ``first_epoch`` on.

        ``networks``: their (candidate, fold); ``outputs``: [epochs, rows,
        networks, outputs]. Every network and epoch is scored at once.
        """
        start = time.perf_counter()
        n_epochs, n_rows, n_networks = outputs.shape[:3]
        finite = np.isfinite(outputs).all(axis=(1, 3))  # [epochs, networks]
        if self._scoring is None:
            scores = self._default_scores(outputs, y_test)
        else:
            scores = np.full((n_epochs, n_networks), np.nan)
            placeholder = np.empty((n_rows, 0))  # the stand-in ignores X
            for epoch, k in np.argwhere(finite):
                stand_in = _stand_in(self._template, outputs[epoch, :, k].astype(np.float64))
                scores[epoch, k] = self._scorer(stand_in, placeholder, y_test)
        # One loss computation for every epoch and network: [epochs * networks * rows, outputs].
        losses = per_sample_loss(
            self._loss,
            tf.constant(np.transpose(outputs, (0, 2, 1, 3)).reshape(-1, outputs.shape[3])),
            tf.tile(label_tensor(y_test_encoded), [n_epochs * n_networks, 1]),
        )
        losses = np.reshape(losses.numpy(), (n_epochs, n_networks, n_rows)).mean(axis=2)
        candidates, folds = (list(column) for column in zip(*networks))
        epochs = slice(first_epoch, first_epoch + n_epochs)
        self.scores[candidates, folds, epochs] = np.where(finite, scores, np.nan).T
        self.test_losses[candidates, folds, epochs] = np.where(finite, losses, np.nan).T
        self.score_times[candidates, folds] += (time.perf_counter() - start) / n_networks

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
