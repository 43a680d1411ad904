"""The run-time numbers of a group of towers, defined once: which there
are, which are one per tower and which the group shares, their types and
defaults. The planner fills them from a model, a search sets them per
candidate, the trainer hands them to the program, whose input signature
is made here.

Numbers are run-time inputs, not part of a program's structure, so that
fits and towers that differ only in them share one traced program.
"""

import numpy as np

from .._backend.tensorflow import tf
from .regularizers import REGULARIZERS

__all__ = ["GROUP_NUMBERS", "PER_TOWER_NUMBERS", "TowerNumbers"]


class _Number:
    """One number: its name, type and default, and what it is."""

    def __init__(self, name, default, doc, *, dtype=tf.float32):
        self.name, self.default, self.doc, self.dtype = name, default, doc, dtype


# One value per tower ([K]): the learning rate, each regularizer's number
# (its name, its off value as the default), the clipping's and the dropout
# masks' key.
PER_TOWER_NUMBERS = (
    _Number("learning_rate", 1e-3, "the optimizer's rate (the factor of a schedule's)"),
    *(_Number(r.name, r.off, r.doc) for r in REGULARIZERS),
    _Number("clip", 0.0, "the gradient clipping's norm or value (the structure's kind)"),
    _Number("key", 0, "the tower's stream of dropout masks", dtype=tf.int64),
)
# One value for the group: they change the batches all its towers share.
GROUP_NUMBERS = (
    _Number("input_dropout", 0.0, "the input's dropout rate"),
    _Number("input_noise", 0.0, "the input's Gaussian noise"),
)
_PER_TOWER = {number.name: number for number in PER_TOWER_NUMBERS}
_GROUP = {number.name: number for number in GROUP_NUMBERS}


class TowerNumbers:
    """The numbers of K towers: each of :data:`PER_TOWER_NUMBERS` as a list
    of K values, each of :data:`GROUP_NUMBERS` as one value, and
    ``optimizer``: the update rule's own named numbers (momentum, betas,
    epsilon), shared by the group.

    Parameters
    ----------
    n_towers : int
    optimizer : dict of str to float
        :attr:`~skreg._engine.rules.UpdateRule.number_names` with their values.
    **values
        Per-tower numbers as sequences of K values (or one value for all),
        group numbers as one value; the others take their defaults.
    """

    def __init__(self, n_towers, optimizer, **values):
        unknown = set(values) - set(_PER_TOWER) - set(_GROUP)
        if unknown:
            raise TypeError(f"unknown tower numbers {sorted(unknown)}")
        self.n_towers = int(n_towers)
        self.optimizer = {name: float(value) for name, value in optimizer.items()}
        for name, number in _PER_TOWER.items():
            value = values.get(name, number.default)
            value = list(np.broadcast_to(value, (self.n_towers,)).tolist())
            setattr(self, name, value)
        for name, number in _GROUP.items():
            setattr(self, name, float(values.get(name, number.default)))

    def per_tower(self):
        """{name: [K values]} of the per-tower numbers."""
        return {name: getattr(self, name) for name in _PER_TOWER}

    def group(self):
        """What the towers share (the group's numbers and the optimizer's):
        numbers that differ here keep towers apart."""
        return (tuple(getattr(self, name) for name in _GROUP),
                tuple(sorted(self.optimizer.items())))  # fmt: skip

    def replace(self, **values):
        """These numbers with some changed."""
        return TowerNumbers(self.n_towers, self.optimizer,
                            **{**self.per_tower(), **self._group_values(), **values})  # fmt: skip

    def select(self, towers):
        """The numbers of the towers ``towers`` (positions) alone."""
        return TowerNumbers(len(towers), self.optimizer, **self._group_values(), **{
            name: [values[t] for t in towers] for name, values in self.per_tower().items()})

    @classmethod
    def stacked(cls, numbers):
        """One group's numbers of the towers of ``numbers``, in their order."""
        if len({n.group() for n in numbers}) != 1:
            raise ValueError("towers with different optimizer or input numbers cannot train "
                             "as one group.")  # fmt: skip
        first = numbers[0]
        return cls(sum(n.n_towers for n in numbers), first.optimizer, **first._group_values(),
                   **{name: [v for n in numbers for v in getattr(n, name)]
                      for name in _PER_TOWER})  # fmt: skip

    def tensors(self):
        """The numbers as the program takes them (:meth:`signature`)."""
        tensors = {name: tf.constant(values, _PER_TOWER[name].dtype)
                   for name, values in self.per_tower().items()}  # fmt: skip
        tensors.update((name, tf.constant(value, tf.float32))
                       for name, value in self._group_values().items())  # fmt: skip
        tensors["optimizer"] = {name: tf.constant(value, tf.float32)
                                for name, value in self.optimizer.items()}  # fmt: skip
        return tensors

    @staticmethod
    def signature(optimizer_names):
        """The program's input signature of the numbers, for a rule's
        ``optimizer_names``."""
        specs = {number.name: tf.TensorSpec([None], number.dtype) for number in PER_TOWER_NUMBERS}
        specs.update((number.name, tf.TensorSpec([], number.dtype)) for number in GROUP_NUMBERS)
        specs["optimizer"] = {name: tf.TensorSpec([], tf.float32) for name in optimizer_names}
        return specs

    def _group_values(self):
        return {name: getattr(self, name) for name in _GROUP}

    def __repr__(self):
        return f"TowerNumbers({self.n_towers}, {self.optimizer}, {self.per_tower()})"
