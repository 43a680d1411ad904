"""Many networks of one shape trained side by side in one TensorFlow program.

A cross-validated search over penalties trains candidates x folds networks
that differ only in numbers. On small networks a training step costs
TensorFlow's per-op overhead more than arithmetic, so K such networks
("towers") stacked along a leading axis cost little more a step than one.
The towers see the same batches, cut from the rows the caller gives (a
fold's training rows) in a shuffled order of their own each epoch, and each
has its own row weights, penalties, dropout rate and learning rate. After
each epoch the program computes each tower's outputs on its held-out rows,
which the caller scores.

Layout of the weights of K towers (the ``build_mlp`` network, stacked):

- first hidden kernel: ``[n_features, K * units]``, the towers' kernels side
  by side, so that sparse input is multiplied once for all of them;
- other kernels: ``[K, in, out]`` (batched matmuls); biases and batch-norm
  vectors: ``[K, 1, units]``.

Everything is a loop variable of the program (no Keras model, no resource
variables). A call trains some more epochs from a :class:`TowerState`
(weights, optimizer slots, epochs and steps trained) and returns the state
after them, so training goes on across calls exactly as in one call, and a
subset of the towers can be taken out and trained on (what successive
halving needs). :class:`TowerTrainer` makes the calls; its caller's loop
over them is where Python runs between epochs.

Modules: ``structure`` (the cache key, the weights' layout, starting
weights, memory), ``numbers`` (the run-time numbers, defined once),
``partition`` and ``batches`` (mini-batches cut in TensorFlow; a batch's
first-layer product and kernel gradient), ``rules`` (the optimizers, one
class each), ``regularizers`` (one class each: Keras' form, how a model
holds it, its number and the towers' form at one of the program's stages;
the rest loops over them), ``shapes`` (per-tower values shaped to the
weights), ``updates`` (a weight's update in Keras' order, dropout draws),
``losses``, ``program`` (the traced epochs), ``trainer`` (state and
calls), ``model`` (a Keras model as the program trains it), ``fit`` (fits
on the program), ``cache`` (traced programs kept).
"""

from .structure import (
    PreparedData,
    TowerStructure,
    fuses_update,
    initial_weights,
    is_binary,
    optimizer_slots,
    tower_bytes,
    tower_data,
    trainable_positions,
)
from .trainer import TowerEpochs, TowerState, TowerTrainer

__all__ = ["PreparedData", "TowerEpochs", "TowerState", "TowerStructure", "TowerTrainer",
           "fuses_update", "initial_weights", "is_binary", "optimizer_slots", "tower_bytes",
           "tower_data", "trainable_positions"]
