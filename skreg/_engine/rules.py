"""The optimizers the program runs, one class each, as scikit-learn's
``_stochastic_optimizers`` and Keras' optimizers have them: how the rule is
read from a Keras optimizer, the slots it keeps per weight (and where Keras
keeps them), and its update formula with a learning rate per tower.

A rule's :attr:`~UpdateRule.kind` (its name and the options that change the
traced graph, such as momentum on or off) is part of a program's structure;
its numbers (learning rate, then three of its own) are run-time inputs, so
that fits and towers that differ only in them share a program.
"""

from .._optimizers import FusedAdam, FusedRMSprop
from .._tensorflow import keras, tf

__all__ = ["AdamRule", "RMSpropRule", "SGDRule", "UpdateRule", "read_rule", "rule_of"]


def _keras_slot(optimizer, name, variable):
    """Keras' slot variable ``name`` (``_velocities``, ``_momentums``) of
    ``variable``: private attributes of Keras 3.5 to 3.15, read here only
    (a release that moves them makes the planner fall back to Keras' fit)."""
    return getattr(optimizer, name)[optimizer._get_variable_index(variable)]


class UpdateRule:
    """An optimizer's update of one weight, for towers side by side."""

    #: The rule's name, the first item of its :attr:`kind`.
    name = None

    @property
    def kind(self):
        """What the traced graph depends on: the name and the options."""
        return (self.name,)

    @property
    def n_slots(self):
        """Buffers kept per trained weight, each shaped as the weight."""
        return 0

    @classmethod
    def read(cls, optimizer):
        """(rule, [learning rate and three numbers]) when ``optimizer`` is
        this rule's (any option the program does not apply already ruled
        out), else None."""
        raise NotImplementedError

    def keras_slots(self, optimizer, variable):
        """Keras' slot variables of ``variable``, in the order of :meth:`apply`'s slots."""
        return []

    def apply(self, weight, slots, gradient, rate, hyper, iteration):
        """(weight, slots) after one step; ``rate`` the towers' learning
        rates shaped to the weight, ``hyper`` the rule's three numbers,
        ``iteration`` the steps trained before this one."""
        raise NotImplementedError


class SGDRule(UpdateRule):
    """``keras.optimizers.SGD``, with momentum and Nesterov's variant."""

    name = "sgd"

    def __init__(self, momentum=False, nesterov=False):
        self.momentum, self.nesterov = bool(momentum), bool(momentum and nesterov)

    @property
    def kind(self):
        return (self.name, self.momentum, self.nesterov)

    @property
    def n_slots(self):
        return 1 if self.momentum else 0

    @classmethod
    def read(cls, optimizer):
        if type(optimizer) is not keras.optimizers.SGD:
            return None
        momentum = optimizer.momentum > 0
        rule = cls(momentum, momentum and optimizer.nesterov)
        return rule, [float(optimizer.learning_rate.numpy()), optimizer.momentum, 0.0, 0.0]

    def keras_slots(self, optimizer, variable):
        # SGD's buffers are public; their index is not.
        return [_keras_slot(optimizer, "momentums", variable)] if self.momentum else []

    def apply(self, weight, slots, gradient, rate, hyper, iteration):
        if not self.momentum:
            return weight - rate * gradient, []
        velocity = hyper[0] * slots[0] - rate * gradient
        step = hyper[0] * velocity - rate * gradient if self.nesterov else velocity
        return weight + step, [velocity]


class RMSpropRule(UpdateRule):
    """``keras.optimizers.RMSprop`` (not centered), with or without momentum."""

    name = "rmsprop"

    def __init__(self, momentum=False):
        self.momentum = bool(momentum)

    @property
    def kind(self):
        return (self.name, self.momentum)

    @property
    def n_slots(self):
        return 2 if self.momentum else 1

    @classmethod
    def read(cls, optimizer):
        if type(optimizer) is not FusedRMSprop:
            return None
        return cls(optimizer.momentum > 0), [float(optimizer.learning_rate.numpy()),
                                             optimizer.rho, optimizer.momentum,
                                             optimizer.epsilon]  # fmt: skip

    def keras_slots(self, optimizer, variable):
        names = ("_velocities", "_momentums") if self.momentum else ("_velocities",)
        return [_keras_slot(optimizer, name, variable) for name in names]

    def apply(self, weight, slots, gradient, rate, hyper, iteration):
        rho, momentum, epsilon = hyper[0], hyper[1], hyper[2]
        velocity = rho * slots[0] + (1.0 - rho) * tf.square(gradient)
        increment = rate * gradient / tf.sqrt(velocity + epsilon)
        if not self.momentum:
            return weight - increment, [velocity]
        step = momentum * slots[1] + increment
        return weight - step, [velocity, step]


class AdamRule(UpdateRule):
    """``keras.optimizers.Adam`` (not AMSGrad)."""

    name = "adam"

    @property
    def n_slots(self):
        return 2

    @classmethod
    def read(cls, optimizer):
        if type(optimizer) is not FusedAdam:
            return None
        return cls(), [float(optimizer.learning_rate.numpy()), optimizer.beta_1,
                       optimizer.beta_2, optimizer.epsilon]  # fmt: skip

    def keras_slots(self, optimizer, variable):
        return [_keras_slot(optimizer, name, variable) for name in ("_momentums", "_velocities")]

    def apply(self, weight, slots, gradient, rate, hyper, iteration):
        beta_1, beta_2, epsilon = hyper[0], hyper[1], hyper[2]
        t = tf.cast(iteration + 1, tf.float32)
        first = beta_1 * slots[0] + (1.0 - beta_1) * gradient
        second = beta_2 * slots[1] + (1.0 - beta_2) * tf.square(gradient)
        alpha = rate * tf.sqrt(1.0 - tf.pow(beta_2, t)) / (1.0 - tf.pow(beta_1, t))
        return weight - alpha * first / (tf.sqrt(second) + epsilon), [first, second]


_RULES = {rule.name: rule for rule in (SGDRule, RMSpropRule, AdamRule)}


def rule_of(kind):
    """The :class:`UpdateRule` of a structure's optimizer ``kind``."""
    return _RULES[kind[0]](*kind[1:])


def read_rule(optimizer):
    """(rule, [learning rate and three numbers]) of a Keras optimizer the
    program runs, or None."""
    for rule in _RULES.values():
        read = rule.read(optimizer)
        if read is not None:
            return read
    return None
