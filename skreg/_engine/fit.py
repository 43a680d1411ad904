"""Fits on the program: one network's (the Python loop over calls of some
epochs each, with validation scores, early stopping and a hook after each
epoch, progress or callbacks, between them), and several networks' of one
shape side by side, as the towers of one group."""

import time

import numpy as np
import scipy.sparse as sp

from .._backend.tensorflow import tf
from .losses import per_sample_accuracy, per_sample_loss
from .model import ModelPlan
from .numbers import TowerNumbers
from .regularizers import LabelSmoothing
from .structure import tower_data
from .trainer import TowerState, TowerTrainer, held_out_data, ready_program

__all__ = ["EpochHooks", "fit_model", "fit_plans_side_by_side", "program_group"]


def _like(X, X_val):
    """The validation rows as a matrix of the training data's kind."""
    if sp.issparse(X):
        return sp.csr_matrix(X_val, dtype=np.float32)
    if sp.issparse(X_val):  # dense training data: the held-out rows as dense too
        X_val = X_val.toarray()
    return np.asarray(X_val, np.float32)


def _validation_logs(structure, outputs, penalties, y_val, smoothing):
    """val_loss (penalties and label ``smoothing`` included, as Keras
    reports it) and val_accuracy per epoch, from the outputs on the
    validation rows [epochs, rows, n_outputs]."""
    n_epochs, n_rows = outputs.shape[:2]
    flat = tf.constant(outputs.reshape(n_epochs * n_rows, -1))
    y = np.asarray(y_val, np.float32).reshape(n_rows, -1)
    per_row = (tf.fill([n_epochs * n_rows], np.float32(smoothing))
               if structure.makes(LabelSmoothing) else None)  # fmt: skip
    losses = per_sample_loss(structure.loss, flat, tf.constant(np.tile(y, (n_epochs, 1))), per_row)
    logs = {"val_loss": np.reshape(losses.numpy(), (n_epochs, n_rows)).mean(axis=1) + penalties}
    if structure.classifies:
        logs["val_accuracy"] = per_sample_accuracy(structure.loss, outputs, y).mean(axis=1)
    return logs


class _EarlyStopping:
    """Keras' EarlyStopping on val_loss with restore_best_weights: the first
    epoch's weights, then each better one's; stop after ``patience`` epochs
    without improvement."""

    def __init__(self, patience):
        self.patience = patience
        self.best_loss, self.wait, self.best_weights = np.inf, 0, None

    def stops_after(self, epoch, val_loss, weights):
        improved = val_loss < self.best_loss
        if improved or epoch == 0:
            self.best_weights = weights
        if improved:
            self.best_loss, self.wait = val_loss, 0
        else:
            self.wait += 1
        return self.wait >= self.patience and epoch > 0


class EpochHooks:
    """What runs in Python around a fit's epochs (progress lines, Keras
    callbacks); this one does nothing, and the fit is then calls of about
    SECONDS_PER_CALL (one, for a short fit)."""

    #: Whether the hooks need each epoch's weights in the model, and Python
    #: before and after every epoch (Keras callbacks): an epoch per call.
    per_epoch = False
    #: Whether the hooks report each epoch's logs (progress lines): the
    #: epochs of each call (about SECONDS_PER_CALL) reported as it ends.
    reports = False

    @property
    def sees_model(self):
        """Whether the hooks read or change the model's weights between
        epochs (then the model holds each epoch's state and what they change
        is trained on); hooks that only read the logs (and the learning
        rate, which is read back every epoch) spare those copies."""
        return self.per_epoch

    def train_begin(self, plan):
        pass

    def epoch_begin(self, epoch, plan):
        """Before the epoch, with ``per_epoch`` only."""

    def epoch_end(self, epoch, logs, plan, seconds):
        """After the epoch (``seconds``: its share of its call); with
        ``per_epoch`` its weights are in the model. True stops training."""
        return False

    def train_end(self, logs, plan):
        pass


def _trainer_of(structure, state, numbers, X, y, sample_weight, validation, *, batch_size,
                seeds, prepared=None):  # fmt: skip
    """The trainer of towers (as many as ``state`` has) that all train on
    ``X`` and are scored on the validation rows after each epoch."""
    ready_program(structure)  # while the data is prepared
    n_towers, n_train = state.n_towers, X.shape[0]
    held_out, blocks = None, []
    if validation is not None:
        # The validation rows apart from the data batches are cut from.
        X_val = _like(X, validation[0])
        held_out, blocks = held_out_data(X_val), [(np.arange(X_val.shape[0]), 0, n_towers)]
    row_weight = np.ones((n_towers, n_train), np.float32)
    if sample_weight is not None:
        row_weight[:] = sample_weight
    return TowerTrainer(
        structure, tower_data(X, batch_size, binary=structure.binary, prepared=prepared),
        np.asarray(y, np.float32).reshape(n_train, -1), row_weight,
        np.ones((n_towers, n_train), np.float32), blocks, state, numbers,
        batch_size=batch_size, seeds=seeds, held_out=held_out,
    )  # fmt: skip


def _epoch_logs(structure, trained, tower, y_val, smoothing=0.0):
    """Tower ``tower``'s logs (Keras' names) of each epoch of a call."""
    chunk = {"loss": trained.losses[:, tower]}
    if structure.classifies:
        chunk["accuracy"] = trained.accuracies[:, tower]
    if y_val is not None:
        chunk.update(_validation_logs(structure, trained.outputs[0][:, :, tower],
                                      trained.penalties[:, tower], y_val, smoothing))  # fmt: skip
    return [{name: float(values[i]) for name, values in chunk.items()}
            for i in range(len(trained.losses))]  # fmt: skip


def _append(history, logs):
    for name, value in logs.items():
        history.setdefault(name, []).append(value)


def fit_model(plan: ModelPlan, X, y, sample_weight, validation, *, epochs, batch_size,
              early_stopping, patience, seeds, hooks=None, prepared=None):  # fmt: skip
    """Train the planned model in place; its history as Keras' ``fit`` reports it.

    Parameters
    ----------
    plan : ModelPlan
    X : ndarray or canonical CSR matrix, float32
    y : ndarray
        Encoded labels or targets.
    sample_weight : ndarray or None
    validation : tuple (X_val, y_val) or None
    epochs, batch_size, patience : int
    early_stopping : bool
        Stop when val_loss has not improved for ``patience`` epochs and
        restore the best epoch's weights.
    seeds : pair of int
        Seeds of the batch order and of the dropout masks.
    hooks : EpochHooks or None
        Run around each epoch (logs with Keras' names: loss, accuracy,
        val_loss, val_accuracy). With hooks per epoch the model holds each
        epoch's weights when they run, and what they change in it (weights,
        learning rate) is trained on. Without them (and without early
        stopping) the fit is calls of about SECONDS_PER_CALL each.
    prepared : PreparedData or None
        The data as the program takes it, if already made for ``X``.
    """
    hooks = hooks or EpochHooks()
    structure = plan.structure
    trainer = _trainer_of(structure, plan.state(), plan.numbers, X, y, sample_weight, validation,
                          batch_size=batch_size, seeds=seeds, prepared=prepared)  # fmt: skip
    stopping = _EarlyStopping(patience) if early_stopping and validation is not None else None
    # Every epoch left, in calls of about SECONDS_PER_CALL (the program's
    # own clock), unless Python acts after each epoch.
    epochs_per_call = 1 if (stopping or hooks.per_epoch) else epochs
    history, stop, logs = {}, False, {}
    hooks.train_begin(plan)
    while trainer.state.epoch < epochs and not stop:
        first = trainer.state.epoch
        if hooks.per_epoch:
            hooks.epoch_begin(first, plan)
            # A callback may have changed the learning rate or the weights.
            trainer.numbers = trainer.numbers.replace(learning_rate=[plan.learning_rate()])
            if hooks.sees_model:
                trainer.state = plan.state(epoch=first)
        call_start = time.perf_counter()
        # Progress lines report the first epoch alone, as soon as it ends.
        trained = trainer.train(1 if hooks.reports and first == 0
                                else min(epochs_per_call, epochs - first))  # fmt: skip
        call_seconds = time.perf_counter() - call_start
        n_trained = len(trained.losses)
        y_val = None if validation is None else validation[1]
        for i, logs in enumerate(_epoch_logs(structure, trained, 0, y_val,
                                             plan.numbers.label_smoothing[0])):  # fmt: skip
            _append(history, logs)
            # A loss that is not finite ends training; the caller reports it.
            stop = not np.isfinite(logs["loss"])
            if stopping is not None:
                stop |= stopping.stops_after(first + i, logs["val_loss"], trained.state.weights)
            if hooks.sees_model:
                plan.write(trainer.state)
            if hooks.per_epoch or hooks.reports:
                stop |= bool(hooks.epoch_end(first + i, logs, plan, call_seconds / n_trained))
            if stop:
                break
    if hooks.sees_model:
        # The model holds the last epoch's state, as its hooks left it (the
        # next epoch would have read it back from there).
        if stopping is not None and stopping.best_weights is not None:
            plan.write(plan.state(epoch=trainer.state.epoch), weights=stopping.best_weights)
    else:
        plan.write(trainer.state, weights=stopping and stopping.best_weights)
    hooks.train_end(logs, plan)
    return history


def program_group(plan):
    """What plans must share to train side by side (:func:`fit_plans_side_by_side`):
    their structure but for the regularizers' passes (a tower at a
    regularizer's off value leaves itself out of its passes: a group makes
    those of any of its towers), their weights' shapes (widths are run-time shapes, not part of the
    structure, but towers stack), the optimizer's numbers other than the
    learning rate, and the input augmentation, which changes the group's
    shared batches."""
    structure = {**vars(plan.structure), "regularizers": None}
    return (tuple(sorted(structure.items())), tuple(tuple(v.shape) for v in plan.variables),
            plan.numbers.group())  # fmt: skip


def fit_plans_side_by_side(plans, X, y, validation, *, epochs, batch_size, seeds, report=None):
    """Train planned models in place as the towers of one program; their
    histories, as :func:`fit_model` gives each.

    The plans share a :func:`program_group`; each model has its own
    penalties, dropout rate and learning rate, its own start, and the
    batches and dropout masks that its own fit with ``seeds`` draws, so it
    learns what that fit learns (to float32 rounding). A model whose loss
    stops being finite trains on with the others; its history shows it.

    Parameters
    ----------
    plans : list of ModelPlan
    X, y, validation, epochs, batch_size, seeds
        As :func:`fit_model` takes them (no sample weights).
    report : callable or None
        Called as ``report(position, epoch, logs)`` after each epoch of each
        model (epochs from 0, in order, every model's epoch before the
        next), as each call (about SECONDS_PER_CALL) ends.
    """
    if len({program_group(plan) for plan in plans}) != 1:
        raise ValueError("The models do not share one program: they cannot train side by side.")
    structure = plans[0].structure
    structure = type(structure)(**{**vars(structure), "regularizers": [
        name for plan in plans for name in plan.structure.regularizers]})
    numbers = TowerNumbers.stacked([plan.numbers for plan in plans])
    trainer = _trainer_of(structure, TowerState.stacked([plan.state() for plan in plans]),
                          numbers, X, y, None, validation, batch_size=batch_size,
                          seeds=seeds)  # fmt: skip
    y_val = None if validation is None else validation[1]
    histories = [{} for _ in plans]
    while trainer.state.epoch < epochs:
        first = trainer.state.epoch
        trained = trainer.train(epochs - first)
        logs = [_epoch_logs(structure, trained, k, y_val, numbers.label_smoothing[k])
                for k in range(len(plans))]  # fmt: skip
        for i in range(len(trained.losses)):
            for k, history in enumerate(histories):
                _append(history, logs[k][i])
                if report is not None:
                    report(k, first + i, logs[k][i])
    for k, plan in enumerate(plans):
        plan.write(trainer.state.select([k]))
    return histories
