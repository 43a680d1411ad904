"""One network's fit on the program: the Python loop over calls of some
epochs each, with validation scores, early stopping and a hook after each
epoch (progress, callbacks) between them."""

import time

import numpy as np
import scipy.sparse as sp

from .._tensorflow import tf
from .losses import per_sample_accuracy, per_sample_loss
from .model import ModelPlan
from .structure import tower_data
from .trainer import TowerTrainer

__all__ = ["EpochHooks", "SECONDS_PER_CALL", "epochs_per_call_of", "fit_model"]


def _stacked(X, X_val):
    """The training and validation rows as one matrix of the training data's kind."""
    if sp.issparse(X):
        return sp.vstack([X, sp.csr_matrix(X_val, dtype=np.float32)], format="csr")
    if sp.issparse(X_val):  # dense training data: the held-out rows as dense too
        X_val = X_val.toarray()
    return np.concatenate([X, np.asarray(X_val, np.float32)])


def _validation_logs(structure, outputs, penalties, y_val):
    """val_loss (penalties included, as Keras reports it) and val_accuracy
    per epoch, from the outputs on the validation rows [epochs, rows, n_outputs]."""
    n_epochs, n_rows = outputs.shape[:2]
    flat = tf.constant(outputs.reshape(n_epochs * n_rows, -1))
    y = np.asarray(y_val, np.float32).reshape(n_rows, -1)
    losses = per_sample_loss(structure.loss, flat, tf.constant(np.tile(y, (n_epochs, 1))))
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


# Seconds of training per call when Python reports progress between calls:
# often enough to watch, rarely enough that the calls cost little.
SECONDS_PER_CALL = 0.5


def epochs_per_call_of(epochs, seconds):
    """Epochs for the next call of about SECONDS_PER_CALL, from the last
    call's ``epochs`` and ``seconds``."""
    return max(1, int(SECONDS_PER_CALL * epochs / max(seconds, 1e-6)))


class EpochHooks:
    """What runs in Python around a fit's epochs (progress lines, Keras
    callbacks); this one does nothing, and the fit is then one call."""

    #: Whether the hooks need each epoch's weights in the model, and Python
    #: before and after every epoch (Keras callbacks): an epoch per call.
    per_epoch = False
    #: Whether the hooks report each epoch's logs (progress lines): calls of
    #: about SECONDS_PER_CALL, their epochs reported as each call ends.
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


def fit_model(plan: ModelPlan, X, y, sample_weight, validation, *, epochs, batch_size,
              early_stopping, patience, seeds, hooks=None):  # fmt: skip
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
        stopping) the fit is one call.
    """
    hooks = hooks or EpochHooks()
    n_train = X.shape[0]
    data, y_all, blocks = X, np.asarray(y, np.float32).reshape(n_train, -1), []
    if validation is not None:
        X_val, y_val = validation
        data = _stacked(X, X_val)
        y_all = np.concatenate([y_all, np.asarray(y_val, np.float32).reshape(len(y_val), -1)])
        blocks = [(np.arange(n_train, data.shape[0]), 0, 1)]
    n_rows = data.shape[0]
    row_weight = np.zeros((1, n_rows), np.float32)
    row_weight[0, :n_train] = 1.0 if sample_weight is None else sample_weight
    member = np.zeros((1, n_rows), np.float32)
    member[0, :n_train] = 1.0
    structure = plan.structure
    trainer = TowerTrainer(
        structure, tower_data(data, batch_size, binary=structure.binary), y_all, row_weight,
        member, blocks, plan.state(), plan.numbers, batch_size=batch_size, seeds=seeds,
        train_rows=np.arange(n_train),
    )  # fmt: skip
    stopping = _EarlyStopping(patience) if early_stopping and validation is not None else None
    # One call for the whole fit, unless Python acts after each epoch.
    epochs_per_call = 1 if (stopping or hooks.per_epoch or hooks.reports) else epochs
    history, stop, logs = {}, False, {}
    hooks.train_begin(plan)
    while trainer.state.epoch < epochs and not stop:
        first = trainer.state.epoch
        if hooks.per_epoch:
            hooks.epoch_begin(first, plan)
            # A callback may have changed the learning rate or the weights.
            trainer.numbers["learning_rate"] = [plan.learning_rate()]
            if hooks.sees_model:
                trainer.state = plan.state(epoch=first)
        call_start = time.perf_counter()
        trained = trainer.train(min(epochs_per_call, epochs - first))
        call_seconds = time.perf_counter() - call_start
        n_trained = len(trained.losses)
        if hooks.reports and not (stopping or hooks.per_epoch):
            epochs_per_call = epochs_per_call_of(n_trained, call_seconds)
        chunk = {"loss": trained.losses[:, 0]}
        if structure.classifies:
            chunk["accuracy"] = trained.accuracies[:, 0]
        if validation is not None:
            chunk.update(_validation_logs(structure, trained.outputs[0][:, :, 0],
                                          trained.penalties[:, 0], validation[1]))  # fmt: skip
        for i in range(len(trained.losses)):
            logs = {name: float(values[i]) for name, values in chunk.items()}
            for name, value in logs.items():
                history.setdefault(name, []).append(value)
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
