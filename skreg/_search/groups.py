"""A CV search's groups of towers: some candidates on one fold, trained side
by side, rung after rung.

A group trains in this process (its :class:`TowerTrainer` kept between
rungs, each call of about half a second scored as it ends) or, where joblib
runs tasks elsewhere (``n_jobs``, a Dask cluster), as one task per group
and rung: :func:`train_group` rebuilds the trainer from the group's
picklable description and its state, trains the rung and sends back the
state, the losses and the held-out outputs, which are scored here.
"""

import contextlib
import time

import numpy as np

from .._engine import TowerEpochs, TowerState, TowerStructure, TowerTrainer, tower_data
from .._engine.numbers import TowerNumbers
from .._estimators.interface import batch_size_for, training_weights
from .._backend.tensorflow import tf

__all__ = ["FoldData", "Group", "train_group"]


class FoldData:
    """One fold as its groups of towers take it: its training rows (batches
    are cut from them; scored too with ``score_train``), their weights, and
    its held-out rows (scored)."""

    def __init__(self, fold, y, y_encoded, sample_weight, split, template, base, *,
                 score_train=False):  # fmt: skip
        train, test = split
        self.fold = fold
        self.train, self.test = train, test
        self.score_train = score_train
        self.y_train, self.y_train_encoded = y[train], y_encoded[train]
        self.batch_size = batch_size_for(base, len(train))
        self.y_encoded = y_encoded  # of every row, as the program takes them
        self.y_test, self.y_test_encoded = y[test], y_encoded[test]
        # The training rows' weights (class weights from the fold's own rows,
        # as its separate fit computes them); only the last argument's length is read.
        weight = training_weights(
            template, y_encoded[train],
            None if sample_weight is None else sample_weight[train], train,
        )  # fmt: skip
        self.row_weight = np.zeros(len(y), np.float32)
        self.row_weight[train] = 1.0 if weight is None else weight
        self.member = np.zeros(len(y), np.float32)
        self.member[train] = 1.0


class GroupSpec:
    """What a trainer of a group is made from, picklable (for joblib's
    workers): the structure, the fold, the towers' numbers and the seeds."""

    def __init__(self, structure, fold_data, numbers, *, seeds, start_weights, data_batch_size):
        self.structure, self.fold_data, self.numbers = structure, fold_data, numbers
        self.seeds, self.start_weights = seeds, start_weights
        self.data_batch_size = data_batch_size  # for tower_data's gradient split

    def trainer(self, data, state=None):
        """The group's trainer on ``data`` (:func:`tower_data`), from
        ``state`` or (None) from the start."""
        structure = TowerStructure(**self.structure)
        fold, n_towers = self.fold_data, self.numbers.n_towers
        if state is None:
            # Every network from the one start, as every fit of a grid search
            # with a fixed random_state: the first kernel holds the towers
            # side by side, the other weights stack them.
            weights = [np.tile(w, (1, n_towers)) if i == 0 else np.repeat(w, n_towers, axis=0)
                       for i, w in enumerate(self.start_weights)]  # fmt: skip
            state = TowerState.start(structure, weights, self.numbers)
        blocks = [(fold.test, 0, n_towers)]
        if fold.score_train:
            blocks.append((fold.train, 0, n_towers))
        return TowerTrainer(
            structure, data, fold.y_encoded, np.tile(fold.row_weight, (n_towers, 1)),
            np.tile(fold.member, (n_towers, 1)), blocks, state,
            self.numbers, batch_size=fold.batch_size, seeds=self.seeds, train_rows=fold.train,
        )  # fmt: skip


def train_group(spec, X, state, until):
    """A joblib task: the group of ``spec`` trained from ``state`` (None:
    the start) until ``until`` epochs, in whichever process runs it; its
    :class:`TowerEpochs` (of all the epochs) and the seconds it took."""
    start = time.perf_counter()
    data = tower_data(X, spec.data_batch_size, binary=spec.structure["binary"])
    trainer = spec.trainer(data, state)
    calls = []
    with training_errors_reported():
        while trainer.state.epoch < until:
            calls.append(trainer.train(until - trainer.state.epoch))
    return TowerEpochs.joined(calls), time.perf_counter() - start


@contextlib.contextmanager
def training_errors_reported():
    """TensorFlow's errors while training the towers as a RuntimeError that
    names the search (not a raw traceback)."""
    try:
        yield
    except tf.errors.OpError as error:
        raise RuntimeError(
            f"TensorFlow failed while training the search's networks: "
            f"{error.message.strip().splitlines()[0]}"
        ) from None


class Group:
    """A group of towers: some candidates on one fold.

    In this process its trainer is made at its first call and kept;
    as joblib tasks only its :class:`TowerState` is kept between rungs.
    """

    def __init__(self, search, number, fold_data, candidates, *, seeds, start_weights,
                 data_batch_size, bytes_per_tower):  # fmt: skip
        self.search, self.number, self.fold_data = search, number, fold_data
        self.candidates = candidates
        self.bytes_per_tower = bytes_per_tower  # :func:`tower_bytes` on its fold
        self._settings = dict(seeds=seeds, start_weights=start_weights,
                              data_batch_size=data_batch_size)  # fmt: skip
        self.trainer = self.state = self.task = None

    def spec(self):
        """The group's :class:`GroupSpec` for its candidates now."""
        search = self.search
        # The dropout masks of a plain fit with the search's random_state,
        # as each fit of a GridSearchCV draws them, whatever group the
        # network trains in: key 0 for every tower.
        numbers = TowerNumbers.stacked([search.numbers[c] for c in self.candidates])
        return GroupSpec(search.structure, self.fold_data, numbers, **self._settings)

    def keep(self, candidates):
        """Keep only ``candidates`` (a subset, in order): their towers go on."""
        if candidates == self.candidates:
            return
        positions = [self.candidates.index(c) for c in candidates]
        if candidates and self.trainer is not None:
            self.trainer.select(positions)
        elif candidates and self.state is not None:
            self.state = self.state.select(positions)
        self.candidates = candidates
        if not candidates:
            self.trainer = self.state = None  # lets go of the towers
            self.end_task()

    def end_task(self):
        """The end of the group's task for scikit-learn's callbacks (of its
        rung, with halving: the next rung begins another)."""
        if self.task is not None:
            self.search.tasks.end(self.task)
            self.task = None

    def train(self, data, until):
        """Train in this process until the towers have trained ``until``
        epochs, in calls of about half a second, each scored and reported
        as it ends; or until the search is told to stop (by the thread that
        Ctrl-C reached, when two groups train at once)."""
        search, results = self.search, self.search.results
        start = time.perf_counter()
        if self.trainer is None:
            self.trainer = self.spec().trainer(data)
        # Watched (verbose or scikit-learn's callbacks), the first epoch is
        # reported alone, as soon as it ends.
        watched = search.progress is not None or search.tasks is not None
        scoring = self._scoring_seconds()
        while self.trainer.state.epoch < until and not search.stopping.is_set():
            first_epoch = self.trainer.state.epoch
            with training_errors_reported():
                trained = self.trainer.train(1 if watched and first_epoch == 0
                                             else until - first_epoch)  # fmt: skip
            self.record(trained, first_epoch)
        # Scoring between calls is timed apart (score_times): training is the rest.
        training = time.perf_counter() - start - (self._scoring_seconds() - scoring)
        results.fit_times[self.candidates, self.fold_data.fold] += training / len(self.candidates)

    def trained_elsewhere(self, trained, seconds):
        """Take the outcome of :func:`train_group` for this group."""
        first_epoch = 0 if self.state is None else self.state.epoch
        self.state = trained.state
        self.record(trained, first_epoch)
        self.search.results.fit_times[self.candidates, self.fold_data.fold] += (
            seconds / len(self.candidates))

    def record(self, trained, first_epoch):
        """Score and report some epochs of the group's towers."""
        search, results, fold = self.search, self.search.results, self.fold_data.fold
        towers = [(c, fold) for c in self.candidates]
        epochs = slice(first_epoch, trained.state.epoch)
        results.train_losses[self.candidates, fold, epochs] = trained.losses.T
        search.diverged[self.candidates, fold] |= ~np.isfinite(trained.losses).all(axis=0)
        results.add(towers, trained.outputs[0], self.fold_data.y_test,
                    self.fold_data.y_test_encoded, first_epoch=first_epoch)  # fmt: skip
        if self.fold_data.score_train:
            results.add(towers, trained.outputs[1], self.fold_data.y_train,
                        self.fold_data.y_train_encoded, first_epoch=first_epoch,
                        subset="train")  # fmt: skip
        if search.progress is not None:
            search.progress.report(self.number, towers, trained.state.epoch, search.base.epochs)
        if search.tasks is not None:
            if self.task is None:
                self.task = search.tasks.begin(self.number, search.base.epochs)
            search.tasks.epochs(self.task, len(trained.losses))

    def _scoring_seconds(self):
        return sum(self.search.results.score_times[c, self.fold_data.fold]
                   for c in self.candidates)  # fmt: skip
