"""The regularizers (skreg/_engine/regularizers.py): what each declares, which
the rest of the engine loops over, and the hidden layers' Gaussian noise."""

import inspect

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV, build_mlp
from skreg._backend.tensorflow import keras, tf
from skreg._engine.model import NotOnProgram, plan_model
from skreg._engine.numbers import PER_TOWER_NUMBERS
from skreg._engine.regularizers import REGULARIZERS, HiddenNoise
from skreg._engine.structure import TowerStructure
from skreg._search.structures import TOWER_PARAMS

# What each stage's tower form must have (the program calls them).
STAGE_METHODS = {"penalty": ("gradient", "terms"), "forward": ("forward",),
                 "decay": ("decayed",), "constraint": ("constrained",), "targets": ()}  # fmt: skip


@pytest.mark.parametrize("regularizer", REGULARIZERS, ids=lambda r: r.name)
def test_each_regularizer_declares_what_the_engine_loops_over(regularizer):
    numbers = {number.name: number for number in PER_TOWER_NUMBERS}
    assert numbers[regularizer.name].default == regularizer.off
    assert not regularizer.makes_passes(regularizer.off)
    assert regularizer.name in TOWER_PARAMS  # searched in the towers
    assert regularizer.name in RegularizedMLPClassifier().get_params()
    for method in ("read", *STAGE_METHODS[regularizer.stage]):
        assert callable(getattr(regularizer, method)), method
    read_from = list(inspect.signature(regularizer.read).parameters)
    assert read_from == {"layer": ["group"], "optimizer": ["optimizer", "config"],
                         "loss": ["loss"]}[regularizer.source]  # fmt: skip
    if regularizer.stage == "forward":  # the planner finds its layer after the activation
        assert issubclass(regularizer.keras_layer, keras.layers.Layer)


def test_a_structure_holds_the_regularizers_in_their_order_and_no_others():
    structure = TowerStructure(n_hidden=1, activation="relu", batch_norm=False, loss=("binary",),
                               optimizer=("adam",), sparse=False, binary=False,
                               fused_update=False, regularizers=["max_norm", "l1", "dropout"])
    assert structure.regularizers == ("l1", "dropout", "max_norm")
    with pytest.raises(ValueError, match="unknown regularizers"):
        TowerStructure(n_hidden=1, activation="relu", batch_norm=False, loss=("binary",),
                       optimizer=("adam",), sparse=False, binary=False, fused_update=False,
                       regularizers=["l3"])  # fmt: skip


def test_hidden_noise_draws_are_finite_standard_normal():
    # Every 97th of the 2**24 uniform values the program draws, and both ends.
    k = np.r_[0, np.arange(1, 2**24, 97), 2**24 - 1].astype(np.float32)
    uniform = tf.constant(k / 2**24)[None, :, None]
    noise = HiddenNoise.forward(tf.zeros_like(uniform), 2.0, uniform).numpy().ravel()
    assert np.all(np.isfinite(noise))
    assert abs(noise.mean()) < 2e-3 and abs(noise.std() / 2.0 - 1.0) < 2e-3
    # Symmetric about 0: the lowest and the highest draws mirror each other.
    assert noise[0] == pytest.approx(-noise[-1])


def _compiled(model):
    model.compile(optimizer="rmsprop", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)  # its slots, as a fit makes them
    return model


def test_the_planner_reads_hidden_noise_after_dropout_and_refuses_another_order():
    X = np.zeros((8, 4), np.float32)
    plan = plan_model(_compiled(build_mlp(4, 1, hidden_layer_sizes=(3, 3), dropout=0.2,
                                          hidden_noise=0.1, random_state=0)), X)  # fmt: skip
    assert plan.numbers.dropout == [0.2] and plan.numbers.hidden_noise == [pytest.approx(0.1)]
    assert {"dropout", "hidden_noise"} <= set(plan.structure.regularizers)
    swapped = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3), keras.layers.Activation("relu"),
        keras.layers.GaussianNoise(0.1), keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    with pytest.raises(NotOnProgram, match="not in build_mlp's order"):
        plan_model(_compiled(swapped), X)


def test_hidden_noise_trains_on_the_program_and_leaves_predictions_alone():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    common = dict(epochs=5, batch_size=64, learning_rate=0.01, random_state=0)
    noisy = RegularizedMLPClassifier(hidden_noise=1.0, **common).fit(X, y)
    assert noisy.training_path_ == "program", noisy.training_path_reason_
    assert [type(layer).__name__ for layer in noisy.model_.layers].count("GaussianNoise") == 2
    np.testing.assert_array_equal(noisy.predict_proba(X), noisy.predict_proba(X))
    plain = RegularizedMLPClassifier(**common).fit(X, y)
    # The noise is in the training loss, not in a prediction's.
    assert noisy.history_["loss"][-1] > plain.history_["loss"][-1]
    assert noisy.score(X, y) > 0.9


def test_a_networks_noise_does_not_depend_on_the_dropout_of_others_beside_it():
    """Each forward stage draws from a stream of its own: a candidate's
    noise is the same whether its group makes dropout's draws or not."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    common = dict(cv=3, epochs=4, refit=False, hidden_noise=0.5, random_state=0)
    beside = RegularizedMLPClassifierCV(param_grid={"dropout": [0.0, 0.3]}, **common).fit(X, y)
    alone = RegularizedMLPClassifierCV(param_grid={"dropout": [0.0]}, **common).fit(X, y)
    assert beside.training_path_ == alone.training_path_ == "program"
    np.testing.assert_allclose(beside.test_loss_curves_[0], alone.test_loss_curves_[0],
                               rtol=1e-4)  # fmt: skip


def test_hidden_noise_out_of_keras_range_is_refused_naming_it():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="hidden_noise"):
        RegularizedMLPClassifier(hidden_noise=2.0, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"hidden_noise must be in \[0, 1\]"):
        build_mlp(4, 1, hidden_noise=-0.1)
    with pytest.raises(ValueError, match="hidden_noise"):
        RegularizedMLPClassifierCV(param_grid={"hidden_noise": [0.5, 1.5]}, epochs=1).fit(X, y)
