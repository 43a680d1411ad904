"""The static structure of a group of towers (its program's cache key), the
layout of their weights, their starting weights and their memory."""

import numpy as np
import scipy.sparse as sp

from .partition import column_major, csr_tensors, gradient_split, row_ids_of
from .._backend.tensorflow import tf
from .batches import EVALUATION_BATCH_SIZE
from .regularizers import REGULARIZERS
from .rules import rule_of

__all__ = ["PreparedData", "TowerStructure", "fuses_update", "initial_weights", "is_binary",
           "optimizer_slots", "tower_bytes", "tower_data", "trainable_positions", "weight_layout"]


class TowerStructure:
    """The static structure of a group of towers: the key of its traced program.

    Widths and the number of towers are not part of it (they are shapes of
    run-time inputs); what changes the ops traced is.
    """

    def __init__(self, *, n_hidden, activation, batch_norm, loss, optimizer, sparse,
                 binary, fused_update, regularizers=(), with_input_dropout=False,
                 with_input_noise=False, clipping=None, schedule=None,
                 batch_norm_momentum=0.99, batch_norm_epsilon=1e-3):  # fmt: skip
        self.n_hidden = n_hidden
        self.activation = activation
        self.batch_norm = batch_norm
        # Keras' BatchNormalization defaults, which build_mlp uses; a fit
        # reads them from its model's layers.
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.loss = loss
        self.optimizer = optimizer
        self.sparse = sparse
        self.binary = binary
        self.fused_update = fused_update
        # The names of the regularizers whose passes the program makes
        # (:data:`~skreg._engine.regularizers.REGULARIZERS`, in its order):
        # at its off value a tower is left as it is.
        unknown = set(regularizers) - {r.name for r in REGULARIZERS}
        if unknown:
            raise ValueError(f"unknown regularizers {sorted(unknown)}")
        self.regularizers = tuple(r.name for r in REGULARIZERS if r.name in set(regularizers))
        # Input dropout and noise (InputAugmentation), one rate for the group.
        self.with_input_dropout = with_input_dropout
        self.with_input_noise = with_input_noise
        # Keras' gradient clipping: None, "clipnorm", "clipvalue" or
        # "global_clipnorm" (each tower's value is a number).
        self.clipping = clipping
        # A Keras learning-rate schedule as (class name, config items), the
        # towers' learning rates its factors; or None.
        self.schedule = schedule

    def makes(self, regularizer):
        """Whether the program makes the passes of ``regularizer`` (a class
        of :data:`~skreg._engine.regularizers.REGULARIZERS`)."""
        return regularizer.name in self.regularizers

    @property
    def classifies(self):
        """Whether the loss is a classifier's (the program then counts accuracy)."""
        return self.loss[0] in ("binary", "categorical")

    @property
    def key(self):
        return ("towers", *sorted(vars(self).items()))


def optimizer_slots(kind):
    """Optimizer buffers per trainable weight for an optimizer ``kind``."""
    return rule_of(kind).n_slots


def is_binary(X):
    """Whether ``X`` is sparse with every stored value 1 (multi-hot)."""
    return sp.issparse(X) and bool(np.all(X.data == 1))


class PreparedData:
    """:func:`tower_data` of the matrix ``X``, handed to a later fit on the
    same matrix (a CV search's refit on the data its folds were cut from),
    which then neither makes it again nor holds a second copy."""

    def __init__(self, X, batch_size, *, binary, tensors):
        self.X, self.batch_size, self.binary, self.tensors = X, batch_size, binary, tensors

    def tensors_for(self, X, batch_size, *, binary):
        """The tensors, if they are those of this very matrix object (not
        an equal one: its arrays could have changed since) cut for
        ``batch_size``; else None."""
        if X is self.X and batch_size == self.batch_size and binary == self.binary:
            return self.tensors
        return None


def tower_data(X, batch_size, *, binary, prepared=None):
    """The data as the tower program takes it (made once for all groups):
    a CSR matrix's arrays, its non-zeros in column order, the column at
    which kernel gradients are cut (:func:`~skreg._engine.partition.column_major`,
    :func:`~skreg._engine.partition.gradient_split`) and each non-zero's row, or
    the dense array.
    ``binary``: :func:`is_binary` of ``X``, as the structure holds it.
    ``prepared``: a :class:`PreparedData`, used if it is of ``X``."""
    if prepared is not None:
        tensors = prepared.tensors_for(X, batch_size, binary=binary)
        if tensors is not None:
            return tensors
    if sp.issparse(X):
        csr = csr_tensors(X)
        return (*csr, *column_major(X, binary=binary),
                tf.constant(gradient_split(X, batch_size), tf.int64), row_ids_of(X))  # fmt: skip
    return (tf.constant(X, dtype=tf.float32),)


def tower_bytes(n_features, hidden_layer_sizes, n_outputs, *, n_rows, batch_size,
                epochs, n_slots):  # fmt: skip
    """Estimated memory of one tower in a group: its weights with their
    gradients, optimizer buffers and copies in the training loop, its share of
    the activations, and its outputs on every row after every epoch."""
    widths = [n_features, *hidden_layer_sizes, n_outputs]
    n_weights = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    units = sum(hidden_layer_sizes) + n_outputs
    activations = (batch_size + EVALUATION_BATCH_SIZE) * units * 6
    return 4 * (n_weights * (5 + n_slots) + activations + epochs * n_rows * n_outputs)


def initial_weights(n_features, hidden_layer_sizes, n_outputs, *, seeds, batch_norm):
    """The towers' starting weights, as numpy arrays in the program's order.

    Keras' initializers of build_mlp's layers (Glorot-uniform kernels, zero
    biases, batch norm's ones and zeros), tower ``k`` drawn from
    ``seeds[k]``: towers with the same seed start from the same draw, so
    that candidates differ by their parameters only, as in a grid search
    with a fixed ``random_state``.
    """
    draws = {}
    for seed in dict.fromkeys(seeds):
        random_state = np.random.RandomState(seed)
        widths = [n_features, *hidden_layer_sizes, n_outputs]
        draws[seed] = [_glorot_uniform(random_state, fan_in, units)
                       for fan_in, units in zip(widths[:-1], widths[1:])]  # fmt: skip
    n_towers = len(seeds)
    weights = []
    for i, units in enumerate([*hidden_layer_sizes, n_outputs]):
        kernels = [draws[seed][i] for seed in seeds]
        # The first kernel holds the towers side by side; the others stack them.
        weights.append(np.concatenate(kernels, axis=1) if i == 0 else np.stack(kernels))
        if i == len(hidden_layer_sizes):
            vectors = [0.0]  # the output bias
        else:
            vectors = [1.0, 0.0, 0.0, 1.0] if batch_norm else [0.0]  # gamma, beta, mean, variance
        weights += [np.full((n_towers, 1, units), value, np.float32) for value in vectors]
    return weights


def _glorot_uniform(random_state, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return random_state.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def weight_layout(structure):
    """Per weight position: (kind, hidden layer); kinds kernel, bias, gamma,
    beta, mean, variance (the last two not trained), output_kernel, output_bias."""
    layout = []
    for i in range(structure.n_hidden):
        layout.append(("kernel", i))
        names = ("gamma", "beta", "mean", "variance") if structure.batch_norm else ("bias",)
        layout += [(name, i) for name in names]
    return layout + [("output_kernel", None), ("output_bias", None)]


def trainable_positions(structure):
    """Positions of the trained weights in the program's order (all but
    batch norm's moving statistics)."""
    layout = weight_layout(structure)
    return [p for p, (kind, _) in enumerate(layout) if kind not in ("mean", "variance")]


def fuses_update(n_features, units):
    """Whether the program of networks whose first kernel is ``n_features x
    units`` holds the fused (XLA) update of that kernel, which a group of
    them runs when its kernel is large (see
    :func:`~skreg._engine.updates.first_kernel_update`): text-sized inputs,
    not small tables. Decided per network, not per group, so that a search's
    towers and its refit (or a plain fit of the same network) share one
    traced program."""
    return n_features * units >= 2**14
