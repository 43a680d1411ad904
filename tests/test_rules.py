"""The program's update rules (skreg._engine.rules) step for step against
the Keras optimizers they are read from."""

import numpy as np
import pytest

from skreg._engine.rules import read_rule, rule_of
from skreg._backend.optimizers import fused_optimizer_class
from skreg._backend.tensorflow import keras, tf


@pytest.mark.parametrize(
    "name, config, kind",
    [
        ("sgd", {}, ("sgd", False, False)),
        ("sgd", {"momentum": 0.9}, ("sgd", True, False)),
        ("sgd", {"momentum": 0.9, "nesterov": True}, ("sgd", True, True)),
        ("rmsprop", {}, ("rmsprop", False)),
        ("rmsprop", {"momentum": 0.5, "rho": 0.8}, ("rmsprop", True)),
        ("adam", {"beta_1": 0.8}, ("adam",)),
        ("adamw", {"beta_2": 0.99, "weight_decay": 0.0}, ("adam",)),
        ("nadam", {"beta_1": 0.8}, ("nadam",)),
        ("adagrad", {"initial_accumulator_value": 0.3}, ("adagrad",)),
        ("adamax", {"beta_2": 0.9}, ("adamax",)),
    ],
)
def test_each_rule_steps_as_the_keras_optimizer_it_reads(name, config, kind):
    rng = np.random.RandomState(0)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    optimizer = fused_optimizer_class(type(keras.optimizers.get(name)))(learning_rate=0.01,
                                                                          **config)  # fmt: skip
    variable = keras.Variable(start)
    optimizer.build([variable])
    rule, numbers = read_rule(optimizer)
    assert rule.kind == kind and rule_of(kind).kind == kind
    assert set(numbers) == set(rule.number_names)
    weight = tf.constant(start)
    slots = rule.initial_slots(weight, numbers)
    tensors = {name: tf.constant(value, tf.float32) for name, value in numbers.items()}
    for step in range(4):
        gradient = tf.constant(rng.normal(size=start.shape).astype(np.float32))
        optimizer.apply([gradient], [variable])
        table = rule.step_table(tensors, tf.constant([step], tf.int64))
        weight, slots = rule.apply(weight, slots, gradient, 0.01,
                                   {**tensors, **{k: v[0] for k, v in table.items()}})
    np.testing.assert_allclose(weight.numpy(), variable.numpy(), rtol=1e-5, atol=1e-6)
    keras_slots = rule.keras_slots(optimizer, variable)
    assert len(keras_slots) == len(slots) == rule.n_slots
    for ours, theirs in zip(slots, keras_slots):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["adadelta", "ftrl", "lion"])
def test_optimizers_without_a_rule_are_not_read(name):
    optimizer = keras.optimizers.get(name)
    optimizer.build([keras.Variable(np.zeros((2, 2), np.float32))])
    assert read_rule(optimizer) is None
