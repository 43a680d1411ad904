"""What the layers above the estimators (the CV search's machinery) take
of an estimator, as named functions: the one place from which they reach
its private methods, so that what a search depends on is listed here and
nowhere else."""

import contextlib
import contextvars

__all__ = ["batch_size_for", "encoded_targets", "is_multilabel", "keras_loss", "model_outputs",
           "predictions_from_outputs", "routed_keras_options", "shared_program",
           "sharing_program", "starting_network", "training_weights"]


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
