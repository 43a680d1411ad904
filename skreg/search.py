"""Cross-validated penalty search: every candidate and fold trained at once.

``RegularizedMLPClassifierCV`` and ``RegularizedMLPRegressorCV`` are to the
regularized networks what ``LogisticRegressionCV`` is to logistic
regression: an estimator that runs its own search. Candidates x folds
networks train side by side as the towers of one TensorFlow program
(:mod:`skreg._engine`), in groups under a memory budget; each tower learns
from its fold's training rows and is scored on the held-out rows after
every epoch. What the tower program does not cover is searched one fit at
a time, with the same results.
"""

import contextlib
import copy
import math
import numbers
import time
import warnings

import numpy as np
from scipy.stats import rankdata
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context, clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from ._inference import predict_float64
from ._tensorflow import keras, tf
from ._engine import (
    TowerState,
    TowerStructure,
    TowerTrainer,
    fuses_update,
    initial_weights,
    is_binary,
    optimizer_slots,
    tower_bytes,
    tower_data,
)
from ._training import _loss_kind, label_tensor, optimizer_kind, per_sample_loss
from .mlp import (
    _PREDICT_BATCH_SIZE,
    RegularizedMLPClassifier,
    RegularizedMLPRegressor,
    _BaseRegularizedMLP,
    _did_you_mean,
)
from .network import _check_network_params

__all__ = ["RegularizedMLPClassifierCV", "RegularizedMLPRegressorCV"]

# The parameters a candidate may set: the penalties, the learning rate and the
# augmentation, which leave the network's layers as they are.
SEARCHABLE_PARAMS = ("l1", "l2", "dropout", "learning_rate", "input_dropout", "input_noise",
                     "image_shift", "image_rotation", "image_flip")  # fmt: skip
DEFAULT_PARAM_GRID = {"l2": [0.0, 1e-4, 1e-3, 1e-2]}

_search_constraints = {
    "param_grid": [dict, list, None],
    "cv": ["cv_object"],
    "scoring": [StrOptions(set(get_scorer_names())), callable, None],
    "refit": ["boolean"],
    "select_epochs": ["boolean"],
    "memory_budget": [Interval(numbers.Real, 0, None, closed="neither")],
}


class _BaseRegularizedMLPCV(_BaseRegularizedMLP):
    """The search; the two public classes add the base estimator's own parameters."""

    _estimator_class = None

    def _base_estimator(self):
        params = self.get_params(deep=False)
        for name in _search_constraints:
            params.pop(name)
        return self._estimator_class(**params)

    def _candidates(self, base):
        grid = DEFAULT_PARAM_GRID if self.param_grid is None else self.param_grid
        for grid_dict in grid if isinstance(grid, list) else [grid]:
            if not isinstance(grid_dict, dict):
                raise TypeError(f"param_grid must be a dict or a list of dicts; got {grid!r}.")
            for name in grid_dict:
                if name not in SEARCHABLE_PARAMS:
                    known = name in base.get_params()
                    raise ValueError(
                        f"param_grid cannot search {name!r}: "
                        + (
                            f"{type(self).__name__} searches "
                            f"{', '.join(SEARCHABLE_PARAMS)}, which leave the network's "
                            "layers as they are; use GridSearchCV for other parameters."
                            if known
                            else f"it is not a parameter.{_did_you_mean(name, SEARCHABLE_PARAMS)}"
                        )
                    )
        candidates = list(ParameterGrid(grid))
        if not candidates:
            raise ValueError("param_grid has no candidates.")
        for candidate in candidates:
            clone(base).set_params(**candidate)._validate_params()
        return candidates

    def _check_fit_params(self):
        if self.early_stopping:
            raise ValueError(
                f"{type(self).__name__} does not stop early: it scores every epoch on "
                "the held-out folds instead. Set select_epochs=True to choose the number "
                "of epochs by cross-validation."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
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

        Returns
        -------
        self
        """
        self._check_fit_params()
        base = self._base_estimator()
        _check_network_params(base.hidden_layer_sizes, base.l1, base.l2, base.dropout)
        candidates = self._candidates(base)
        X, y = self._validate_X_y(X, y, reset=True)
        template = clone(base)
        y_encoded = template._encode_y(y, first_call=True)
        if is_classifier(self) and not template._multilabel:
            y = column_or_1d(y)  # a column vector, as the classifier takes it (it warned)
        self._set_target_attributes(template)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
        splits = list(check_cv(self.cv, y, classifier=is_classifier(self)).split(X, y))
        self.n_splits_ = len(splits)

        search = _TowerSearch.plan(self, base, template, X, candidates)
        if search is None:
            search = _OneFitAtATime(self, base, template, candidates)
        results = search.run(X, y, y_encoded, sample_weight, splits)
        self._record_results(candidates, results)

        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = clone(base).set_params(**self.best_params_)
            self.best_estimator_.fit(X, y, sample_weight=sample_weight)
            self.refit_time_ = time.perf_counter() - start
        return self

    def _record_results(self, candidates, results):
        scores = results.scores  # [candidates, folds, epochs]
        n_candidates, n_splits, n_epochs = scores.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
            self.test_score_curves_ = scores.mean(axis=1)
            self.train_loss_curves_ = results.train_losses.mean(axis=1)
            self.test_loss_curves_ = results.test_losses.mean(axis=1)
        if self.select_epochs:
            curves = np.where(np.isnan(self.test_score_curves_), -np.inf, self.test_score_curves_)
            chosen = np.argmax(curves, axis=1)
            candidates = [{**c, "epochs": int(e) + 1} for c, e in zip(candidates, chosen)]
        else:
            chosen = np.full(n_candidates, n_epochs - 1)
        split_scores = scores[np.arange(n_candidates), :, chosen]  # [candidates, folds]
        mean = split_scores.mean(axis=1)
        # NaN scores (diverged fits) rank last, as in GridSearchCV.
        rank = rankdata(np.where(np.isnan(mean), np.inf, -mean), method="min").astype(np.int32)
        results_table = {
            "mean_fit_time": results.fit_times.mean(axis=1),
            "std_fit_time": results.fit_times.std(axis=1),
            "mean_score_time": results.score_times.mean(axis=1),
            "std_score_time": results.score_times.std(axis=1),
        }
        for name in sorted({name for c in candidates for name in c}):
            column = np.ma.MaskedArray(np.empty(n_candidates, dtype=object), mask=True)
            for i, candidate in enumerate(candidates):
                if name in candidate:
                    column[i] = candidate[name]
            results_table[f"param_{name}"] = column
        results_table["params"] = candidates
        for i in range(n_splits):
            results_table[f"split{i}_test_score"] = split_scores[:, i]
        results_table.update(
            mean_test_score=mean, std_test_score=split_scores.std(axis=1), rank_test_score=rank
        )
        self.cv_results_ = results_table
        self.best_index_ = int(np.argmin(rank))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(mean[self.best_index_])

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


# -- the two ways of running the search ------------------------------------------


def _stand_in(template):
    """A copy of the encoded, unfitted template that predicts from given
    network outputs: scikit-learn's scorers then score held-out outputs."""
    stand_in = copy.copy(template)
    stand_in._raw_predict = lambda X: stand_in.held_out_outputs
    return stand_in


class _Scores:
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
        self._stand_in = _stand_in(template)
        self._loss = _loss_kind(template._keras_loss())

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
                self._stand_in.held_out_outputs = outputs[epoch, :, k].astype(np.float64)
                scores[epoch, k] = self._scorer(self._stand_in, placeholder, y_test)
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
            if template._multilabel:
                return np.all((outputs > 0) == (y_test[:, None, :] > 0), axis=3).mean(axis=1)
            codes = outputs[..., 0] > 0 if outputs.shape[3] == 1 else outputs.argmax(axis=3)
            return (template.classes_[codes.astype(np.intp)] == y_test[:, None]).mean(axis=1)
        y = np.asarray(y_test, np.float64).reshape(len(y_test), 1, -1)
        residual = ((outputs - y) ** 2).sum(axis=1)  # [epochs, networks, outputs]
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
        return r2.mean(axis=2)


class _TowerSearch:
    """Candidates x folds trained as towers of one program, in groups."""

    def __init__(self, search, base, template, candidates, hyper, structure):
        self.search, self.base, self.template = search, base, template
        self.candidates, self.hyper, self.structure = candidates, hyper, structure

    @classmethod
    def plan(cls, search, base, template, X, candidates):
        """The tower search, or None when the towers do not cover the settings."""
        params = base.get_params()
        values = [{**params, **c} for c in candidates]
        if (
            base._routed_params("fit")
            or base._routed_params("compile")
            or any(v["input_dropout"] or v["input_noise"] or v["image_shift"]
                   or v["image_rotation"] or v["image_flip"] for v in values)
        ):
            return None
        optimizer_class, config = base._resolve_optimizer()
        base._check_routed_params(optimizer_class)
        recognised = optimizer_kind(base._initialize_optimizer(optimizer_class, config))
        loss = _loss_kind(template._keras_loss())
        try:
            keras.activations.get(base.activation)
        except ValueError:
            return None  # the base estimator reports it
        if recognised is None or loss is None:
            return None
        kind, hyper = recognised
        sparse = hasattr(X, "tocsr")
        structure = dict(
            n_hidden=len(np.atleast_1d(base.hidden_layer_sizes)),
            activation=base.activation,
            batch_norm=bool(base.batch_norm),
            loss=loss,
            optimizer=kind,
            sparse=sparse,
            binary=is_binary(X),
            with_l1=any(v["l1"] > 0 for v in values),
            with_l2=any(v["l2"] > 0 for v in values),
            with_dropout=any(v["dropout"] > 0 for v in values),
        )
        return cls(search, base, template, candidates, hyper, structure)

    def run(self, X, y, y_encoded, sample_weight, splits):
        base, template = self.base, self.template
        n_rows, n_splits = X.shape[0], len(splits)
        n_epochs = base.epochs
        results = _Scores(template, self.search.scoring, len(self.candidates), n_splits, n_epochs)
        # Each fold's training rows and their weights (class weights per fold,
        # as each fold's own fit would compute them).
        member = np.zeros((n_splits, n_rows), np.float32)
        row_weight = np.zeros((n_splits, n_rows), np.float32)
        for fold, (train, _) in enumerate(splits):
            member[fold, train] = 1.0
            # Only the length of the last argument is read.
            weight = template._sample_weight(
                y_encoded[train], None if sample_weight is None else sample_weight[train], train
            )
            row_weight[fold, train] = 1.0 if weight is None else weight
        # Batches of all the rows holding about batch_size training rows of
        # each fold: the steps of an epoch are those of a fit on one fold.
        n_train = float(np.mean([len(train) for train, _ in splits]))
        batch_size = int(round(base._resolved_batch_size(int(n_train)) * n_rows / n_train))
        batch_size = min(max(batch_size, 1), n_rows)

        hidden = [int(units) for units in np.atleast_1d(base.hidden_layer_sizes)]
        n_outputs = template._n_model_outputs()
        per_tower = tower_bytes(
            X.shape[1], hidden, n_outputs, n_rows=n_rows, batch_size=batch_size,
            epochs=n_epochs,
            n_slots=optimizer_slots(self.structure["optimizer"]),
        )  # fmt: skip
        # Fold by fold, so that the towers of a fold are scored together on its rows.
        towers = [(c, f) for f in range(n_splits) for c in range(len(self.candidates))]
        largest = max(1, int(self.search.memory_budget * 2**20 // per_tower))
        n_groups = math.ceil(len(towers) / largest)
        group_size = math.ceil(len(towers) / n_groups)

        rng = check_random_state(base.random_state)
        shuffle_seed, dropout_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        model_seed = int(rng.randint(np.iinfo(np.int32).max))
        data = tower_data(X, batch_size, binary=self.structure["binary"])
        progress = (_Progress(type(self.search).__name__, self.candidates, results, n_groups)
                    if base.verbose else None)  # fmt: skip
        for start in range(0, len(towers), group_size):
            group = towers[start : start + group_size]
            self._run_group(group, data, X.shape[1], y, y_encoded, member, row_weight, splits,
                            results, hidden, n_outputs, batch_size,
                            (shuffle_seed, dropout_seed), model_seed, progress)  # fmt: skip
        diverged = ~np.isfinite(results.train_losses).all(axis=2)
        if diverged.any():
            # As GridSearchCV reports fits that fail; their scores are NaN from
            # the first epoch whose outputs are not finite, and rank last.
            first = self.candidates[np.argwhere(diverged)[0][0]]
            warnings.warn(
                f"{int(diverged.sum())} of {diverged.size} networks diverged (a training "
                f"loss not finite), the first with {first}; their later scores are NaN. "
                "Standardize the inputs or lower the learning rate.",
                FitFailedWarning,
            )
        return results

    def _run_group(self, group, data, n_features, y, y_encoded, member, row_weight, splits,
                   results, hidden, n_outputs, batch_size, seeds, model_seed,
                   progress):  # fmt: skip
        base = self.base
        params = base.get_params()
        values = [{**params, **self.candidates[c]} for c, _ in group]
        folds = [f for _, f in group]
        learning_rates = [
            self.hyper[0] if v["learning_rate"] is None else v["learning_rate"] for v in values
        ]
        numbers = {
            "l1": [v["l1"] for v in values],
            "l2": [v["l2"] for v in values],
            "dropout": [v["dropout"] for v in values],
            "learning_rate": learning_rates,
            "optimizer": self.hyper[1:],
            # Each network's dropout masks from its own place in the search,
            # whatever group it trains in.
            "key": [c * len(splits) + f for c, f in group],
        }
        structure = TowerStructure(
            fused_update=fuses_update(n_features, len(group) * hidden[0]),
            **self.structure,
        )
        weights = initial_weights(
            n_features, hidden, n_outputs, n_towers=len(group),
            batch_norm=structure.batch_norm, random_state=np.random.RandomState(model_seed),
        )  # fmt: skip
        blocks = []  # (held-out rows, first tower, end tower) of each fold in the group
        for k, fold in enumerate(folds):
            if k == 0 or fold != folds[k - 1]:
                blocks.append([splits[fold][1], k, k + 1])
            else:
                blocks[-1][2] = k + 1
        start = time.perf_counter()
        trainer = TowerTrainer(
            structure, data, y_encoded, row_weight[folds], member[folds], blocks,
            TowerState.start(structure, weights), numbers, batch_size=batch_size, seeds=seeds,
        )  # fmt: skip
        # Silent: the whole training in one call. Verbose: calls of a few
        # epochs, scored and reported as each ends (see _Progress).
        epochs_per_call = 1 if progress else base.epochs
        while trainer.state.epoch < base.epochs:
            first_epoch = trainer.state.epoch
            call_start = time.perf_counter()
            with _training_errors_reported():
                trained = trainer.train(min(epochs_per_call, base.epochs - first_epoch))
            call_seconds = time.perf_counter() - call_start
            epochs = slice(first_epoch, trained.state.epoch)
            results.train_losses[[c for c, _ in group], folds, epochs] = trained.losses.T
            for (test, first, end), block_outputs in zip(blocks, trained.outputs):
                results.add(group[first:end], block_outputs, y[test], y_encoded[test],
                            first_epoch=first_epoch)  # fmt: skip
            if progress is not None:
                progress.report(group, trained.state.epoch, base.epochs)
                epochs_per_call = progress.epochs_per_call(len(trained.losses), call_seconds)
        # Scoring between calls is timed apart (score_times): training is the rest.
        scoring = sum(results.score_times[candidate, fold] for candidate, fold in group)
        fit_time = (time.perf_counter() - start - scoring) / len(group)
        for candidate, fold in group:
            results.fit_times[candidate, fold] = fit_time


@contextlib.contextmanager
def _training_errors_reported():
    """TensorFlow's errors while training the towers as a RuntimeError that
    names the search (not a raw traceback)."""
    try:
        yield
    except tf.errors.OpError as error:
        raise RuntimeError(
            f"TensorFlow failed while training the search's networks: "
            f"{error.message.strip().splitlines()[0]}"
        ) from None


class _Progress:
    """verbose=1: a line after each call of the tower program: each epoch,
    or every few epochs where epochs are fast (a call then trains about
    :data:`_SECONDS_PER_LINE`), since each call and its scoring cost a few
    milliseconds (measured: one-epoch calls made a 0.3 s breast_cancer
    search 1.4x slower)."""

    def __init__(self, name, candidates, results, n_groups):
        self.name, self.candidates, self.results = name, candidates, results
        self.n_groups = n_groups
        self.group = 0
        self.start = time.perf_counter()

    def report(self, group, epoch, n_epochs):
        if epoch == 1:
            self.group += 1
        in_group = sorted({candidate for candidate, _ in group})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # folds not trained yet
            means = np.nanmean(self.results.scores[in_group, :, epoch - 1], axis=1)
        where = f"group {self.group}/{self.n_groups}, " if self.n_groups > 1 else ""
        line = (f"[{self.name}] {where}epoch {epoch}/{n_epochs}, "
                f"{time.perf_counter() - self.start:.1f} s")  # fmt: skip
        if np.isfinite(means).any():
            best = int(np.nanargmax(means))
            line += (f": best mean held-out score {means[best]:.4f} "
                     f"({_describe(self.candidates[in_group[best]])})")  # fmt: skip
        print(line, flush=True)

    def epochs_per_call(self, epochs, seconds):
        """Epochs for the next call, from the last call's time."""
        return max(1, int(_SECONDS_PER_LINE * epochs / max(seconds, 1e-6)))


_SECONDS_PER_LINE = 0.5


def _describe(candidate):
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in sorted(candidate.items()))  # fmt: skip


class _OneFitAtATime:
    """The search as separate fits of the base estimator, scored after each epoch."""

    def __init__(self, search, base, template, candidates):
        self.search, self.base, self.template = search, base, template
        self.candidates = candidates

    def run(self, X, y, y_encoded, sample_weight, splits):
        results = _Scores(
            self.template, self.search.scoring, len(self.candidates), len(splits), self.base.epochs
        )
        callbacks = list(self.base.get_params().get("fit__callbacks") or [])
        failures = []
        for c, candidate in enumerate(self.candidates):
            for fold, (train, test) in enumerate(splits):
                recorder = _HeldOutOutputs(X[test])
                estimator = clone(self.base).set_params(
                    **candidate, fit__callbacks=[*callbacks, recorder]
                )
                start = time.perf_counter()
                try:
                    estimator.fit(
                        X[train], y[train],
                        sample_weight=None if sample_weight is None else sample_weight[train],
                    )  # fmt: skip
                except (ValueError, RuntimeError) as error:
                    failures.append(f"{candidate} on fold {fold}: {error}")
                    continue
                finally:
                    results.fit_times[c, fold] = time.perf_counter() - start
                results.train_losses[c, fold] = estimator.history_["loss"]
                results.add([(c, fold)], np.stack(recorder.outputs)[:, :, None], y[test],
                            y_encoded[test])  # fmt: skip
        if len(failures) == len(self.candidates) * len(splits):
            raise ValueError(f"Every fit of the search failed; the first: {failures[0]}")
        if failures:
            warnings.warn(
                f"{len(failures)} fits failed and score NaN; the first: {failures[0]}",
                FitFailedWarning,
            )
        return results


class _HeldOutOutputs(keras.callbacks.Callback):
    """Records the network's outputs on the held-out rows after each epoch."""

    def __init__(self, X_test):
        super().__init__()
        self.X_test = X_test
        self.outputs = []

    def on_epoch_end(self, epoch, logs=None):
        self.outputs.append(predict_float64(self.model, self.X_test, _PREDICT_BATCH_SIZE))


# -- the public classes ---------------------------------------------------------------

_SEARCH_DOC = """
    Parameters
    ----------
    param_grid : dict or list of dicts, default=None
        The candidates, as in ``GridSearchCV``: lists of values of ``l1``,
        ``l2``, ``dropout``, ``learning_rate`` or the augmentation parameters
        (``input_dropout``, ``input_noise``, ``image_shift``,
        ``image_rotation``, ``image_flip``), which leave the network's layers
        as they are. None searches ``{"l2": [0, 1e-4, 1e-3, 1e-2]}``.
    cv : int, cross-validation generator or iterable, default=5
        The folds, as in ``GridSearchCV`` (an int: stratified folds for the
        classifier, plain folds for the regressor).
    scoring : str, callable or None, default=None
        A scikit-learn scorer name or callable; None uses the estimator's
        ``score`` (accuracy for the classifier, R^2 for the regressor).
    refit : bool, default=True
        Refit the best candidate on all the data as ``best_estimator_``
        (needed by ``predict`` and the other prediction methods).
    select_epochs : bool, default=False
        Also choose the number of epochs: each candidate is scored at the
        epoch with its best mean held-out score (up to ``epochs``), which
        becomes the ``epochs`` of its ``params`` and of the refit.
    memory_budget : float, default=512
        Megabytes the networks trained side by side may take (weights,
        optimizer buffers, activations and held-out outputs); more
        candidates x folds go in several groups, one after the other.
"""

_CV_ATTRIBUTES_DOC = """
    Attributes
    ----------
    cv_results_ : dict of ndarray
        As ``GridSearchCV``'s (loads into ``pandas.DataFrame``): ``params``,
        ``param_<name>``, ``split<i>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score``, ``mean_fit_time`` (a
        group's training time shared among its networks), ``std_fit_time``,
        ``mean_score_time`` and ``std_score_time`` (scoring every epoch).
    best_index_ : int
        Row of the best candidate in ``cv_results_``.
    best_params_ : dict
        Its parameters (with ``epochs`` when ``select_epochs``).
    best_score_ : float
        Its mean held-out score.
    best_estimator_ : estimator
        The best candidate refitted on all the data (when ``refit``).
    refit_time_ : float
        Seconds of that refit.
    n_splits_ : int
        Number of folds.
    test_score_curves_ : ndarray of shape (n_candidates, epochs)
        Each candidate's held-out score after each epoch, mean over folds.
    test_loss_curves_ : ndarray of shape (n_candidates, epochs)
        Each candidate's held-out loss after each epoch (without the weight
        penalties, so that candidates compare on the data), mean over folds.
    train_loss_curves_ : ndarray of shape (n_candidates, epochs)
        The training loss of each epoch as Keras reports it (penalties
        included), mean over folds.
    n_features_in_ : int
        Number of features seen during fit.
"""

_CV_NOTES_DOC = """
    Notes
    -----
    Candidates x folds networks train side by side as the "towers" of one
    TensorFlow program: the towers see the same shuffled batches of all the
    rows, each learns from its own fold's training rows only (the others
    weigh 0 in its loss and batch-norm statistics) with its own penalties,
    dropout and learning rate, and all start from the same initial weights.
    The batches hold about ``batch_size`` training rows of each fold, so an
    epoch has the steps of a fit on one fold. After every epoch each tower
    is scored on its held-out rows. The program is traced once per network
    structure in the process (see :func:`skreg.clear_training_cache`).

    With ``verbose > 0`` the program runs an epoch per call and the search
    prints a line after each: the epoch, the time so far and the best mean
    held-out score at that epoch (with the group, when the networks train in
    several); the refit then shows Keras' progress as the base estimator does.

    Settings the program does not cover are searched one fit at a time with
    the base estimator (same results, at its speed):
    ``fit__``/``compile__`` options, optimizers other than RMSprop, Adam and
    SGD, learning-rate schedules, image transforms, input dropout or noise.
    ``early_stopping`` is replaced by ``select_epochs``.
"""


def _search_doc(estimator_doc, summary):
    """The docstring of a CV class from its base estimator's."""
    base_params = estimator_doc.split("    Parameters\n    ----------\n", 1)[1]
    base_params = base_params.split("    Attributes\n", 1)[0]
    return summary + _SEARCH_DOC + base_params + _CV_ATTRIBUTES_DOC + _CV_NOTES_DOC


class RegularizedMLPClassifierCV(ClassifierMixin, _BaseRegularizedMLPCV):
    __doc__ = _search_doc(
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
        cv=5,
        scoring=None,
        refit=True,
        select_epochs=False,
        memory_budget=512,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        batch_size="auto",
        epochs=20,
        class_weight=None,
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
            dropout=dropout, batch_norm=batch_norm, input_dropout=input_dropout,
            input_noise=input_noise, image_shape=image_shape, image_shift=image_shift,
            image_rotation=image_rotation, image_flip=image_flip, optimizer=optimizer,
            learning_rate=learning_rate, batch_size=batch_size, epochs=epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, warm_start=warm_start,
            random_state=random_state, verbose=verbose, **routed_params,
        )  # fmt: skip
        self.class_weight = class_weight
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.select_epochs = select_epochs
        self.memory_budget = memory_budget

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
    __doc__ = _search_doc(
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
        cv=5,
        scoring=None,
        refit=True,
        select_epochs=False,
        memory_budget=512,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
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
            dropout=dropout, batch_norm=batch_norm, input_dropout=input_dropout,
            input_noise=input_noise, image_shape=image_shape, image_shift=image_shift,
            image_rotation=image_rotation, image_flip=image_flip, optimizer=optimizer,
            learning_rate=learning_rate, batch_size=batch_size, epochs=epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, warm_start=warm_start,
            random_state=random_state, verbose=verbose, **routed_params,
        )  # fmt: skip
        self.loss = loss
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.select_epochs = select_epochs
        self.memory_budget = memory_budget

    def _set_target_attributes(self, template):
        self.n_outputs_ = template.n_outputs_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
