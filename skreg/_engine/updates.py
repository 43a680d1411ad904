"""The towers' updates, written once: the penalties' gradients added to
the optimizer's rule (:mod:`~skreg._engine.rules`, a learning rate per
tower), and each tower's own random draws for dropout."""

import functools
import threading

from .._tensorflow import tf
from .rules import rule_of

__all__ = ["FUSED_UPDATE_MIN_SIZE", "first_kernel_update", "fused_penalised_update",
           "penalised_update", "per_tower", "uniform_per_tower"]


def per_tower(vector, kind, layer, weight):
    """A [K] vector shaped to multiply a weight of the given kind elementwise."""
    if kind == "kernel" and layer == 0:  # [n_features, K * units]
        units = tf.shape(weight)[1] // tf.shape(vector)[0]
        return tf.repeat(vector, units)[None, :]
    return vector[:, None, None]


def penalised_update(kind, weight, slots, gradient, rate, l1, l2, hyper, iteration, *,
                     skip_zero_penalties=False):  # fmt: skip
    """The update of one weight with its penalties' gradients added
    (``l1 * sign(w) + 2 * l2 * w``; l1, l2 None for unpenalised weights);
    (weight, slots, per-tower penalty sums before the update). ``gradient``
    may be a list of its parts along the first axis. ``skip_zero_penalties``:
    leave the penalties' passes over the weight out at run time when every
    tower's l1 and l2 are 0 (the same numbers: the terms are then 0)."""
    if isinstance(gradient, (list, tuple)):
        gradient = tf.concat(list(gradient), axis=0)
    # [K * units] for the first kernel, [K] for the others.
    axis = 0 if weight.shape.rank == 2 else [1, 2]

    def penalised():
        sums = None
        penalised_gradient = gradient
        if l1 is not None:
            penalised_gradient += l1 * tf.sign(weight)
            sums = l1 * tf.abs(weight)
        if l2 is not None:
            penalised_gradient += 2.0 * l2 * weight
            sums = l2 * tf.square(weight) if sums is None else sums + l2 * tf.square(weight)
        return penalised_gradient, tf.reduce_sum(sums, axis=axis)

    factors = [factor for factor in (l1, l2) if factor is not None]
    if not factors:
        sums = None
    elif skip_zero_penalties:
        any_penalty = tf.reduce_any([tf.reduce_any(factor != 0.0) for factor in factors])
        unpenalised_sums = tf.zeros([tf.shape(weight)[1 if weight.shape.rank == 2 else 0]])
        gradient, sums = tf.cond(any_penalty, penalised, lambda: (gradient, unpenalised_sums))
    else:
        gradient, sums = penalised()
    weight, slots = rule_of(kind).apply(weight, slots, gradient, rate, hyper, iteration)
    return weight, slots, sums


# The same, as one XLA-compiled loop over the weight: for a large first
# kernel (IMDB, 15 towers: 10,000 x 240) the ~12 elementwise passes of
# plain ops cost 20 ms a step, the fused loop 8-10 ms. It is compiled once
# per kernel shape in the process (0.3-0.7 s), so smaller kernels (one
# network's, IMDB's 10,000 x 16 included) use plain ops. Its Python has no
# tensor-dependent control flow, so AutoGraph is off: converting it cost
# 0.3-0.4 s of every process's first trace of a sparse program (cProfile:
# half of the trace), for the same graph.
fused_penalised_update = tf.function(penalised_update, jit_compile=True, autograph=False)

# First kernels from this size on are updated by the fused loop.
FUSED_UPDATE_MIN_SIZE = 2**18

# The fused update's runs take turns across the process's programs: XLA:CPU
# (TensorFlow 2.21) builds a compiled function's YNNPACK parts at the first
# run of each of its copies, and two threads doing that at once for one
# compiled function corrupt its memory (gdb on a crashed CV search:
# ``EmitYnnSubgraph`` under ``YnnFusionThunk::Execute``). A CV search's two
# groups in flight start their first steps together; about 1 process in 30
# segfaulted. Created at the first trace, not at import, so that importing
# skreg leaves TensorFlow's runtime uninitialised (its threading settings
# can still be changed).
_turns = []
_turns_lock = threading.Lock()


def _fused_update_turns():
    with _turns_lock:
        if not _turns:
            _turns.append(tf.CriticalSection(name="skreg_fused_update"))
        return _turns[0]


def first_kernel_update(may_fuse, kind, weight, slots, gradient, rate, l1, l2, hyper,
                        iteration):  # fmt: skip
    """:func:`penalised_update` of the first kernel, by the fused loop when
    ``may_fuse`` (the structure's) and the kernel, whose width depends on the
    group's size, is large: a run-time choice, so that a search's large
    group and its one-network refit share a program and only large kernels
    are compiled."""
    arguments = (kind, weight, slots, gradient, rate, l1, l2, hyper, iteration)
    # The plain update skips the penalties' passes over the first kernel
    # when they are all 0, as a lone network's mostly are (its program has
    # them, see plan_model): 11 of the step's ~20 elementwise passes over it.
    plain_update = functools.partial(penalised_update, skip_zero_penalties=True)
    if not may_fuse:
        return plain_update(*arguments)
    with_sums = l1 is not None or l2 is not None

    def by(update):
        weight, slots, sums = update(*arguments)
        return (weight, slots, sums) if with_sums else (weight, slots)

    def fused():
        return _fused_update_turns().execute(lambda: by(fused_penalised_update))

    large = tf.size(weight, out_type=tf.int64) >= FUSED_UPDATE_MIN_SIZE
    result = tf.cond(large, fused, lambda: by(plain_update))
    return result if with_sums else (*result, None)


def _mix(x):
    """A 32-bit integer hash (two multiply-xorshift rounds) of uint32 values;
    unsigned products wrap around, as the hash wants."""
    sixteen, multiplier = tf.constant(16, tf.uint32), tf.constant(0x45D9F3B, tf.uint32)
    for _ in range(2):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, sixteen)) * multiplier
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, sixteen))


def _unit_interval(bits):
    # The top 24 bits: exact in float32.
    return tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32) * (
        1.0 / 2**24
    )


def _seed_hash(seed):
    seed = tf.cast(seed, tf.uint32)
    return _mix(seed[0] * tf.constant(0x3C6EF35F, tf.uint32) + seed[1])


def uniform_per_tower(shape, seed, keys):
    """[K, rows, units] uniform draws in [0, 1), each tower's from its own
    ``keys[k]``: a tower's dropout masks do not depend on the towers that
    train beside it (a group's size, a memory budget, the survivors of a
    pruning). A counter-based hash of (seed, key, row, unit): one pass of
    elementwise ops for all towers, where a random op per tower would cost
    K ops a layer and step (measured 1.4x the time of a breast_cancer search
    with dropout)."""
    keys = tf.cast(keys, tf.uint32)
    towers = _mix(keys * tf.constant(0x27D4EB2F, tf.uint32) + _seed_hash(seed))
    cells = tf.cast(tf.reshape(tf.range(shape[0] * shape[1]), shape), tf.uint32)
    return _unit_interval(_mix(tf.bitwise.bitwise_xor(towers[:, None, None], cells[None])))
