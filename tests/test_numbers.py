"""The towers' run-time numbers, defined once (skreg._engine.numbers)."""

import math

import pytest

from skreg._engine.numbers import GROUP_NUMBERS, PER_TOWER_NUMBERS, TowerNumbers
from skreg._engine.program import _signature
from skreg._engine.structure import TowerStructure

ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}


def test_defaults_fill_what_is_not_given_one_value_a_tower():
    numbers = TowerNumbers(3, ADAM, l2=[0.0, 1e-3, 1e-2], learning_rate=0.01)
    assert numbers.l2 == [0.0, 1e-3, 1e-2]
    assert numbers.learning_rate == [0.01] * 3
    assert numbers.max_norm == [math.inf] * 3 and numbers.key == [0] * 3
    assert numbers.input_dropout == 0.0
    with pytest.raises(TypeError, match="unknown tower numbers"):
        TowerNumbers(1, ADAM, l3=1.0)


def test_select_and_stacked_take_towers_apart_and_together():
    numbers = TowerNumbers(3, ADAM, l1=[1.0, 2.0, 3.0], key=[5, 6, 7], input_noise=0.1)
    taken = numbers.select([0, 2])
    assert taken.n_towers == 2 and taken.l1 == [1.0, 3.0] and taken.key == [5, 7]
    assert taken.input_noise == 0.1
    both = TowerNumbers.stacked([taken, numbers.select([1])])
    assert both.l1 == [1.0, 3.0, 2.0] and both.group() == numbers.group()
    with pytest.raises(ValueError, match="cannot train as one group"):
        TowerNumbers.stacked([taken, numbers.replace(input_noise=0.2)])


def test_the_tensors_are_what_the_program_signature_declares():
    structure = TowerStructure(n_hidden=1, activation="relu", batch_norm=False,
                               loss=("binary",), optimizer=("adam",), sparse=False,
                               binary=False, fused_update=False,
                               regularizers=("l1", "l2"))  # fmt: skip
    specs = _signature(structure, 4)[8]
    tensors = TowerNumbers(2, ADAM).tensors()
    assert set(specs) == set(tensors)
    assert set(specs) == {n.name for n in PER_TOWER_NUMBERS + GROUP_NUMBERS} | {"optimizer"}
    for name, spec in specs.items():
        if name == "optimizer":
            assert set(spec) == set(ADAM)
        else:
            assert spec.is_compatible_with(tensors[name]), name
