"""What the layers above the estimators (the CV search's machinery) take
of an estimator, as named functions: the one place from which they reach
its private methods, so that what a search depends on is listed here and
nowhere else."""

import contextlib
import contextvars

from .._engine.model import plan_model

__all__ = ["batch_size_for", "encoded_targets", "fitted_from_state", "is_multilabel",
           "keras_loss", "model_outputs", "predictions_from_outputs", "routed_keras_options",
           "shared_program", "sharing_program", "starting_network", "training_weights"]


def batch_size_for(estimator, n_samples):
    """The batch size a fit of ``estimator`` on ``n_samples`` rows uses."""
    return estimator._resolved_batch_size(n_samples)


def encoded_targets(estimator, y):
    """``y`` encoded as a first fit of ``estimator`` encodes it (its classes set)."""
    return estimator._encode_y(y, first_call=True)


def training_weights(estimator, y_encoded, sample_weight, X):
    """The rows' weights in a fit's loss (class weights from these rows), or None."""
    return estimator._sample_weight(y_encoded, sample_weight, X)


def model_outputs(estimator):
    """The network's output units for the encoded targets."""
    return estimator._n_model_outputs()


def is_multilabel(estimator):
    """Whether a classifier's encoded targets are a label indicator matrix."""
    return estimator._multilabel


def predictions_from_outputs(estimator, outputs):
    """A regressor's predictions from its network's outputs (float64)."""
    return estimator._predictions(outputs)


def keras_loss(estimator):
    """The Keras loss a fit of ``estimator`` compiles."""
    return estimator._keras_loss()


def routed_keras_options(estimator):
    """The routed ``fit__`` and ``compile__`` options (Keras' own fit's)."""
    return [*(f"fit__{name}" for name in estimator._routed_params("fit")),
            *(f"compile__{name}" for name in estimator._routed_params("compile"))]  # fmt: skip


def starting_network(estimator, n_features, seed):
    """The compiled network (its optimizer built) that a fit of ``estimator``
    on ``n_features`` features starts from, with the model seed ``seed``."""
    optimizer_class, config = estimator._resolve_optimizer()
    estimator._check_routed_params(optimizer_class)
    optimizer = estimator._initialize_optimizer(optimizer_class, config)
    return estimator._initialize_model(n_features, seed, optimizer)


def fitted_from_state(estimator, X, y, sample_weight, state, losses, *, classes=None):
    """``estimator`` (unfitted) as its fit on ``X, y`` would leave it had
    that fit trained the one-tower ``state`` (a
    :class:`~skreg._engine.TowerState` of its network's structure) with the
    training ``losses`` of its epochs: a search's tower kept as a network
    of its own. ``classes``: a classifier's classes (those of all the
    search's rows, which a fold may lack)."""
    job = estimator._prepare_fit(X, y, sample_weight, None, epochs=len(losses),
                                 incremental=False, classes=classes)  # fmt: skip
    plan_model(estimator.model_, job.X).write(state)
    estimator.training_path_, estimator.training_path_reason_ = "program", None
    estimator._finish_fit({"loss": [float(loss) for loss in losses]})
    return estimator


class SharedProgram:
    """A program and data that a fit shares with a search (its refit): the
    search's ``structure`` (whose dropout draws the fit then makes too) and
    its ``prepared`` data (:class:`~skreg._engine.PreparedData`)."""

    def __init__(self, estimator, structure, prepared):
        self.estimator, self.structure, self.prepared = estimator, structure, prepared


_SHARED = contextvars.ContextVar("skreg_shared_program", default=None)


@contextlib.contextmanager
def sharing_program(estimator, structure, prepared):
    """Within the block, fits of ``estimator`` share the search's program
    and data (nothing is stored on the estimator: a fitted one keeps no
    copy of its training data)."""
    token = _SHARED.set(SharedProgram(estimator, structure, prepared))
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_program(estimator):
    """The :class:`SharedProgram` of a fit of ``estimator`` in a
    :func:`sharing_program` block, or None."""
    shared = _SHARED.get()
    return shared if shared is not None and shared.estimator is estimator else None
