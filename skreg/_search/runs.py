"""The two ways of running a CV search: candidates x folds as towers of one
program (:mod:`skreg._engine`), in groups under the memory budget, or one
fit at a time with the base estimator for what the towers do not cover."""

import concurrent.futures
import copy
import math
import threading
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from joblib import Parallel, delayed, effective_n_jobs

from .._estimators.base import PREDICT_BATCH_SIZE, fit_seeds, global_seeds
from .._engine import PreparedData, TowerStructure, optimizer_slots, tower_bytes, tower_data
from .._engine.trainer import ready_program
from .._estimators.inference import predict_float64
from .._estimators.interface import (batch_size_for, fitted_from_state, is_multilabel,
                                     model_outputs, routed_keras_options, starting_network)
from .._backend.tensorflow import keras
from .groups import FoldData, Group, train_group
from .._engine.model import NotOnProgram, plan_model
from .._engine.regularizers import REGULARIZERS

__all__ = ["OneFitAtATime", "TowerSearch", "best_so_far"]

# Parameters whose None means the optimizer's own value.
_OPTIMIZERS_OWN = {"learning_rate": None, **{r.name: None for r in REGULARIZERS
                                             if r.none_is_optimizers_own}}  # fmt: skip


def _candidate_numbers(own, values):
    """A candidate's :class:`TowerNumbers` (one tower), from its parameters
    ``values`` (a regularizer an estimator lacks is off) and the numbers
    ``own`` of a fit with the optimizer's own learning rate and regularizers."""
    chosen = {r.name: r.tower_number(values.get(r.name), getattr(own, r.name)[0])
              for r in REGULARIZERS}  # fmt: skip
    if values["learning_rate"] is not None:
        chosen["learning_rate"] = values["learning_rate"]
    return own.replace(**chosen)


class TowerSearch:
    """Candidates x folds trained as towers of one program, in groups."""

    def __init__(self, search, base, template, candidates, members, numbers, structure, *,
                 seeds, start_weights):  # fmt: skip
        self.search, self.base, self.template = search, base, template
        # Every candidate of the search, the positions of this run's (its
        # ``members``: one network structure) and their towers' numbers
        # (TowerNumbers of one tower, by position).
        self.candidates, self.members = candidates, members
        self.numbers, self.structure = numbers, structure
        # The seeds and the start of a plain fit with the search's random_state
        # (a batch-order and a dropout seed, the weights in the towers' layout).
        self.seeds, self.start_weights = seeds, start_weights
        # Set when the search is to stop (Ctrl-C) while groups train in threads.
        self.stopping = threading.Event()

    @classmethod
    def plan(cls, search, base, template, X, candidates, members):
        """The tower search of ``candidates[members]``, which share ``base``'s
        network structure; NotOnProgram saying what the towers do not cover.

        The structure is what a fit of the first member plans
        (:func:`~skreg._engine.model.plan_model` on its network: one set of
        rules, read from the layers build_mlp makes), with dropout's draws
        on if any candidate has dropout."""
        params = base.get_params()
        values = {c: {**params, **candidates[c]} for c in members}
        routed = routed_keras_options(base)
        if routed:  # Keras callbacks and options need a network of their own
            raise NotOnProgram(f"the Keras options {', '.join(routed)}")
        try:
            keras.activations.get(base.activation)
        except ValueError:  # the base estimator's fit reports it
            raise NotOnProgram(f"the activation {base.activation!r}") from None
        # The first candidate with the optimizer's own learning rate (or
        # schedule) and weight decay, which candidates that leave them at
        # None train with.
        first = copy.copy(template).set_params(**{**candidates[members[0]], **_OPTIMIZERS_OWN})
        seeds = fit_seeds(base.random_state)
        # The network every fit of a GridSearchCV with this random_state starts from.
        model = starting_network(first, X.shape[1], seeds.model)
        planned = plan_model(model, X)
        if planned.structure.schedule is not None and any(
                v["learning_rate"] is not None for v in values.values()):  # fmt: skip
            raise NotOnProgram("a learning_rate beside the optimizer's learning-rate schedule")
        numbers = {c: _candidate_numbers(planned.numbers, v) for c, v in values.items()}
        structure = dict(vars(planned.structure), regularizers=[
            r.name for r in REGULARIZERS if r.in_every_program
            or any(r.makes_passes(getattr(n, r.name)[0]) for n in numbers.values())])  # fmt: skip
        if seeds.shuffle is None:  # random_state=None, as a plain fit draws them
            seeds.shuffle, seeds.dropout = global_seeds()
        return cls(search, base, template, candidates, members, numbers, structure,
                   seeds=(seeds.shuffle, seeds.dropout),
                   start_weights=[w.numpy() for w in planned.state().weights])  # fmt: skip

    def start(self, X, y, y_encoded, sample_weight, splits, results, tasks=None, *,
              first_group=1, shared_data=None):  # fmt: skip
        """Cut the towers into groups (nothing trains yet), numbered from
        ``first_group``; ``shared_data``: a dict of the data as the program
        takes it (:func:`tower_data`) by batch size and kind, which runs of
        other structures share."""
        base = self.base
        members, n_epochs = self.members, base.epochs
        n_candidates = len(members)
        # Where the groups train here, their program is readied while the folds are cut.
        self.as_tasks = effective_n_jobs(self.search.n_jobs) != 1
        if not self.as_tasks:
            ready_program(TowerStructure(**self.structure))
        self.results, self.tasks = results, (tasks if tasks and tasks.active else None)
        self.diverged = np.zeros((len(self.candidates), len(splits)), bool)
        hidden = [int(units) for units in np.atleast_1d(base.hidden_layer_sizes)]
        n_outputs = model_outputs(self.template)
        # A group holds one fold's networks, which train on the fold's own
        # batches as its separate fit would: its training rows in an order of
        # their own, batch_size at a time. (Batches of all the rows shared by
        # every fold made the folds' networks learn alike: a candidate's mean
        # score varied across seeds 2-3x as much as GridSearchCV's.)
        budget = self.search.memory_budget * 2**20
        data_batch_size = batch_size_for(base, len(splits[0][0]))
        self.groups = []
        for fold, split in enumerate(splits):
            fold_data = FoldData(fold, y, y_encoded, sample_weight, split, self.template, base,
                                 score_train=results.train_scores)  # fmt: skip
            per_tower = tower_bytes(
                X.shape[1], hidden, n_outputs, n_rows=len(split[0]) + len(split[1]),
                batch_size=fold_data.batch_size, epochs=n_epochs,
                n_slots=optimizer_slots(self.structure["optimizer"]),
            )  # fmt: skip
            largest = max(1, int(budget // per_tower))
            size = math.ceil(n_candidates / math.ceil(n_candidates / largest))
            for first in range(0, n_candidates, size):
                self.groups.append(Group(
                    self, first_group + len(self.groups), fold_data,
                    members[first:first + size],
                    seeds=self.seeds, start_weights=self.start_weights,
                    data_batch_size=data_batch_size, bytes_per_tower=per_tower,
                ))  # fmt: skip
        # Where joblib runs tasks elsewhere (n_jobs, a Dask cluster), a
        # group's rung is a task; else the groups train here, two at a time
        # where two fit in the budget (TensorFlow lets go of the GIL): small
        # networks' steps are bound by per-op overhead, which a second
        # program in flight overlaps (breast_cancer, 5 folds: 0.5 vs 0.9 s);
        # on large ones each already keeps both cores busy.
        self.budget = budget
        self.X = X
        # The data once for every fold (each picks its rows in the program).
        self.data = None
        if not self.as_tasks:
            shared_data = {} if shared_data is None else shared_data
            key = (data_batch_size, self.structure["binary"])
            if key not in shared_data:
                shared_data[key] = tower_data(X, data_batch_size, binary=key[1])
            self.data = shared_data[key]
        self.data_batch_size = data_batch_size
        self.progress = (_Progress(type(self.search).__name__, self.candidates, results,
                                   first_group + len(self.groups) - 1)
                         if base.verbose else None)  # fmt: skip

    def train(self, candidates, epochs):
        """Train the ``candidates`` (on every fold) until they have trained
        ``epochs``; the others' towers are let go."""
        alive = set(candidates)
        for group in self.groups:
            group.keep([c for c in group.candidates if c in alive])
        self.groups = [group for group in self.groups if group.candidates]
        if not self.groups:
            return
        if self.as_tasks:
            done = Parallel(n_jobs=self.search.n_jobs)(
                delayed(train_group)(group.spec(), self.X, group.state, epochs)
                for group in self.groups
            )  # fmt: skip
            for group, (trained, seconds) in zip(self.groups, done):
                group.trained_elsewhere(trained, seconds)
        elif self._two_at_a_time():
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                running = [pool.submit(group.train, self.data, epochs) for group in self.groups]
                try:
                    for future in running:
                        future.result()
                except BaseException:
                    # Ctrl-C reaches this thread only: the groups training in
                    # the pool stop as their call ends, the others never start.
                    self.stopping.set()
                    raise
        else:
            for group in self.groups:
                group.train(self.data, epochs)
        for group in self.groups:
            group.end_task()

    def _two_at_a_time(self):
        """Whether two of the groups fit in the budget at once (asked at each
        rung: the survivors' groups are smaller)."""
        largest = max(g.bytes_per_tower * len(g.candidates) for g in self.groups)
        return len(self.groups) > 1 and 2 * largest <= self.budget

    def fold_networks(self, candidate, X, y, sample_weight):
        """The networks of ``candidate`` (a position), one per fold in the
        folds' order, each as a fitted base estimator on its fold's
        training rows (what its fit there would have learned)."""
        classes = (None if not hasattr(self.template, "classes_") or is_multilabel(self.template)
                   else self.template.classes_)  # fmt: skip
        networks = {}
        for group in self.groups:
            if candidate not in group.candidates:
                continue
            state = group.trainer.state if group.trainer is not None else group.state
            state = state.select([group.candidates.index(candidate)])
            fold = group.fold_data
            networks[fold.fold] = fitted_from_state(
                clone(self.base).set_params(**self.candidates[candidate]), X[fold.train],
                y[fold.train], None if sample_weight is None else sample_weight[fold.train],
                state, self.results.train_losses[candidate, fold.fold, :state.epoch],
                classes=classes,
            )  # fmt: skip
        return [networks[fold] for fold in sorted(networks)]

    def prepared_data(self):
        """The data as the program takes it, for the refit on the same
        matrix (:class:`~skreg._engine.PreparedData`), or None where the
        groups trained elsewhere."""
        if self.data is None:
            return None
        return PreparedData(self.X, self.data_batch_size, binary=self.structure["binary"],
                            tensors=self.data)  # fmt: skip

    def failures(self):
        """What failed: a description of each diverged network."""
        return [f"{self.candidates[c]} on fold {fold}: a training loss not finite"
                for c, fold in np.argwhere(self.diverged)]  # fmt: skip

    def finish(self):
        """Let go of the towers."""
        for group in self.groups:
            group.keep([])

    def report_failures(self):
        """Raise (``error_score="raise"``) or warn of diverged networks."""
        diverged = self.diverged
        if diverged.any():
            # As GridSearchCV reports fits that fail; their scores are
            # error_score from the first epoch whose outputs are not finite.
            first = self.candidates[np.argwhere(diverged)[0][0]]
            message = (f"{int(diverged.sum())} of {diverged.size} networks diverged (a "
                       f"training loss not finite), the first with {first}")  # fmt: skip
            advice = "Standardize the inputs or lower the learning rate."
            if isinstance(self.search.error_score, str):  # "raise"
                raise ValueError(f"{message}. {advice}")
            warnings.warn(f"{message}; their later scores are error_score="
                          f"{self.search.error_score}. {advice}", FitFailedWarning)  # fmt: skip


class _Progress:
    """verbose=1: a line after each call of the tower program: each epoch,
    or every few epochs where epochs are fast (a call trains about
    :data:`~skreg._engine.trainer.SECONDS_PER_CALL`), since each call and
    its scoring cost a few milliseconds (measured: one-epoch calls made a
    0.3 s breast_cancer search 1.4x slower)."""

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
    """The search of ``candidates[members]`` as separate fits of the base
    estimator, scored after each epoch. A candidate that goes on to a later
    rung goes on training its networks (``warm_start``) for the rung's
    further epochs."""

    def __init__(self, search, base, template, candidates, members):
        self.search, self.base, self.template = search, base, template
        self.candidates, self.members = candidates, members

    def start(self, X, y, y_encoded, sample_weight, splits, results, tasks=None, **_):
        # ``tasks`` (scikit-learn's callbacks) is not used: the search's fits
        # report nothing below the search's task; nor are the tower runs'
        # group numbers and shared data.
        self.data = X, y, y_encoded, sample_weight
        self.splits, self.results = splits, results
        self.fits, self.failed = {}, []

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
                    recorder = _HeldOutOutputs(X[test], X[train] if results.train_scores else None)
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
                    if isinstance(self.search.error_score, str):  # "raise"
                        raise
                    self.failed.append(f"{self.candidates[c]} on fold {fold}: {error}")
                    self.fits[c, fold] = (None, None)
                    continue
                finally:
                    results.fit_times[c, fold] += time.perf_counter() - start
                self.fits[c, fold] = (estimator, recorder)
                results.train_losses[c, fold, done:epochs] = estimator.history_["loss"][done:]
                results.add([(c, fold)], np.stack(recorder.outputs[done:])[:, :, None],
                            y[test], y_encoded[test], first_epoch=done)  # fmt: skip
                if results.train_scores:
                    results.add([(c, fold)], np.stack(recorder.train_outputs[done:])[:, :, None],
                                y[train], y_encoded[train], first_epoch=done,
                                subset="train")  # fmt: skip

    def fold_networks(self, candidate, X, y, sample_weight):
        """The fitted networks of ``candidate`` (a position), one per fold."""
        callbacks = self.base.get_params().get("fit__callbacks")
        networks = []
        for fold in range(len(self.splits)):
            estimator, recorder = self.fits.get((candidate, fold), (None, None))
            if recorder is None:
                raise ValueError(f"the best candidate's fit on fold {fold} failed")
            # As the candidate's own fit: the search's recorder and rung settings undone.
            estimator.set_params(epochs=len(estimator.history_["loss"]),
                                 warm_start=self.base.warm_start)  # fmt: skip
            if callbacks is None:
                del estimator.fit__callbacks
            else:
                estimator.set_params(fit__callbacks=callbacks)
            networks.append(estimator)
        return networks

    def failures(self):
        """What failed: a description of each failed fit."""
        return list(self.failed)

    def finish(self):
        """Let go of the fits."""
        self.fits = {}

    def report_failures(self):
        """Warn of failed fits (with ``error_score="raise"`` they raised)."""
        failures = self.failed
        if failures:
            warnings.warn(
                f"{len(failures)} fits failed and score error_score="
                f"{self.search.error_score}; the first: {failures[0]}",
                FitFailedWarning,
            )


class _HeldOutOutputs(keras.callbacks.Callback):
    """Records the network's outputs on the held-out rows (and on the
    training rows ``X_train``, if given) after each epoch."""

    def __init__(self, X_test, X_train=None):
        super().__init__()
        self.X_test, self.X_train = X_test, X_train
        self.outputs, self.train_outputs = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.outputs.append(predict_float64(self.model, self.X_test, PREDICT_BATCH_SIZE))
        if self.X_train is not None:
            self.train_outputs.append(predict_float64(self.model, self.X_train,
                                                      PREDICT_BATCH_SIZE))  # fmt: skip
