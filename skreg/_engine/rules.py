"""The optimizers the program runs, one class each, as scikit-learn's
``_stochastic_optimizers`` and Keras' optimizers have them: how the rule is
read from a Keras optimizer (its public config), its named numbers, the
slots it keeps per weight (and where Keras keeps them), and its update
formula with a learning rate per tower.

A rule's :attr:`~UpdateRule.kind` (its name and the options that change the
traced graph, such as momentum on or off) is part of a program's structure;
its numbers are run-time inputs (:class:`~skreg._engine.numbers.TowerNumbers`'
``optimizer``), so that fits and towers that differ only in them share a
program. Adding an optimizer is one class here and its test.
"""

import numpy as np

from .._backend.optimizers import FusedAdam, FusedRMSprop
from .._backend.tensorflow import keras, optimizer_slot, set_optimizer_scalar, tf

__all__ = ["AdagradRule", "AdamRule", "AdamaxRule", "NadamRule", "RMSpropRule", "SGDRule",
           "UpdateRule", "read_rule", "rule_of"]


class UpdateRule:
    """An optimizer's update of one weight, for towers side by side."""

    #: The rule's name, the first item of its :attr:`kind`.
    name = None
    #: The Keras optimizer classes it is read from.
    keras_classes = ()
    #: Its numbers, in the optimizer's config names.
    number_names = ()

    @property
    def kind(self):
        """What the traced graph depends on: the name and the options."""
        return (self.name,)

    @property
    def n_slots(self):
        """Buffers kept per trained weight, each shaped as the weight."""
        return 0

    @classmethod
    def read(cls, optimizer, config):
        """(rule, {number name: value}) when ``optimizer`` (whose
        ``get_config()`` is ``config``) is this rule's, else None (any
        option the program does not apply already ruled out)."""
        if type(optimizer) not in cls.keras_classes:
            return None
        return cls._from_config(config), {name: float(config[name]) for name in cls.number_names}

    @classmethod
    def _from_config(cls, config):
        return cls()

    def keras_slots(self, optimizer, variable):
        """Keras' slot variables of ``variable``, in the order of :meth:`apply`'s slots."""
        return []

    def initial_slots(self, weight, numbers):
        """The slots of an untrained weight (``numbers``: the rule's)."""
        return [tf.zeros_like(weight) for _ in range(self.n_slots)]

    def step_table(self, numbers, iterations):
        """What :meth:`apply` reads that depends on the step: {name: [n]
        values}, for steps after ``iterations`` ([n] steps trained before
        each) with the rule's ``numbers`` (tensors). The program makes the
        table once an epoch and takes each step's row (one gather where the
        formulas were a dozen ops a step)."""
        return {}

    def apply(self, weight, slots, gradient, rate, step):
        """(weight, slots) after one step; ``rate`` the towers' learning
        rates shaped to the weight, ``step`` the rule's numbers and its row
        of :meth:`step_table`."""
        raise NotImplementedError

    def write_keras(self, optimizer, iteration):
        """Put the rule's state other than slots (a function of the steps
        trained) into the Keras optimizer."""


class SGDRule(UpdateRule):
    """``keras.optimizers.SGD``, with momentum and Nesterov's variant."""

    name = "sgd"
    keras_classes = (keras.optimizers.SGD,)
    number_names = ("momentum",)

    def __init__(self, momentum=False, nesterov=False):
        self.momentum, self.nesterov = bool(momentum), bool(momentum and nesterov)

    @property
    def kind(self):
        return (self.name, self.momentum, self.nesterov)

    @property
    def n_slots(self):
        return 1 if self.momentum else 0

    @classmethod
    def _from_config(cls, config):
        return cls(config["momentum"] > 0, config["nesterov"])

    def keras_slots(self, optimizer, variable):
        return [optimizer_slot(optimizer, "momentums", variable)] if self.momentum else []

    def apply(self, weight, slots, gradient, rate, step):
        if not self.momentum:
            return weight - rate * gradient, []
        momentum = step["momentum"]
        velocity = momentum * slots[0] - rate * gradient
        change = momentum * velocity - rate * gradient if self.nesterov else velocity
        return weight + change, [velocity]


class RMSpropRule(UpdateRule):
    """``keras.optimizers.RMSprop`` (not centered), with or without momentum."""

    name = "rmsprop"
    keras_classes = (keras.optimizers.RMSprop, FusedRMSprop)
    number_names = ("rho", "momentum", "epsilon")

    def __init__(self, momentum=False):
        self.momentum = bool(momentum)

    @property
    def kind(self):
        return (self.name, self.momentum)

    @property
    def n_slots(self):
        return 2 if self.momentum else 1

    @classmethod
    def _from_config(cls, config):
        return cls(config["momentum"] > 0)

    def keras_slots(self, optimizer, variable):
        names = ("_velocities", "_momentums") if self.momentum else ("_velocities",)
        return [optimizer_slot(optimizer, name, variable) for name in names]

    def apply(self, weight, slots, gradient, rate, step):
        rho = step["rho"]
        velocity = rho * slots[0] + (1.0 - rho) * tf.square(gradient)
        increment = rate * gradient / tf.sqrt(velocity + step["epsilon"])
        if not self.momentum:
            return weight - increment, [velocity]
        change = step["momentum"] * slots[1] + increment
        return weight - change, [velocity, change]


class AdamRule(UpdateRule):
    """``keras.optimizers.Adam`` and ``AdamW`` (Adam with decoupled weight
    decay, which the program applies to every rule), not AMSGrad."""

    name = "adam"
    keras_classes = (keras.optimizers.Adam, FusedAdam, keras.optimizers.AdamW)
    number_names = ("beta_1", "beta_2", "epsilon")

    @property
    def n_slots(self):
        return 2

    def keras_slots(self, optimizer, variable):
        return [optimizer_slot(optimizer, name, variable) for name in ("_momentums", "_velocities")]

    def step_table(self, numbers, iterations):
        t = tf.cast(iterations + 1, tf.float32)
        # The bias corrections' factor of the learning rate.
        return {"correction": tf.sqrt(1.0 - tf.pow(numbers["beta_2"], t))
                / (1.0 - tf.pow(numbers["beta_1"], t))}  # fmt: skip

    def apply(self, weight, slots, gradient, rate, step):
        beta_1, beta_2 = step["beta_1"], step["beta_2"]
        first = beta_1 * slots[0] + (1.0 - beta_1) * gradient
        second = beta_2 * slots[1] + (1.0 - beta_2) * tf.square(gradient)
        alpha = rate * step["correction"]
        return weight - alpha * first / (tf.sqrt(second) + step["epsilon"]), [first, second]


# Nadam's momentum schedule: mu_t = beta_1 * (1 - 0.5 * 0.96 ** t). From
# this step on 0.5 * 0.96 ** t is below float32's resolution near 1, so
# every later factor is beta_1 itself.
_NADAM_SCHEDULE_STEPS = 512


def _nadam_products(beta_1, steps):
    """The product of mu_1 to mu_steps (Keras keeps it as ``_u_product``)."""
    scheduled = tf.minimum(steps, _NADAM_SCHEDULE_STEPS)
    t = tf.cast(tf.range(1, scheduled + 1), tf.float32)
    product = tf.reduce_prod(beta_1 * (1.0 - 0.5 * tf.pow(0.96, t)))
    return product * tf.pow(beta_1, tf.cast(steps - scheduled, tf.float32))


class NadamRule(AdamRule):
    """``keras.optimizers.Nadam``: Adam's slots and numbers, with Nesterov momentum."""

    name = "nadam"
    keras_classes = (keras.optimizers.Nadam,)

    def step_table(self, numbers, iterations):
        beta_1, t = numbers["beta_1"], tf.cast(iterations + 1, tf.float32)
        mu, mu_next = (beta_1 * (1.0 - 0.5 * tf.pow(0.96, t + i)) for i in (0.0, 1.0))
        # Keras' running product, from the first step's on.
        product = _nadam_products(beta_1, iterations[0] + 1) * tf.math.cumprod(
            tf.concat([tf.ones([1]), mu[1:]], axis=0))
        # The step's factors of the momentum, the gradient and the second
        # moment (scalars: once a step, not once a weight).
        return {"first_factor": mu_next / (1.0 - product * mu_next),
                "gradient_factor": (1.0 - mu) / (1.0 - product),
                "second_factor": 1.0 / (1.0 - tf.pow(numbers["beta_2"], t))}  # fmt: skip

    def apply(self, weight, slots, gradient, rate, step):
        beta_1, beta_2 = step["beta_1"], step["beta_2"]
        first = slots[0] + (gradient - slots[0]) * (1.0 - beta_1)
        second = slots[1] + (tf.square(gradient) - slots[1]) * (1.0 - beta_2)
        first_hat = step["first_factor"] * first + step["gradient_factor"] * gradient
        second_hat = second * step["second_factor"]
        change = first_hat * rate / (tf.sqrt(second_hat) + step["epsilon"])
        return weight - change, [first, second]

    def write_keras(self, optimizer, iteration):
        beta_1 = tf.constant(optimizer.get_config()["beta_1"], tf.float32)
        set_optimizer_scalar(optimizer, "_u_product",
                             _nadam_products(beta_1, tf.constant(iteration, tf.int64)))


class AdagradRule(UpdateRule):
    """``keras.optimizers.Adagrad``."""

    name = "adagrad"
    keras_classes = (keras.optimizers.Adagrad,)
    number_names = ("initial_accumulator_value", "epsilon")

    @property
    def n_slots(self):
        return 1

    def keras_slots(self, optimizer, variable):
        return [optimizer_slot(optimizer, "_accumulators", variable)]

    def initial_slots(self, weight, numbers):
        return [tf.fill(tf.shape(weight), np.float32(numbers["initial_accumulator_value"]))]

    def apply(self, weight, slots, gradient, rate, step):
        accumulator = slots[0] + tf.square(gradient)
        return weight - rate * gradient / tf.sqrt(accumulator + step["epsilon"]), [accumulator]


class AdamaxRule(UpdateRule):
    """``keras.optimizers.Adamax``: Adam with the infinity norm."""

    name = "adamax"
    keras_classes = (keras.optimizers.Adamax,)
    number_names = ("beta_1", "beta_2", "epsilon")

    @property
    def n_slots(self):
        return 2

    def keras_slots(self, optimizer, variable):
        return [optimizer_slot(optimizer, name, variable) for name in ("_m", "_u")]

    def step_table(self, numbers, iterations):
        t = tf.cast(iterations + 1, tf.float32)
        return {"beta_1_power": tf.pow(numbers["beta_1"], t)}

    def apply(self, weight, slots, gradient, rate, step):
        first = slots[0] + (gradient - slots[0]) * (1.0 - step["beta_1"])
        norm = tf.maximum(step["beta_2"] * slots[1], tf.abs(gradient))
        change = rate * first / ((1.0 - step["beta_1_power"]) * (norm + step["epsilon"]))
        return weight - change, [first, norm]


_RULES = {rule.name: rule for rule in (SGDRule, RMSpropRule, AdamRule, NadamRule, AdagradRule,
                                       AdamaxRule)}  # fmt: skip


def rule_of(kind):
    """The :class:`UpdateRule` of a structure's optimizer ``kind``."""
    return _RULES[kind[0]](*kind[1:])


def read_rule(optimizer, config=None):
    """(rule, {number name: value}) of a Keras optimizer the program runs
    (``config``: its ``get_config()``, if already read), or None."""
    config = optimizer.get_config() if config is None else config
    for rule in _RULES.values():
        read = rule.read(optimizer, config)
        if read is not None:
            return read
    return None
