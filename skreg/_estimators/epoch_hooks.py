"""Progress lines and Keras callbacks around the epochs of a fit on the
traced program (:class:`skreg._engine.fit.EpochHooks`): Python runs between
epochs, the epochs themselves stay in the program."""

import sys

from .._engine.fit import EpochHooks
from .._backend.tensorflow import keras

__all__ = ["ChainedHooks", "HooksAsKerasCallback", "KerasEpochHooks"]


class KerasEpochHooks(EpochHooks):
    """Keras callbacks (``on_train_begin/end``, ``on_epoch_begin/end`` with
    Keras' logs; ``model.stop_training`` stops after the epoch) and, with
    ``verbose > 0``, a line per epoch as Keras' ``verbose=2`` prints it.
    Batch-level hooks are not called: a batch runs inside the program."""

    def __init__(self, callbacks, *, verbose, epochs, steps, stream=None):
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.stream = stream
        self._callback_list = None
        # Callbacks see the model after each epoch: an epoch per call. Lines
        # alone come from calls of about half a second (a few epochs each
        # on small data), printed as each call ends.
        self.per_epoch = bool(self.callbacks)
        self.reports = bool(verbose)

    @property
    def sees_model(self):
        return not all(_reads_logs_only(callback) for callback in self.callbacks)

    def train_begin(self, plan):
        model = plan.model
        model.stop_training = False
        self._callback_list = keras.callbacks.CallbackList(
            self.callbacks, add_history=False, add_progbar=False, model=model,
            verbose=self.verbose, epochs=self.epochs, steps=self.steps,
        )  # fmt: skip
        self._callback_list.on_train_begin()

    def epoch_begin(self, epoch, plan):
        self._callback_list.on_epoch_begin(epoch)

    def epoch_end(self, epoch, logs, plan, seconds):
        if self.verbose:
            numbers = " - ".join(f"{name}: {value:.4f}" for name, value in sorted(logs.items()))
            print(f"Epoch {epoch + 1}/{self.epochs} - {self.steps} steps - {seconds:.2f}s - "
                  f"{numbers}", file=self.stream or sys.stdout, flush=True)  # fmt: skip
        self._callback_list.on_epoch_end(epoch, dict(logs))
        return plan.model.stop_training

    def train_end(self, logs, plan):
        self._callback_list.on_train_end(dict(logs))


def _reads_logs_only(callback):
    """Whether a Keras callback only reads the epochs' logs (and sets the
    learning rate or ``stop_training``): Keras' own classes, exactly, whose
    epoch hooks touch no weight (EarlyStopping without restoring weights)."""
    callbacks = keras.callbacks
    if type(callback) is callbacks.EarlyStopping:
        return not callback.restore_best_weights
    return type(callback) in (callbacks.CSVLogger, callbacks.ReduceLROnPlateau,
                              callbacks.LearningRateScheduler, callbacks.History,
                              callbacks.TerminateOnNaN)  # fmt: skip


class ChainedHooks(EpochHooks):
    """Several hooks as one; those with nothing to do between epochs left out."""

    def __init__(self, *hooks):
        self.hooks = [h for h in hooks if h is not None and (h.per_epoch or h.reports)]
        self.per_epoch = any(h.per_epoch for h in self.hooks)
        self.reports = any(h.reports for h in self.hooks)

    @property
    def sees_model(self):
        return any(h.sees_model for h in self.hooks)

    def train_begin(self, plan):
        for hooks in self.hooks:
            hooks.train_begin(plan)

    def epoch_begin(self, epoch, plan):
        for hooks in self.hooks:
            if hooks.per_epoch:
                hooks.epoch_begin(epoch, plan)

    def epoch_end(self, epoch, logs, plan, seconds):
        stop = False
        for hooks in self.hooks:
            stop |= bool(hooks.epoch_end(epoch, logs, plan, seconds))
        return stop

    def train_end(self, logs, plan):
        for hooks in self.hooks:
            hooks.train_end(logs, plan)


class HooksAsKerasCallback(keras.callbacks.Callback):
    """Epoch hooks on Keras' own loop (for fits that Keras' fit trains)."""

    def __init__(self, hooks):
        super().__init__()
        self.hooks = hooks

    def on_epoch_end(self, epoch, logs=None):
        if self.hooks.epoch_end(epoch, dict(logs or {}), None, None):
            self.model.stop_training = True
