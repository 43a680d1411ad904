"""K towers of the program (skreg._engine) against K separate one-tower fits.

With one batch per epoch and no dropout both see the same numbers, so each
tower's training losses and outputs must equal those of a separate fit on
its fold's rows, from the same starting weights, to float32 rounding.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor
from skreg._estimators.inference import predict_float64
from skreg._engine import batches as engine_batches
from skreg._engine import updates as engine_updates
from skreg._engine.partition import PartitionedBatches
from skreg._backend.tensorflow import tf
from skreg._engine import (
    TowerState,
    TowerStructure,
    TowerTrainer,
    initial_weights,
    is_binary,
    tower_data,
)
from skreg._engine.batches import SparseBatch
from skreg._engine.cache import clear_training_cache
from skreg._engine.fit import fit_model
from skreg._engine.losses import loss_kind
from skreg._engine.model import optimizer_kind, plan_model
from skreg._engine.numbers import TowerNumbers

EPOCHS = 4


def _data(kind):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)[:200]
    y = y[:200]
    if kind == "sparse":  # about half the entries stored, some not 1
        X = sp.csr_matrix(np.where(X > 0, np.round(X, 1), 0.0).astype(np.float32))
    elif kind == "multi-hot":  # stored values all 1, as from MultiHotVectorizer
        X = sp.csr_matrix((X > 0.3).astype(np.float32))
    return X, y


def _towers_like(estimator, X, y, settings, folds, fused_update=False, separate=True):
    """Train one tower per (settings, fold); return (losses, outputs) of the
    towers and (unless not ``separate``) of separate single-network fits
    from the same start."""
    estimator = estimator.set_params(random_state=0, batch_size=10_000, epochs=EPOCHS)
    y_encoded = estimator._encode_y(y, first_call=True)
    optimizer_class, config = estimator._resolve_optimizer()
    n_towers = len(settings)
    hidden = list(estimator.hidden_layer_sizes)
    start_model = estimator._initialize_model(
        X.shape[1], 0, estimator._initialize_optimizer(optimizer_class, config)
    )
    start = [w.numpy() for w in start_model.weights]
    # build_mlp's weights in the towers' layout (same start for every tower).
    weights = []
    for i, value in enumerate(start):
        if i == 0:
            weights.append(np.tile(value, (1, n_towers)))
        elif value.ndim == 2:
            weights.append(np.broadcast_to(value, (n_towers, *value.shape)))
        else:
            weights.append(np.broadcast_to(value, (n_towers, 1, value.shape[0])))
    kind, hyper = optimizer_kind(start_model.optimizer)
    own_rate = float(start_model.optimizer.learning_rate.numpy())
    member = np.zeros((n_towers, X.shape[0]), np.float32)
    for k, rows in enumerate(folds):
        member[k, rows] = 1.0
    structure = TowerStructure(
        n_hidden=len(hidden), activation=estimator.activation,
        batch_norm=estimator.batch_norm, loss=loss_kind(start_model.loss), optimizer=kind,
        sparse=sp.issparse(X), binary=is_binary(X),
        fused_update=fused_update,
        regularizers=("l1", "l2"),
    )  # fmt: skip
    numbers = TowerNumbers(
        n_towers, hyper, l1=[s.get("l1", 0.0) for s in settings],
        l2=[s.get("l2", 0.0) for s in settings],
        learning_rate=[s.get("learning_rate", own_rate) for s in settings],
        key=list(range(n_towers)),
    )  # fmt: skip
    everything = np.arange(X.shape[0])  # all the rows, one tower at a time
    # The fused update runs on large kernels only: this small one takes it
    # when the threshold (read when the program is traced) is 0.
    threshold = engine_updates.FUSED_UPDATE_MIN_SIZE
    if fused_update:
        engine_updates.FUSED_UPDATE_MIN_SIZE = 0
        clear_training_cache()
    try:
        trained = TowerTrainer(
            structure, tower_data(X, X.shape[0], binary=structure.binary), y_encoded, member,
            member, [(everything, k, k + 1) for k in range(n_towers)],
            TowerState.start(structure, weights, numbers), numbers, batch_size=X.shape[0],
            seeds=(1, 2),
        ).train(EPOCHS, seconds=None)  # fmt: skip
    finally:
        if fused_update:
            engine_updates.FUSED_UPDATE_MIN_SIZE = threshold
            clear_training_cache()
    tower_losses, tower_outputs = trained.losses, trained.outputs

    single_losses, single_outputs = [], []
    for setting, rows in zip(settings, folds) if separate else ():
        single = clone(estimator).set_params(**setting)
        single._encode_y(y, first_call=True)
        model = single._initialize_model(
            X.shape[1], 0, single._initialize_optimizer(optimizer_class, config)
        )
        plan = plan_model(model, X[rows])
        history = fit_model(
            plan, X[rows], y_encoded[rows], None, None, epochs=EPOCHS, batch_size=len(rows),
            early_stopping=False, patience=1, seeds=[1, 2],
        )  # fmt: skip
        single_losses.append(history["loss"])
        single_outputs.append(predict_float64(model, X, 4096))
    return (
        tower_losses.T,
        np.array([block[-1, :, 0] for block in tower_outputs]),
        np.array(single_losses),
        np.array(single_outputs),
    )


FOLDS = [np.arange(0, 150), np.arange(50, 200), np.r_[0:50, 100:200]]


@pytest.mark.parametrize("data", ["dense", "sparse"])
@pytest.mark.parametrize(
    "params, settings",
    [
        ({}, [{"l2": 0.0}, {"l2": 1e-3}, {"l2": 1e-1}]),
        ({"optimizer": "adam"}, [{"l1": 1e-3}, {"l2": 1e-2, "learning_rate": 1e-2},
                                 {"learning_rate": 3e-3}]),  # fmt: skip
        ({"optimizer": "sgd", "optimizer__momentum": 0.9, "optimizer__nesterov": True,
          "learning_rate": 0.05}, [{"l2": 1e-3}, {"learning_rate": 0.01}, {}]),  # fmt: skip
        ({"optimizer__momentum": 0.5, "batch_norm": True, "activation": "tanh"},
         [{"l2": 1e-3}, {"l1": 1e-4, "l2": 1e-4}, {"learning_rate": 3e-3}]),  # fmt: skip
        ({"hidden_layer_sizes": (40,)}, [{"l2": 1e-3}, {}, {"l2": 1e-2}]),
    ],
    ids=["rmsprop", "adam", "sgd-nesterov", "batch-norm", "wide"],
)
def test_each_tower_trains_as_a_separate_fit(data, params, settings):
    X, y = _data(data)
    estimator = RegularizedMLPClassifier(**params)
    # The first kernel's update by XLA, as large kernels get it, in some cases.
    fused_update = "hidden_layer_sizes" in params or params.get("optimizer") == "adam"
    tower_losses, tower_outputs, losses, outputs = _towers_like(
        estimator, X, y, settings, FOLDS, fused_update=fused_update
    )
    np.testing.assert_allclose(tower_losses, losses, rtol=1e-4)
    np.testing.assert_allclose(tower_outputs, outputs, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("fused_update", [False, True], ids=["plain-update", "fused-update"])
def test_towers_on_multi_hot_data_train_as_separate_fits(fused_update):
    """Multi-hot input (every stored value 1) takes the program without values."""
    X, y = _data("multi-hot")
    settings = [{"l2": 1e-3}, {}, {"l1": 1e-3, "learning_rate": 3e-3}]
    tower_losses, tower_outputs, losses, outputs = _towers_like(
        RegularizedMLPClassifier(), X, y, settings, FOLDS, fused_update=fused_update
    )
    np.testing.assert_allclose(tower_losses, losses, rtol=1e-4)
    np.testing.assert_allclose(tower_outputs, outputs, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("data", ["dense", "sparse", "multi-hot"])
def test_held_out_rows_scored_in_several_passes(data, monkeypatch):
    """Held-out rows go through the towers in passes of a few rows: the
    outputs are those of one pass (the fold's rows: 150, 150, 150)."""
    X, y = _data(data)
    settings = [{"l2": 0.0}, {"l2": 1e-3}, {"l1": 1e-3}]
    clear_training_cache()  # the program reads the pass size when traced
    try:
        _, whole, _, _ = _towers_like(RegularizedMLPClassifier(), X, y, settings, FOLDS,
                                      separate=False)  # fmt: skip
        monkeypatch.setattr(engine_batches, "EVALUATION_BATCH_SIZE", 7)
        clear_training_cache()
        _, in_passes, _, _ = _towers_like(RegularizedMLPClassifier(), X, y, settings, FOLDS,
                                          separate=False)  # fmt: skip
    finally:
        clear_training_cache()
    np.testing.assert_allclose(in_passes, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "poisson"])
def test_regression_towers_train_as_separate_fits(loss):
    X, y = _data("dense")
    target = X[:, 0] * 0.5 + X[:, 1]
    if loss == "poisson":  # counts
        target = np.round(np.exp(target / 2))
    estimator = RegularizedMLPRegressor(loss=loss, learning_rate=3e-3)
    settings = [{"l2": 0.0}, {"l2": 1e-2}, {"l1": 1e-3}]
    tower_losses, tower_outputs, losses, outputs = _towers_like(
        estimator, X, target, settings, FOLDS
    )
    np.testing.assert_allclose(tower_losses, losses, rtol=1e-4)
    np.testing.assert_allclose(tower_outputs, outputs, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("narrow", [False, True, "tensor"],
                         ids=["segment-sums", "matmul", "matmul-at-run-time"])  # fmt: skip
@pytest.mark.parametrize("split", [0, 17, 40], ids=["split-0", "split-17", "split-end"])
@pytest.mark.parametrize("binary", [False, True], ids=["values", "multi-hot"])
def test_sparse_batches_multiply_as_scipy(binary, split, narrow):
    """The first layer's product and kernel gradient of every batch of an
    epoch (three of 20 rows, one of 10) against scipy's: by segment sums
    over the non-zeros in row and column order, or, for a narrow layer, by
    sparse-dense matmuls from the row order alone (the column order left
    out of the partition), chosen in Python or at run time."""
    rng = np.random.RandomState(0)
    X = sp.random(70, 40, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    if binary:
        X.data[:] = 1.0
    data = tower_data(X, 20, binary=binary)
    data = (*data[:8], tf.constant(split, tf.int64), data[9])
    batches = PartitionedBatches(*data, binary=binary)
    order = rng.permutation(70)
    if narrow == "tensor":
        narrow = tf.constant(True)
    partition = batches.partition(tf.math.invert_permutation(tf.constant(order)), 20, 0,
                                  column_order=not narrow)  # fmt: skip
    kernel = rng.randn(40, 6).astype(np.float32)
    for step in range(4):
        batch = SparseBatch(partition, step, batches.n_features, batches.split, narrow=narrow)
        if narrow is not False:
            assert batch.by_column[0].shape[0] == 0  # no column order
        rows = batch.rows.numpy()
        np.testing.assert_array_equal(np.sort(rows), np.sort(order[step * 20 : step * 20 + 20]))
        gradient = rng.randn(len(rows), 6).astype(np.float32)
        np.testing.assert_allclose(batch.product(kernel).numpy(), X[rows] @ kernel, rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
        parts = batch.kernel_gradient(tf.constant(gradient))
        assert [part.shape[0] for part in parts] == ([40, 0] if narrow is not False
                                                     else [split, 40 - split])  # fmt: skip
        np.testing.assert_allclose(tf.concat(parts, 0).numpy(), X[rows].T @ gradient, rtol=1e-5,
                                   atol=1e-5)  # fmt: skip


def _resumable_setup(data):
    """Four towers (Adam, batch norm, dropout, penalties) on the first 200
    rows, batches of 64: several steps an epoch, each draws dropout masks."""
    X, y = _data(data)
    structure = TowerStructure(
        n_hidden=2, activation="relu", batch_norm=True, loss=("binary",), optimizer=("adam",),
        sparse=sp.issparse(X), binary=is_binary(X), fused_update=False,
        regularizers=("l1", "l2", "dropout"),
    )  # fmt: skip
    folds = [*FOLDS, np.arange(200)]
    member = np.zeros((4, X.shape[0]), np.float32)
    for k, rows in enumerate(folds):
        member[k, rows] = 1.0
    numbers = TowerNumbers(4, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
                           l1=[0.0, 1e-3, 0.0, 1e-4], l2=[1e-3, 0.0, 1e-2, 0.0],
                           dropout=[0.0, 0.3, 0.5, 0.2], learning_rate=[1e-3, 3e-3, 1e-3, 1e-2],
                           key=[0, 1, 2, 3])  # fmt: skip
    weights = initial_weights(X.shape[1], [8, 6], 1, seeds=[0, 1, 1, 2], batch_norm=True)
    everything = np.arange(X.shape[0])
    return dict(structure=structure, data=tower_data(X, 64, binary=structure.binary),
                y=y.astype(np.float32), row_weight=member, member=member,
                blocks=[(everything, k, k + 1) for k in range(4)],
                state=TowerState.start(structure, weights, numbers), numbers=numbers,
                batch_size=64, seeds=(3, 4))  # fmt: skip


@pytest.mark.parametrize("data", ["dense", "multi-hot"])
def test_training_goes_on_where_a_call_stopped(data):
    """Five epochs in calls of 2, 2 and 1 equal five epochs in one call."""
    setup = _resumable_setup(data)
    whole = TowerTrainer(**setup).train(5, seconds=None)
    trainer = TowerTrainer(**setup)
    chunks = [trainer.train(n, seconds=None) for n in (2, 2, 1)]
    assert [len(chunk.losses) for chunk in chunks] == [2, 2, 1]
    assert (trainer.state.epoch, trainer.state.iteration) == (5, 5 * 4)
    np.testing.assert_allclose(np.concatenate([c.losses for c in chunks]), whole.losses,
                               rtol=1e-5)  # fmt: skip
    for k in range(4):
        np.testing.assert_allclose(
            np.concatenate([c.outputs[k] for c in chunks]), whole.outputs[k], rtol=1e-4, atol=1e-5
        )  # fmt: skip
    for after_chunks, after_whole in zip(trainer.state.weights + trainer.state.slots,
                                         whole.state.weights + whole.state.slots):  # fmt: skip
        np.testing.assert_allclose(after_chunks.numpy(), after_whole.numpy(), rtol=1e-4,
                                   atol=1e-6)  # fmt: skip


def test_a_call_ends_after_the_first_epoch_past_its_time():
    """With no time at all, each call trains one epoch (never none), and
    five such calls learn what one call of five epochs learns: a call's
    time only decides where Python gets control back (Ctrl-C, progress)."""
    setup = _resumable_setup("multi-hot")
    whole = TowerTrainer(**setup).train(5, seconds=None)
    trainer = TowerTrainer(**setup)
    chunks = [trainer.train(5 - epoch, seconds=0) for epoch in range(5)]
    assert [len(chunk.losses) for chunk in chunks] == [1] * 5
    assert trainer.state.epoch == 5
    np.testing.assert_allclose(np.concatenate([c.losses for c in chunks]), whole.losses,
                               rtol=1e-5)  # fmt: skip
    for after_chunks, after_whole in zip(trainer.state.weights, whole.state.weights):
        np.testing.assert_allclose(after_chunks.numpy(), after_whole.numpy(), rtol=1e-4,
                                   atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("data", ["dense", "multi-hot"])
def test_towers_taken_out_train_on_as_beside_the_others(data):
    """Towers 1 and 3 taken out after two epochs and trained three more
    learn what they learn in five epochs beside all four: pruning the
    others changes nothing for them (dropout masks included)."""
    setup = _resumable_setup(data)
    whole = TowerTrainer(**setup).train(5, seconds=None)
    trainer = TowerTrainer(**setup)
    trainer.train(2, seconds=None)
    kept = [1, 3]
    trainer.select(kept)  # what successive halving does between rungs
    assert trainer.n_towers == 2 and trainer.state.epoch == 2
    assert trainer.numbers.l1 == [1e-3, 1e-4] and trainer.numbers.key == [1, 3]
    rest = trainer.train(3, seconds=None)
    assert len(rest.outputs) == 2  # each kept tower's own evaluation block
    np.testing.assert_allclose(rest.losses, whole.losses[2:, kept], rtol=1e-4)
    for position, k in enumerate(kept):
        np.testing.assert_allclose(rest.outputs[position], whole.outputs[k][2:], rtol=1e-4,
                                   atol=1e-5)  # fmt: skip
    expected = whole.state.select(kept)
    for got, want in zip(rest.state.weights + rest.state.slots,
                         expected.weights + expected.slots):  # fmt: skip
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("data", ["dense", "sparse", "multi-hot"])
def test_a_folds_towers_train_as_its_separate_fits_batch_by_batch(data):
    """A fold's towers train in batches cut from the fold's training rows
    alone, in an order of their own, and score its held-out rows: with
    several batches an epoch they equal separate fits on the training rows
    with the same seeds."""
    X, y = _data(data)
    test = np.arange(0, 200, 5)
    train = np.setdiff1d(np.arange(200), test)
    settings = [{"l2": 1e-3}, {"l1": 1e-3, "learning_rate": 3e-3}]
    estimator = RegularizedMLPClassifier(optimizer="adam", random_state=0)
    y_encoded = estimator._encode_y(y, first_call=True)
    optimizer_class, config = estimator._resolve_optimizer()
    models, plans = [], []
    for setting in settings:
        single = clone(estimator).set_params(**setting)
        single._encode_y(y, first_call=True)
        models.append(single._initialize_model(
            X.shape[1], 0, single._initialize_optimizer(optimizer_class, config)))  # fmt: skip
        plans.append(plan_model(models[-1], X[train]))
    start = [w.numpy() for w in models[0].weights]  # the same for both (seed 0)
    weights = [np.tile(start[0], (1, 2))]
    weights += [np.stack([w] * 2) if w.ndim == 2 else np.stack([w[None]] * 2) for w in start[1:]]
    kind, hyper = optimizer_kind(models[0].optimizer)
    own_rate = float(models[0].optimizer.learning_rate.numpy())
    structure = TowerStructure(
        n_hidden=2, activation="relu", batch_norm=False, loss=("binary",), optimizer=kind,
        sparse=sp.issparse(X), binary=is_binary(X), fused_update=False,
        regularizers=("l1", "l2"),
    )  # fmt: skip
    member = np.zeros((2, 200), np.float32)
    member[:, train] = 1.0
    numbers = TowerNumbers(2, hyper, l1=[s.get("l1", 0.0) for s in settings],
                           l2=[s.get("l2", 0.0) for s in settings],
                           learning_rate=[s.get("learning_rate", own_rate) for s in settings],
                           key=[0, 1])  # fmt: skip
    trained = TowerTrainer(
        structure, tower_data(X, 32, binary=structure.binary), y_encoded, member, member,
        [(test, 0, 2)], TowerState.start(structure, weights, numbers), numbers, batch_size=32,
        seeds=(1, 2), train_rows=train,
    ).train(EPOCHS, seconds=None)  # fmt: skip
    for k, (model, plan) in enumerate(zip(models, plans)):
        history = fit_model(
            plan, X[train], y_encoded[train], None, None, epochs=EPOCHS, batch_size=32,
            early_stopping=False, patience=1, seeds=[1, 2],
        )  # fmt: skip
        np.testing.assert_allclose(trained.losses[:, k], history["loss"], rtol=1e-4)
        np.testing.assert_allclose(trained.outputs[0][-1, :, k, 0],
                                   predict_float64(model, X[test], 4096)[:, 0],
                                   rtol=1e-3, atol=1e-4)  # fmt: skip
