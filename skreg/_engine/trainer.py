"""A group of towers in training: its state, and the calls of the program
that advance it (the caller's loop runs between them)."""

import functools

import numpy as np
import scipy.sparse as sp

from .partition import csr_tensors
from .._backend.tensorflow import program_graph_options, tf
from .batches import SparseHeldOut
from .cache import cached_program, readied_in_background, wait_until_ready
from .program import make_program
from .numbers import TowerNumbers
from .rules import rule_of
from .structure import initial_weights, tower_data, trainable_positions

__all__ = ["SECONDS_PER_CALL", "TowerEpochs", "TowerState", "TowerTrainer", "held_out_data",
           "label_tensor", "ready_program"]

# Seconds after which a call starts no more epochs: Python gets control back
# about this often (Ctrl-C, progress lines, scores), and the calls are long
# enough that their own cost (a few ms each) is small beside the training.
SECONDS_PER_CALL = 0.5


def label_tensor(y):
    """Labels or targets as the program takes them: float32 [rows, columns]."""
    y = np.asarray(y, dtype=np.float32)
    return tf.constant(y.reshape(len(y), -1))


class TowerState:
    """What a group of towers has learned: the state the program takes and
    returns, so that training goes on where a call stopped.

    Parameters
    ----------
    weights : list of tf.Tensor
        In the program's order (the layout of the module docstring).
    slots : list of tf.Tensor
        The optimizer's buffers: :func:`optimizer_slots` per trained weight
        (:func:`trainable_positions`), each shaped as its weight.
    epoch, iteration : int
        Epochs and steps trained. They continue the batch order, the
        dropout masks and Adam's bias correction where they stopped.
    """

    def __init__(self, weights, slots, *, epoch, iteration):
        self.weights = list(weights)
        self.slots = list(slots)
        self.epoch = epoch
        self.iteration = iteration

    @classmethod
    def start(cls, structure, weights, numbers):
        """Untrained towers: ``weights`` (from :func:`initial_weights`), the
        rule's first slots (``numbers``: the group's :class:`TowerNumbers`)."""
        weights = [tf.constant(w, tf.float32) for w in weights]
        rule = rule_of(structure.optimizer)
        slots = [slot for p in trainable_positions(structure)
                 for slot in rule.initial_slots(weights[p], numbers.optimizer)]  # fmt: skip
        return cls(weights, slots, epoch=0, iteration=0)

    @property
    def n_towers(self):
        return int(self.weights[-1].shape[0])

    # Pickled as numpy arrays (a search's state goes to joblib's workers).
    def __getstate__(self):
        return {"weights": [w.numpy() for w in self.weights],
                "slots": [s.numpy() for s in self.slots],
                "epoch": self.epoch, "iteration": self.iteration}  # fmt: skip

    def __setstate__(self, state):
        self.__init__([tf.constant(w) for w in state["weights"]],
                      [tf.constant(s) for s in state["slots"]],
                      epoch=state["epoch"], iteration=state["iteration"])  # fmt: skip

    @classmethod
    def stacked(cls, states):
        """One group's state of the towers of ``states`` (at one epoch and
        step), in their order: what :meth:`select` takes apart."""
        counters = {(state.epoch, state.iteration) for state in states}
        if len(counters) != 1:
            raise ValueError(f"towers at different epochs and steps {sorted(counters)} "
                             "cannot train as one group.")  # fmt: skip
        epoch, iteration = counters.pop()

        def join(tensors):
            # The first kernel holds the towers side by side; the others stack them.
            return tf.concat(tensors, axis=1 if tensors[0].shape.rank == 2 else 0)

        return cls([join(ws) for ws in zip(*(state.weights for state in states))],
                   [join(ss) for ss in zip(*(state.slots for state in states))],
                   epoch=epoch, iteration=iteration)  # fmt: skip

    def select(self, towers):
        """The state of the towers ``towers`` (positions in this group) alone,
        to be trained on as a smaller group."""
        towers = np.asarray(towers, np.int64)
        n_units = int(self.weights[0].shape[1]) // self.n_towers
        # The first kernel holds the towers side by side; the others stack them.
        columns = (towers[:, None] * n_units + np.arange(n_units)).ravel()

        def take(tensor):
            if tensor.shape.rank == 2:
                return tf.gather(tensor, columns, axis=1)
            return tf.gather(tensor, towers)

        return TowerState([take(w) for w in self.weights], [take(s) for s in self.slots],
                          epoch=self.epoch, iteration=self.iteration)  # fmt: skip


class TowerEpochs:
    """Epochs of a group of towers: the ``state`` after them; per epoch and
    tower [epochs, K] the training ``losses`` (penalties included),
    ``accuracies`` (classifiers; else 0) and ``penalties`` after the epoch;
    and ``outputs``: per evaluation block, its towers' outputs on its rows
    after each epoch [epochs, rows, towers, n_outputs]."""

    def __init__(self, state, losses, outputs, *, accuracies=None, penalties=None):
        self.state = state
        self.losses = losses
        self.outputs = outputs
        self.accuracies = accuracies
        self.penalties = penalties

    @classmethod
    def joined(cls, calls):
        """The epochs of several calls, one after the other, as one."""
        return cls(calls[-1].state, np.concatenate([c.losses for c in calls]),
                   [np.concatenate(block) for block in zip(*(c.outputs for c in calls))],
                   accuracies=np.concatenate([c.accuracies for c in calls]),
                   penalties=np.concatenate([c.penalties for c in calls]))  # fmt: skip


def held_out_data(X):
    """A matrix whose rows evaluation blocks score, as :class:`TowerTrainer`
    takes it: a CSR matrix's arrays, or the dense array (the first of
    :func:`tower_data`'s tensors)."""
    return csr_tensors(X)[:3] if sp.issparse(X) else (tf.constant(X, tf.float32),)


def _block_tensors(blocks, structure, held_out):
    """The evaluation blocks as the program takes them: their rows one after
    another, where each block's rows start and end, each block's first and
    end tower (pairs: two blocks may score the same towers on other rows), and
    the matrix ``held_out`` (:func:`held_out_data`) they index: dense, or
    those rows' non-zeros (:meth:`SparseHeldOut.arrays`)."""
    rows = np.concatenate([np.zeros(0, np.int64)] + [block_rows for block_rows, _, _ in blocks])
    row_splits = np.cumsum([0] + [len(block_rows) for block_rows, _, _ in blocks])
    tower_bounds = np.array([bound for _, first, end in blocks for bound in (first, end)],
                            np.int64)  # fmt: skip
    tensors = tuple(tf.constant(v, tf.int64) for v in (rows, row_splits, tower_bounds))
    if structure.sparse:
        return tensors + SparseHeldOut.arrays(*held_out[:3], tensors[0])
    return tensors + (held_out[0],)


class TowerTrainer:
    """A group of K towers in training: the program's inputs, made once, and
    the :class:`TowerState` that each :meth:`train` call advances. The
    caller's loop over calls is where it can act between epochs (score,
    report, stop, take some towers out).

    Parameters
    ----------
    structure : TowerStructure
    data : tuple of tensors
        From :func:`tower_data`.
    y : ndarray of shape (n_rows,) or (n_rows, n_columns)
        Encoded labels or targets.
    row_weight : ndarray of shape (K, n_rows)
        Each tower's weight of each row: 0 outside its training fold.
    member : ndarray of shape (K, n_rows)
        1 where a row is in the tower's training fold, else 0.
    blocks : list of (rows, first tower, end tower)
        The towers ``first:end`` are scored on ``rows`` (of ``held_out``)
        after each epoch.
    state : TowerState
        Where training starts (or goes on).
    numbers : TowerNumbers
    batch_size : int
    seeds : pair of int
        Seeds of the batch order and of the dropout masks.
    train_rows : array of int or None
        The rows batches are cut from, in a shuffled order of their own
        each epoch (None: all); the others are only scored.
    held_out : tuple of tensors or None
        The matrix the blocks' rows index (:func:`held_out_data`), when it
        is not ``data`` (a fit's validation rows): the batches' partition
        then passes over the training rows' non-zeros only.
    first_run : bool
        Whether this is the program's background first run
        (:func:`ready_program`), which waits for no other and is not counted
        in the cache's statistics.
    """

    def __init__(self, structure, data, y, row_weight, member, blocks, state, numbers, *,
                 batch_size, seeds, train_rows=None, held_out=None, first_run=False):  # fmt: skip
        self._program = None  # looked up at the first call (after a background first run)
        self._first_run = first_run
        self._structure = structure
        # The held-out matrix: the data's own first tensors (its CSR arrays).
        self._held_out = data[: 3 if structure.sparse else 1] if held_out is None else held_out
        self._inputs = (
            data,
            label_tensor(y),
            tf.constant(row_weight, tf.float32),
            tf.constant(member, tf.float32),
            _block_tensors(blocks, structure, self._held_out),
        )
        # Run-time numbers: a caller may change them between calls.
        self.numbers = numbers
        self._blocks = blocks
        self._train_rows = tf.constant(np.arange(len(y)) if train_rows is None else train_rows,
                                       tf.int64)  # fmt: skip
        self._settings = [batch_size, *seeds]
        self.state = state

    @property
    def n_towers(self):
        return self.state.n_towers

    def select(self, towers):
        """Keep only the towers ``towers`` (increasing positions in this
        group; evaluation blocks left without towers are dropped): they go
        on training from their own weights, optimizer slots
        and counters, with their own numbers and dropout streams, on the
        same batches, so that they learn what they would have learned
        beside the others; the others cost nothing more."""
        towers = np.asarray(towers, np.int64)
        if len(towers) == 0 or np.any(np.diff(towers) <= 0):
            raise ValueError(f"towers must be increasing positions; got {towers.tolist()}.")
        data, y, row_weight, member, _ = self._inputs
        # A kept tower's new position: how many kept towers come before it.
        # Blocks left without towers are dropped (no rows scored for nobody).
        blocks = [(block_rows, *(int(i) for i in np.searchsorted(towers, [first, end])))
                  for block_rows, first, end in self._blocks]  # fmt: skip
        self._blocks = [block for block in blocks if block[2] > block[1]]
        self._inputs = (data, y, tf.gather(row_weight, towers), tf.gather(member, towers),
                        _block_tensors(self._blocks, self._structure, self._held_out))  # fmt: skip
        self.numbers = self.numbers.select(towers)
        self.state = self.state.select(towers)
        return self

    def train(self, epochs, *, seconds=SECONDS_PER_CALL):
        """Train up to ``epochs`` more epochs in one call, which ends after
        the first epoch that ends past ``seconds`` (None: no limit); the
        :class:`TowerEpochs` of the epochs it trained (one at least).
        Callers loop until done."""
        if self._program is None:
            structure = self._structure
            if not self._first_run:
                wait_until_ready(structure.key)
            self._program = cached_program(structure.key,
                                           functools.partial(make_program, structure),
                                           counted=not self._first_run)  # fmt: skip
        with program_graph_options():
            weights, slots, counters, logs, outputs = self._program(
                *self._inputs, self.state.weights, self.state.slots,
                tf.constant([self.state.epoch, self.state.iteration], tf.int64),
                self.numbers.tensors(),
                self._train_rows,
                tf.constant([epochs, *self._settings, _milliseconds(seconds)], tf.int64),
            )  # fmt: skip
        epoch, iteration = (int(n) for n in counters.numpy())
        epochs = epoch - self.state.epoch
        self.state = TowerState(weights, slots, epoch=epoch, iteration=iteration)
        n_outputs = int(weights[-1].shape[-1])
        outputs = outputs.numpy()
        by_block, offset = [], 0
        for block_rows, first, end in self._blocks:
            size = len(block_rows) * (end - first) * n_outputs
            by_block.append(outputs[:, offset : offset + size].reshape(
                epochs, len(block_rows), end - first, n_outputs))  # fmt: skip
            offset += size
        return TowerEpochs(self.state, logs["loss"].numpy(), by_block,
                           accuracies=logs["accuracy"].numpy(),
                           penalties=logs["penalty"].numpy())  # fmt: skip


def _milliseconds(seconds):
    """A call's time in whole milliseconds; None: a year, for no limit."""
    return int(1000 * (365 * 24 * 3600 if seconds is None else seconds))


def ready_program(structure):
    """Have the program of ``structure`` traced and run once, in the
    background, while the caller prepares its data (see
    :func:`~skreg._engine.cache.readied_in_background`): a tower trained for
    an epoch on two rows and two features."""

    def first_run():
        X = np.ones((2, 2), np.float32)
        weights = initial_weights(2, [1] * structure.n_hidden, 1, seeds=[0],
                                  batch_norm=structure.batch_norm)  # fmt: skip
        rule = rule_of(structure.optimizer)
        numbers = TowerNumbers(1, {name: 0.5 for name in rule.number_names}, learning_rate=0.0)
        ones = np.ones((1, 2), np.float32)
        data = tower_data(sp.csr_matrix(X) if structure.sparse else X, 2,
                          binary=structure.binary)  # fmt: skip
        try:
            TowerTrainer(structure, data, np.zeros(2), ones, ones, [(np.arange(2), 0, 1)],
                         TowerState.start(structure, weights, numbers), numbers, batch_size=2,
                         seeds=(0, 0), first_run=True).train(1)  # fmt: skip
        except Exception:  # noqa: BLE001 - the caller's own first call reports it
            pass

    readied_in_background(structure.key, first_run)
