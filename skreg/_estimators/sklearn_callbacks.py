"""scikit-learn's callback protocol (``sklearn.callback``, scikit-learn >=
1.9): a fit is a task whose epochs are its subtasks, so that ``ProgressBar``,
``ScoringMonitor`` and the callbacks a ``GridSearchCV`` or ``Pipeline``
propagates see skreg's epochs as they see LogisticRegression's iterations.
With older scikit-learn the names here do nothing and skreg works as before."""

import contextlib
import threading

from .._engine.fit import EpochHooks

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9

    class CallbackSupportMixin:
        """No callbacks before scikit-learn 1.9."""

    def with_callbacks(method):
        return method

    SKLEARN_CALLBACKS = False
else:
    SKLEARN_CALLBACKS = True

__all__ = ["CallbackSupportMixin", "FitTask", "GroupTasks", "SKLEARN_CALLBACKS", "SearchTask",
           "with_callbacks"]


class FitTask(EpochHooks):
    """A fit's task for scikit-learn's callbacks, and its epochs as subtasks,
    reported after each epoch with the estimator as it stands then (its
    ``model_`` holds the epoch's weights: an epoch per call when callbacks
    are set; True from a callback stops training after that epoch)."""

    def __init__(self, estimator, X, y, sample_weight, *, epochs):
        self.estimator = estimator
        self.X, self.y = X, y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.context = None
        if SKLEARN_CALLBACKS:
            # Also without callbacks of its own: a meta-estimator's task tree
            # (GridSearchCV, Pipeline) takes this fit's task in.
            self.context = estimator._init_callback_context(max_subtasks=epochs)
            self.context.call_on_fit_task_begin(estimator=estimator, X=X, y=y,
                                                metadata=self.metadata)  # fmt: skip
        self.per_epoch = bool(self.context is not None and self.context._callbacks)

    def epoch_end(self, epoch, logs, plan, seconds):
        if not self.per_epoch:
            return False
        task = self.context.subcontext(task_name="epoch")
        task.call_on_fit_task_begin(estimator=self.estimator, X=self.X, y=self.y,
                                    metadata=self.metadata)  # fmt: skip
        return task.call_on_fit_task_end(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
            # A copy of the estimator with the model as it is now, made only
            # for callbacks that ask for it (ScoringMonitor).
            reconstruction_attributes=lambda: {"model_": self.estimator.model_},
        )  # fmt: skip

    def end(self):
        """The end of the fit's task (the estimator is fitted)."""
        if self.context is not None:
            self.context.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y,
                                              metadata=self.metadata,
                                              reconstruction_attributes={})  # fmt: skip


class SearchTask:
    """A CV estimator's fit as a task for scikit-learn's callbacks: the
    search and the refit are its subtasks, the refit's epochs the refit's."""

    def __init__(self, estimator, X, y, *, n_subtasks):
        self.estimator, self.X, self.y = estimator, X, y
        self.context = None
        if SKLEARN_CALLBACKS:
            self.context = estimator._init_callback_context(max_subtasks=n_subtasks)
            self.context.call_on_fit_task_begin(estimator=estimator, X=X, y=y)

    @contextlib.contextmanager
    def subtask(self, name, sub_estimator=None, *, max_subtasks=0, sequential_subtasks=True):
        """A subtask around the block, given to it (None without scikit-learn's
        callbacks); ``sub_estimator``'s own fit task (and the callbacks that
        propagate) joins the task tree there."""
        if self.context is None:
            yield None
            return
        task = self.context.subcontext(task_name=name, max_subtasks=max_subtasks,
                                       sequential_subtasks=sequential_subtasks)  # fmt: skip
        # As Pipeline gives its final estimator its task.
        propagated = (contextlib.nullcontext() if sub_estimator is None
                      else task.propagate_callback_context(sub_estimator))  # fmt: skip
        with propagated:
            task.call_on_fit_task_begin(estimator=self.estimator, X=self.X, y=self.y)
            yield task
            task.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y)

    def end(self):
        if self.context is not None:
            self.context.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y,
                                              reconstruction_attributes={})  # fmt: skip


class GroupTasks:
    """A CV search's groups of towers as subtasks of its search task (with
    successive halving: of the rung's task, the rungs being the search's
    subtasks), each with its epochs as subtasks (reported as each call of the
    program ends; no ``fitted_estimator``: the towers are not networks of
    their own). Two groups may train at once, so the calls go through a
    lock. Active only when there are callbacks to call."""

    def __init__(self, search_context, estimator, *, halving=False):
        self.context, self.estimator = search_context, estimator
        self.active = bool(search_context is not None and search_context._callbacks)
        self.halving = halving
        self._lock = threading.Lock()
        self._rung = None

    @contextlib.contextmanager
    def rung(self, number, n_epochs):
        """With halving, the task of rung ``number`` (0-based) around its
        training; ``n_epochs``: the epochs its groups train."""
        if not (self.active and self.halving):
            yield
            return
        self._rung = self.context.subcontext(task_name="rung", task_id=number,
                                             max_subtasks=None,
                                             sequential_subtasks=False)  # fmt: skip
        self._rung.call_on_fit_task_begin(estimator=self.estimator)
        self._rung_epochs = n_epochs
        yield
        self._rung.call_on_fit_task_end(estimator=self.estimator)
        self._rung = None

    def begin(self, number, n_epochs):
        """The task of group ``number`` (1-based), begun."""
        with self._lock:
            parent = self.context if self._rung is None else self._rung
            n_epochs = n_epochs if self._rung is None else self._rung_epochs
            task = parent.subcontext(task_name="group", task_id=number,
                                     max_subtasks=n_epochs)  # fmt: skip
            task.call_on_fit_task_begin(estimator=self.estimator)
        return task

    def epochs(self, task, n_epochs):
        """``n_epochs`` more epochs of the group done; True from a callback is
        not honoured (a group's towers stop together only at the search's end)."""
        with self._lock:
            for _ in range(n_epochs):
                epoch = task.subcontext(task_name="epoch")
                epoch.call_on_fit_task_begin(estimator=self.estimator)
                epoch.call_on_fit_task_end(estimator=self.estimator)

    def end(self, task):
        with self._lock:
            task.call_on_fit_task_end(estimator=self.estimator)
