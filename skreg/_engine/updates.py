"""The towers' updates, written once: the regularizers
(:mod:`~skreg._engine.regularizers`) around the optimizer's rule
(:mod:`~skreg._engine.rules`), each with its own number per tower, and
each tower's own random draws for dropout."""

import functools
import threading

from .._backend.tensorflow import tf
from .regularizers import of_stage, regularizer_named
from .rules import rule_of
from .shapes import per_tower

__all__ = ["FUSED_UPDATE_MIN_SIZE", "WeightFactors", "clip_factor", "first_kernel_update",
           "fused_weight_update", "penalised_gradient", "uniform_per_tower", "weight_update"]


class WeightFactors:
    """The per-tower factors of one weight's update (tensors): ``rate``
    (the learning rate now, shaped to the weight), ``regularizers``: {name:
    :meth:`~skreg._engine.regularizers.Regularizer.weight_factor`} of those
    that act on it; ``clip`` (:func:`clip_factor`, or None) and
    ``gradient_scale`` ([K] global-norm clipping factors, shaped; or None)."""

    def __init__(self, rate, regularizers=None, *, clip=None, gradient_scale=None):
        self.rate, self.regularizers = rate, dict(regularizers or {})
        self.clip, self.gradient_scale = clip, gradient_scale

    def as_dict(self):
        return dict(vars(self))

    def replace(self, **changes):
        """These factors with some changed."""
        return WeightFactors(**{**self.as_dict(), **changes})

    def scaled(self, scale):
        """These factors at ``scale`` times the rate (a schedule's step)."""
        return self.replace(rate=self.rate * scale, regularizers={
            name: factor * scale if regularizer_named(name).follows_rate else factor
            for name, factor in self.regularizers.items()})  # fmt: skip


def penalised_gradient(weight, gradient, factors):
    """The gradient with the penalties' added (``factors``: {name: factor}
    of the weight's regularizers), and the per-element penalty terms (None
    without penalties)."""
    terms = None
    for penalty in of_stage("penalty", factors):
        factor = factors[penalty.name]
        gradient += penalty.gradient(weight, factor)
        term = penalty.terms(weight, factor)
        terms = term if terms is None else terms + term
    return gradient, terms


def clip_factor(clipping, clip, weight):
    """The towers' clipping values ``clip`` [K] shaped as :func:`clipped`
    takes them for ``weight`` (once a call, not every step)."""
    if clipping == "clipvalue":
        return per_tower(clip, weight)
    return clip[:, None] if weight.shape.rank == 2 else clip[:, None, None]


def clipped(gradient, clipping, clip):
    """Keras' per-weight clipping (``clipnorm``: each tower's part of the
    gradient scaled to a norm of at most ``clip``; ``clipvalue``:
    elementwise); ``clip``: :func:`clip_factor`. A structure clips only
    where its optimizer does, so every tower's ``clip`` is positive."""
    if clipping == "clipvalue":
        return tf.clip_by_value(gradient, -clip, clip)
    # Keras' clip / max(norm, clip) as min(clip / norm, 1) by rsqrt: fewer
    # ops a step (a zero gradient: rsqrt(0) is inf, the factor 1).
    if gradient.shape.rank == 2:  # [n_features, K * units]: each tower's columns
        by_tower = tf.reshape(tf.reduce_sum(tf.square(gradient), axis=0), [tf.shape(clip)[0], -1])
        squares = tf.reduce_sum(by_tower, axis=1, keepdims=True)
        scale = tf.minimum(clip * tf.math.rsqrt(squares), 1.0)
        return gradient * tf.reshape(tf.broadcast_to(scale, tf.shape(by_tower)), [1, -1])
    squares = tf.reduce_sum(tf.square(gradient), axis=[1, 2], keepdims=True)
    return gradient * tf.minimum(clip * tf.math.rsqrt(squares), 1.0)


def weight_update(kind, weight, slots, gradient, factors, step, clipping=None,
                  skip_zero_penalties=False):  # fmt: skip
    """The update of one weight, in Keras' order: the penalties' gradients
    added (``l1 * sign(w) + 2 * l2 * w``), the gradient clipped, the decays,
    the rule's step (:mod:`~skreg._engine.rules`), the constraints; (weight,
    slots, per-tower penalty sums before the update, or None). ``factors``:
    :meth:`WeightFactors.as_dict`; ``step``: the rule's numbers and its
    step's row of :meth:`~skreg._engine.rules.UpdateRule.step_table`;
    ``clipping``: the structure's. ``gradient`` may be a list of its parts
    along the first axis. ``skip_zero_penalties``: leave the penalties'
    passes over the weight out at run time when every tower's penalties are
    0 (the terms are then 0)."""
    if isinstance(gradient, (list, tuple)):
        gradient = tf.concat(list(gradient), axis=0)
    regularizers = factors["regularizers"]
    # [K * units] for the first kernel, [K] for the others.
    axis = 0 if weight.shape.rank == 2 else [1, 2]

    def penalised():
        penalised_gradient_, terms = penalised_gradient(weight, gradient, regularizers)
        return penalised_gradient_, tf.reduce_sum(terms, axis=axis)

    penalties = [regularizers[p.name] for p in of_stage("penalty", regularizers)]
    if not penalties:
        sums = None
    elif skip_zero_penalties:
        any_penalty = tf.reduce_any([tf.reduce_any(factor != 0.0) for factor in penalties])
        unpenalised_sums = tf.zeros([tf.shape(weight)[1 if weight.shape.rank == 2 else 0]])
        gradient, sums = tf.cond(any_penalty, penalised, lambda: (gradient, unpenalised_sums))
    else:
        gradient, sums = penalised()
    if factors["gradient_scale"] is not None:
        gradient *= factors["gradient_scale"]
    elif clipping is not None:
        gradient = clipped(gradient, clipping, factors["clip"])
    for decay in of_stage("decay", regularizers):
        weight = decay.decayed(weight, regularizers[decay.name])
    weight, slots = rule_of(kind).apply(weight, slots, gradient, factors["rate"], step)
    for constraint in of_stage("constraint", regularizers):
        weight = constraint.constrained(weight, regularizers[constraint.name],
                                        axis=0 if weight.shape.rank == 2 else 1)  # fmt: skip
    return weight, slots, sums


# The same, as one XLA-compiled loop over the weight: for a large first
# kernel (IMDB, 15 towers: 10,000 x 240) the ~12 elementwise passes of
# plain ops cost 20 ms a step, the fused loop 8-10 ms. It is compiled once
# per kernel shape in the process (0.3-0.7 s), so smaller kernels (one
# network's, IMDB's 10,000 x 16 included) use plain ops. Its Python has no
# tensor-dependent control flow, so AutoGraph is off: converting it cost
# 0.3-0.4 s of every process's first trace of a sparse program (cProfile:
# half of the trace), for the same graph.
fused_weight_update = tf.function(weight_update, jit_compile=True, autograph=False)

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


def first_kernel_update(may_fuse, kind, weight, slots, gradient, factors, step, clipping):
    """:func:`weight_update` of the first kernel, by the fused loop when
    ``may_fuse`` (the structure's) and the kernel, whose width depends on the
    group's size, is large: a run-time choice, so that a search's large
    group and its one-network refit share a program and only large kernels
    are compiled."""
    arguments = (kind, weight, slots, gradient, factors, step, clipping)
    # The plain update skips the penalties' passes over the first kernel
    # when they are all 0, as a lone network's mostly are (its program has
    # them, see plan_model): 11 of the step's ~20 elementwise passes over it.
    plain_update = functools.partial(weight_update, skip_zero_penalties=True)
    if not may_fuse:
        return plain_update(*arguments)
    with_sums = bool(of_stage("penalty", factors["regularizers"]))

    def by(update):
        weight, slots, sums = update(*arguments)
        return (weight, slots, sums) if with_sums else (weight, slots)

    def fused():
        return _fused_update_turns().execute(lambda: by(fused_weight_update))

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
