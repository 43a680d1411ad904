"""The two ways of running a CV search: candidates x folds as towers of one
program (:mod:`skreg._engine`), in groups under the memory budget, or one
fit at a time with the base estimator for what the towers do not cover."""

import concurrent.futures
import contextlib
import copy
import functools
import math
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import check_random_state

from ._base import PREDICT_BATCH_SIZE
from ._engine import (
    TowerState,
    TowerStructure,
    TowerTrainer,
    initial_weights,
    optimizer_slots,
    tower_bytes,
    tower_data,
)
from ._inference import predict_float64
from ._tensorflow import keras, tf
from ._engine.fit import epochs_per_call_of
from ._engine.model import NotOnProgram, plan_model

__all__ = ["OneFitAtATime", "TowerSearch", "best_so_far"]


class TowerSearch:
    """Candidates x folds trained as towers of one program, in groups."""

    def __init__(self, search, base, template, candidates, hyper, structure):
        self.search, self.base, self.template = search, base, template
        self.candidates, self.hyper, self.structure = candidates, hyper, structure

    @classmethod
    def plan(cls, search, base, template, X, candidates):
        """The tower search, or None when the towers do not cover the settings.

        The structure is what a fit of the first candidate plans
        (:func:`~skreg._engine.model.plan_model` on its network: one set of
        rules, read from the layers build_mlp makes), with dropout's draws
        on if any candidate has dropout."""
        params = base.get_params()
        values = [{**params, **c} for c in candidates]
        if (
            # Keras callbacks and options need a network of their own.
            base._routed_params("fit")
            or base._routed_params("compile")
            # A group's towers share their batches and the batches' input changes.
            or len({(v["input_dropout"], v["input_noise"]) for v in values}) > 1
        ):
            return None
        try:
            keras.activations.get(base.activation)
        except ValueError:
            return None  # the base estimator reports it
        first = copy.copy(template).set_params(**candidates[0])  # keeps the encoded classes
        optimizer_class, config = first._resolve_optimizer()
        first._check_routed_params(optimizer_class)
        model = first._initialize_model(
            X.shape[1], 0, first._initialize_optimizer(optimizer_class, config)
        )
        try:
            planned = plan_model(model, X)
        except NotOnProgram:
            return None
        structure = dict(vars(planned.structure),
                         with_dropout=any(v["dropout"] > 0 for v in values))  # fmt: skip
        hyper = [planned.numbers["learning_rate"][0], *planned.numbers["optimizer"]]
        return cls(search, base, template, candidates, hyper, structure)

    def start(self, X, y, y_encoded, sample_weight, splits, results, tasks=None):
        """Cut the towers into groups (nothing trains yet)."""
        base = self.base
        n_candidates, n_epochs = len(self.candidates), base.epochs
        self.results, self.tasks = results, (tasks if tasks and tasks.active else None)
        self.diverged = np.zeros((n_candidates, len(splits)), bool)
        hidden = [int(units) for units in np.atleast_1d(base.hidden_layer_sizes)]
        n_outputs = self.template._n_model_outputs()
        rng = check_random_state(base.random_state)
        shuffle_seed, dropout_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        model_seed = int(rng.randint(np.iinfo(np.int32).max))
        # A group holds one fold's networks, which train on the fold's own
        # batches as its separate fit would: its training rows in an order of
        # their own, batch_size at a time. (Batches of all the rows shared by
        # every fold made the folds' networks learn alike: a candidate's mean
        # score varied across seeds 2-3x as much as GridSearchCV's.)
        budget = self.search.memory_budget * 2**20
        # The data once for every fold (each picks its rows in the program).
        data = tower_data(X, base._resolved_batch_size(len(splits[0][0])),
                          binary=self.structure["binary"])  # fmt: skip
        self.groups, group_bytes = [], 0
        for fold, split in enumerate(splits):
            fold_data = _FoldData(fold, y, y_encoded, sample_weight, split, self.template, base)
            per_tower = tower_bytes(
                X.shape[1], hidden, n_outputs, n_rows=len(split[0]) + len(split[1]),
                batch_size=fold_data.batch_size, epochs=n_epochs,
                n_slots=optimizer_slots(self.structure["optimizer"]),
            )  # fmt: skip
            largest = max(1, int(budget // per_tower))
            size = math.ceil(n_candidates / math.ceil(n_candidates / largest))
            for first in range(0, n_candidates, size):
                self.groups.append(_Group(
                    self, len(self.groups) + 1, fold_data, list(range(first, min(first + size, n_candidates))),
                    data=data, n_features=X.shape[1], hidden=hidden, n_outputs=n_outputs,
                    seeds=(shuffle_seed, dropout_seed), model_seed=model_seed,
                ))  # fmt: skip
            group_bytes = max(group_bytes, size * per_tower)
        # Two groups at a time where two fit in the budget (TensorFlow lets go
        # of the GIL): small networks' steps are bound by per-op overhead,
        # which a second program in flight overlaps (breast_cancer, 5 folds:
        # 0.5 vs 0.9 s); on large ones each already keeps both cores busy.
        self.in_parallel = len(self.groups) > 1 and 2 * group_bytes <= budget
        self.progress = (_Progress(type(self.search).__name__, self.candidates, results,
                                   len(self.groups)) if base.verbose else None)  # fmt: skip

    def train(self, candidates, epochs):
        """Train the ``candidates`` (on every fold) until they have trained
        ``epochs``; the others' towers are let go."""
        alive = set(candidates)
        for group in self.groups:
            group.keep([c for c in group.candidates if c in alive])
        self.groups = [group for group in self.groups if group.candidates]
        if self.in_parallel and len(self.groups) > 1:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda group: group.train(epochs), self.groups))
        else:
            for group in self.groups:
                group.train(epochs)

    def finish(self):
        for group in self.groups:
            group.keep([])
        diverged = self.diverged
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


class _Group:
    """A group of towers: some candidates on one fold, trained side by side
    by one :class:`TowerTrainer` (made at its first call), rung after rung."""

    def __init__(self, search, number, fold_data, candidates, *, data, n_features, hidden,
                 n_outputs, seeds, model_seed):  # fmt: skip
        self.search, self.number, self.fold_data = search, number, fold_data
        self.candidates = candidates
        self._make = functools.partial(self._trainer, data, n_features, hidden, n_outputs,
                                       seeds, model_seed)  # fmt: skip
        self.trainer = self.task = None

    def keep(self, candidates):
        """Keep only ``candidates`` (a subset, in order): their towers go on."""
        if candidates == self.candidates:
            return
        if self.trainer is not None and candidates:
            self.trainer.select([self.candidates.index(c) for c in candidates])
        self.candidates = candidates
        if not candidates:
            self.trainer = None  # lets go of its state
            if self.task is not None:
                self.search.tasks.end(self.task)
                self.task = None

    def _trainer(self, data, n_features, hidden, n_outputs, seeds, model_seed):
        search, fold_data, candidates = self.search, self.fold_data, self.candidates
        params = search.base.get_params()
        values = [{**params, **search.candidates[c]} for c in candidates]
        numbers = {
            "l1": [v["l1"] for v in values],
            "l2": [v["l2"] for v in values],
            "dropout": [v["dropout"] for v in values],
            "learning_rate": [search.hyper[0] if v["learning_rate"] is None else v["learning_rate"]
                              for v in values],  # fmt: skip
            "optimizer": search.hyper[1:],
            # Each network's dropout masks from its own place in the search,
            # whatever group it trains in.
            "key": [c * search.results.scores.shape[1] + fold_data.fold for c in candidates],
            "input_dropout": values[0]["input_dropout"],
            "input_noise": values[0]["input_noise"],
        }
        structure = TowerStructure(**search.structure)
        # One draw for every network, as a grid search with a fixed random_state
        # starts every fit from the same weights. (A draw per fold was tried:
        # it did not make the folds' scores less alike, see BENCHMARKS.md.)
        weights = initial_weights(n_features, hidden, n_outputs, seeds=[model_seed] * len(values),
                                  batch_norm=structure.batch_norm)  # fmt: skip
        return TowerTrainer(
            structure, data, fold_data.y_encoded,
            np.tile(fold_data.row_weight, (len(values), 1)),
            np.tile(fold_data.member, (len(values), 1)), [(fold_data.test, 0, len(values))],
            TowerState.start(structure, weights), numbers, batch_size=fold_data.batch_size,
            seeds=seeds, train_rows=fold_data.train,
        )  # fmt: skip

    def train(self, until):
        """Train the group's towers until they have trained ``until`` epochs."""
        search, results, fold = self.search, self.search.results, self.fold_data.fold
        start = time.perf_counter()
        if self.trainer is None:
            self.trainer = self._make()
        tasks, progress = search.tasks, search.progress
        if tasks is not None and self.task is None:
            self.task = tasks.begin(self.number, search.base.epochs)
        # Silent: the rung in one call. Watched (verbose or scikit-learn's
        # callbacks): calls of an epoch or a few, scored and reported as each
        # ends (see _Progress).
        watched = progress is not None or tasks is not None
        epochs_per_call = 1 if watched else until
        scoring = sum(results.score_times[c, fold] for c in self.candidates)
        while self.trainer.state.epoch < until:
            first_epoch = self.trainer.state.epoch
            call_start = time.perf_counter()
            with _training_errors_reported():
                trained = self.trainer.train(min(epochs_per_call, until - first_epoch))
            call_seconds = time.perf_counter() - call_start
            towers = [(c, fold) for c in self.candidates]
            epochs = slice(first_epoch, trained.state.epoch)
            results.train_losses[self.candidates, fold, epochs] = trained.losses.T
            search.diverged[self.candidates, fold] |= ~np.isfinite(trained.losses).all(axis=0)
            results.add(towers, trained.outputs[0], self.fold_data.y_test,
                        self.fold_data.y_test_encoded, first_epoch=first_epoch)  # fmt: skip
            if progress is not None:
                progress.report(self.number, towers, trained.state.epoch, search.base.epochs)
            if tasks is not None:
                tasks.epochs(self.task, len(trained.losses))
            if watched:
                epochs_per_call = epochs_per_call_of(len(trained.losses), call_seconds)
        # Scoring between calls is timed apart (score_times): training is the rest.
        scoring = sum(results.score_times[c, fold] for c in self.candidates) - scoring
        results.fit_times[self.candidates, fold] += (
            (time.perf_counter() - start - scoring) / len(self.candidates))


class _FoldData:
    """One fold as its groups of towers take it: its training rows (batches
    are cut from them), their weights, and its held-out rows (scored)."""

    def __init__(self, fold, y, y_encoded, sample_weight, split, template, base):
        train, test = split
        self.fold = fold
        self.train, self.test = train, test
        self.batch_size = base._resolved_batch_size(len(train))
        self.y_encoded = y_encoded  # of every row, as the program takes them
        self.y_test, self.y_test_encoded = y[test], y_encoded[test]
        # The training rows' weights (class weights from the fold's own rows,
        # as its separate fit computes them); only the last argument's length is read.
        weight = template._sample_weight(
            y_encoded[train], None if sample_weight is None else sample_weight[train], train
        )
        self.row_weight = np.zeros(len(y), np.float32)
        self.row_weight[train] = 1.0 if weight is None else weight
        self.member = np.zeros(len(y), np.float32)
        self.member[train] = 1.0


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
    :data:`~skreg._engine.fit.SECONDS_PER_CALL`), since each call and its scoring cost a few
    milliseconds (measured: one-epoch calls made a 0.3 s breast_cancer
    search 1.4x slower)."""

    def __init__(self, name, candidates, results, n_groups):
        self.name, self.candidates, self.results = name, candidates, results
        self.n_groups = n_groups
        self.start = time.perf_counter()

    def report(self, number, group, epoch, n_epochs):
        """The line of group ``number`` (from 1) after ``epoch``."""
        in_group = sorted({candidate for candidate, _ in group})
        # The mean over the folds scored so far (NaN: not trained yet), without
        # nanmean's warning: catch_warnings is not safe in two threads.
        scores = self.results.scores[in_group, :, epoch - 1]
        scored = np.isfinite(scores).sum(axis=1)
        means = np.where(scored > 0, np.nansum(scores, axis=1) / np.maximum(scored, 1), np.nan)
        where = f"group {number}/{self.n_groups}, " if self.n_groups > 1 else ""
        print(f"[{self.name}] {where}epoch {epoch}/{n_epochs}, "
              f"{time.perf_counter() - self.start:.1f} s"
              + best_so_far(means, [self.candidates[c] for c in in_group]), flush=True)


def best_so_far(mean_scores, candidates):
    """': best mean held-out score ... (its parameters)', or '' if none is finite."""
    if not np.isfinite(mean_scores).any():
        return ""
    best = int(np.nanargmax(mean_scores))
    described = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                          for name, value in sorted(candidates[best].items()))  # fmt: skip
    return f": best mean held-out score {mean_scores[best]:.4f} ({described})"


class OneFitAtATime:
    """The search as separate fits of the base estimator, scored after each
    epoch. A candidate that goes on to a later rung goes on training its
    networks (``warm_start``) for the rung's further epochs."""

    def __init__(self, search, base, template, candidates):
        self.search, self.base, self.template = search, base, template
        self.candidates = candidates

    def start(self, X, y, y_encoded, sample_weight, splits, results, tasks=None):
        # ``tasks`` (scikit-learn's callbacks) is not used: the search's fits
        # report nothing below the search's task.
        self.data = X, y, y_encoded, sample_weight
        self.splits, self.results = splits, results
        self.fits, self.failures = {}, []

    def train(self, candidates, epochs):
        """Fit (or go on fitting) each of ``candidates`` on every fold until
        ``epochs``; the others are let go."""
        X, y, y_encoded, sample_weight = self.data
        results = self.results
        self.fits = {key: fit for key, fit in self.fits.items() if key[0] in candidates}
        callbacks = list(self.base.get_params().get("fit__callbacks") or [])
        for c in candidates:
            for fold, (train, test) in enumerate(self.splits):
                estimator, recorder = self.fits.get((c, fold), (None, None))
                if recorder is None and (c, fold) in self.fits:
                    continue  # failed at an earlier rung
                done = 0 if estimator is None else len(estimator.history_["loss"])
                if estimator is None:
                    recorder = _HeldOutOutputs(X[test])
                    estimator = clone(self.base).set_params(
                        **self.candidates[c], fit__callbacks=[*callbacks, recorder]
                    )
                estimator.set_params(epochs=epochs - done, warm_start=done > 0)
                start = time.perf_counter()
                try:
                    estimator.fit(
                        X[train], y[train],
                        sample_weight=None if sample_weight is None else sample_weight[train],
                    )  # fmt: skip
                except (ValueError, RuntimeError) as error:
                    self.failures.append(f"{self.candidates[c]} on fold {fold}: {error}")
                    self.fits[c, fold] = (None, None)
                    continue
                finally:
                    results.fit_times[c, fold] += time.perf_counter() - start
                self.fits[c, fold] = (estimator, recorder)
                results.train_losses[c, fold, done:epochs] = estimator.history_["loss"][done:]
                results.add([(c, fold)], np.stack(recorder.outputs[done:])[:, :, None],
                            y[test], y_encoded[test], first_epoch=done)  # fmt: skip

    def finish(self):
        self.fits = {}
        failures = self.failures
        if len(failures) == len(self.candidates) * len(self.splits):
            raise ValueError(f"Every fit of the search failed; the first: {failures[0]}")
        if failures:
            warnings.warn(
                f"{len(failures)} fits failed and score NaN; the first: {failures[0]}",
                FitFailedWarning,
            )


class _HeldOutOutputs(keras.callbacks.Callback):
    """Records the network's outputs on the held-out rows after each epoch."""

    def __init__(self, X_test):
        super().__init__()
        self.X_test = X_test
        self.outputs = []

    def on_epoch_end(self, epoch, logs=None):
        self.outputs.append(predict_float64(self.model, self.X_test, PREDICT_BATCH_SIZE))
