"""A fit on the traced program (skreg._engine, one tower) against Keras' Model.fit."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor, clear_training_cache
from skreg._estimators.base import BaseRegularizedMLP
from skreg._backend.tensorflow import keras, tf
from skreg._engine.cache import training_cache_info
from skreg._engine.model import NotOnProgram, plan_model


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)  # fmt: skip
    return X.astype(np.float32), y


def _with_keras(estimator):
    """The same estimator trained by Model.fit: a routed compile option forces it."""
    return estimator.set_params(compile__jit_compile=False)


def _weights(estimator):
    return [w.numpy() for w in estimator.model_.weights]


# One batch (batch_size = n_samples) and no dropout: both trainers see the same
# numbers, so they must agree to float32 rounding, update after update.
EQUIVALENT_SETTINGS = [
    dict(),
    dict(l2=1e-2, l1=1e-3),
    dict(l1=1e-3),
    dict(optimizer="adam", learning_rate=0.01),
    dict(optimizer="sgd", learning_rate=0.05),
    dict(optimizer="sgd", learning_rate=0.05, optimizer__momentum=0.9,
         optimizer__nesterov=True),  # fmt: skip
    dict(optimizer="rmsprop", optimizer__momentum=0.5, optimizer__rho=0.8),
    dict(batch_norm=True, activation="tanh"),
    dict(hidden_layer_sizes=(70,)),  # the wide sparse kernel (segment sums)
    # The optimizers, options and regularizers each defined once (rules.py,
    # regularizers.py), against Keras' own.
    dict(optimizer="adamw", learning_rate=0.01),
    dict(optimizer="nadam", learning_rate=0.01),
    dict(optimizer="adagrad", learning_rate=0.05),
    dict(optimizer="adamax", learning_rate=0.01, l1=1e-3),
    dict(optimizer="adam", learning_rate=0.01, weight_decay=0.05, batch_norm=True),
    dict(optimizer="sgd", learning_rate=0.05, optimizer__clipnorm=0.1, l2=1e-2),
    dict(optimizer="rmsprop", optimizer__clipvalue=1e-3),
    dict(optimizer="adam", optimizer__global_clipnorm=0.05, l1=1e-2),
    dict(max_norm=0.3, learning_rate=0.05),
    dict(label_smoothing=0.2, l2=1e-3),
    dict(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        0.001, decay_steps=5, warmup_target=0.02, warmup_steps=3))),
    dict(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=2, decay_rate=0.5, staircase=True)), weight_decay=0.01),
    dict(optimizer=keras.optimizers.RMSprop(keras.optimizers.schedules.PiecewiseConstantDecay(
        [2, 5], [0.01, 0.003, 0.001]))),
    dict(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.InverseTimeDecay(
        0.01, decay_steps=1, decay_rate=0.5))),
]


@pytest.mark.parametrize("settings", EQUIVALENT_SETTINGS)
@pytest.mark.parametrize("sparse", [False, True])
def test_one_call_training_equals_keras_fit(data, settings, sparse):
    X, y = data
    if sparse:
        X = sp.csr_matrix(np.where(X > 0, X, 0))
    params = dict(batch_size=len(y), epochs=8, random_state=0, **settings)
    ours = RegularizedMLPClassifier(**params).fit(X, y)
    assert ours.training_path_ == "program", ours.training_path_reason_
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(X, y)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key],
                                   rtol=1e-4, atol=1e-6)  # fmt: skip
    for a, b in zip(_weights(ours), _weights(keras_fit)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert ours.model_.optimizer.iterations.numpy() == keras_fit.model_.optimizer.iterations.numpy()


@pytest.mark.parametrize("settings", [dict(label_smoothing=0.3), dict(
    label_smoothing=0.1, max_norm=0.2, optimizer="adamw", optimizer__clipvalue=0.01)])
def test_binary_training_and_validation_equal_keras_fit(data, settings):
    """Label smoothing enters the training and the validation loss as in Keras."""
    X, y = data
    y = y % 2
    params = dict(batch_size=len(y), epochs=6, learning_rate=0.01, random_state=0, **settings)
    validation = (X[:40], y[:40])
    ours = RegularizedMLPClassifier(**params).fit(X, y, validation_data=validation)
    assert ours.training_path_ == "program"
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(X, y,
                                                                   validation_data=validation)
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key], rtol=1e-4,
                                   atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "poisson"])
def test_regression_losses_and_validation_equal_keras_fit(loss):
    X, y = make_regression(n_samples=100, n_features=6, n_targets=2, noise=5, random_state=0)
    y = y / 100
    if loss == "poisson":  # counts
        y = np.round(np.exp(y))
    X_val, y_val = X[:30], y[:30] + 0.1
    params = dict(loss=loss, batch_size=100, epochs=6, learning_rate=0.01, l2=1e-3,
                  random_state=0)  # fmt: skip
    ours = RegularizedMLPRegressor(**params).fit(X, y, validation_data=(X_val, y_val))
    keras_fit = _with_keras(RegularizedMLPRegressor(**params)).fit(
        X, y, validation_data=(X_val, y_val)
    )
    assert set(ours.history_) == set(keras_fit.history_) == {"loss", "val_loss"}
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key], rtol=1e-4)


def test_sparse_training_with_dense_validation_data(data):
    X, y = data
    X_sparse = sp.csr_matrix(np.where(X > 0, X, 0))
    params = dict(batch_size=len(y), epochs=4, random_state=0)
    ours = RegularizedMLPClassifier(**params).fit(X_sparse, y, validation_data=(X[:30], y[:30]))
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(
        X_sparse, y, validation_data=(X[:30], y[:30])
    )
    np.testing.assert_allclose(ours.history_["val_loss"], keras_fit.history_["val_loss"],
                               rtol=1e-4)  # fmt: skip


def test_multi_hot_training_scores_validation_rows_of_other_values(data):
    # Multi-hot training data makes a program that takes every stored value
    # as 1; validation rows of other values keep theirs (val_loss once
    # scored them as all 1: 0.70 where Keras said 0.90).
    X, y = data
    multi_hot = sp.csr_matrix((X > 0.5).astype(np.float32))
    scaled = multi_hot[:30] * 3.0
    params = dict(batch_size=len(y), epochs=3, random_state=0)
    ours = RegularizedMLPClassifier(**params).fit(multi_hot, y, validation_data=(scaled, y[:30]))
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(
        multi_hot, y, validation_data=(scaled, y[:30])
    )
    np.testing.assert_allclose(ours.history_["val_loss"], keras_fit.history_["val_loss"],
                               rtol=1e-4)  # fmt: skip


def test_early_stopping_stops_and_restores_as_keras_does(data):
    X, y = data
    # A large learning rate makes the validation loss turn up early.
    params = dict(batch_size=len(y), epochs=60, learning_rate=0.05, early_stopping=True,
                  n_iter_no_change=3, random_state=0)  # fmt: skip
    ours = RegularizedMLPClassifier(**params).fit(X, y, validation_data=(X[:40], y[:40]))
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(
        X, y, validation_data=(X[:40], y[:40])
    )
    assert ours.n_iter_ == keras_fit.n_iter_ < 60
    assert ours.best_epoch_ == keras_fit.best_epoch_ < ours.n_iter_
    np.testing.assert_allclose(ours.history_["val_loss"], keras_fit.history_["val_loss"],
                               rtol=1e-4)  # fmt: skip
    for a, b in zip(_weights(ours), _weights(keras_fit)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_sample_weights_enter_the_loss_not_the_accuracy_as_in_keras(data):
    X, y = data
    weight = np.linspace(0.1, 2.0, len(y))
    params = dict(batch_size=len(y), epochs=5, random_state=0, class_weight={0: 2.0})
    ours = RegularizedMLPClassifier(**params).fit(X, y, sample_weight=weight)
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(X, y, sample_weight=weight)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key], rtol=1e-4)


def test_a_search_over_the_numbers_traces_one_program(data):
    X, y = data
    clear_training_cache()
    GridSearchCV(
        RegularizedMLPClassifier(epochs=3, dropout=0.2, random_state=0),
        {"l2": [0.0, 1e-3], "l1": [0.0, 1e-4], "dropout": [0.1, 0.3],
         "learning_rate": [1e-3, 1e-2]},
        cv=2,
    ).fit(X, y)  # fmt: skip
    info = training_cache_info()
    # 16 candidates x 2 folds + the refit, all one structure: one program
    # made (run first in the background), found by every fit.
    assert info == {"hits": 33, "misses": 1, "size": 1}
    # Dropout switched off is another structure (it makes no draws).
    RegularizedMLPClassifier(epochs=3, dropout=0.0, random_state=0).fit(X, y)
    assert training_cache_info()["misses"] == 2
    clear_training_cache()
    assert training_cache_info() == {"hits": 0, "misses": 0, "size": 0}


def test_a_first_fit_readies_its_program_in_the_background(data):
    """The first fit of a structure has its program traced and run once on
    two rows in a thread while it prepares its data: that program is the
    one made, and the fit's lookup is the only one counted."""
    X, y = data
    clear_training_cache()
    RegularizedMLPClassifier(epochs=2, random_state=0).fit(sp.csr_matrix(np.abs(X)), y)
    assert training_cache_info() == {"hits": 1, "misses": 1, "size": 1}
    assert not [t for t in threading.enumerate() if t.name == "skreg-program"]


def test_programs_are_optimised_without_the_idle_passes_options_put_back(data):
    """skreg's program calls turn Grappler's idle passes off in their own
    thread's call options, keep the caller's other options, and put the
    thread's options back: a fit leaves them as they were."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context as eager_context

    from skreg._backend.tensorflow import program_graph_options

    X, y = data
    thread_state = eager_context.context()._thread_local_data
    before = thread_state.function_call_options
    try:
        # A caller's own option, in this thread's call options.
        config = config_pb2.ConfigProto()
        off = rewriter_config_pb2.RewriterConfig.OFF
        config.graph_options.rewrite_options.constant_folding = off
        callers = eager_context.FunctionCallOptions(config_proto=config)
        thread_state.function_call_options = callers
        with program_graph_options():
            inside = config_pb2.ConfigProto.FromString(
                eager_context.context().function_call_options.config_proto_serialized
            ).graph_options.rewrite_options
        assert inside.remapping == inside.layout_optimizer == off
        assert inside.memory_optimization == rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
        assert inside.disable_tfg_optimizer
        assert inside.constant_folding == off  # the caller's, kept
        assert thread_state.function_call_options is callers
        RegularizedMLPClassifier(epochs=2, random_state=0).fit(X, y)
        assert thread_state.function_call_options is callers
    finally:
        thread_state.function_call_options = before


def test_the_passes_left_out_are_idle_same_training_with_them(data, monkeypatch):
    """A program optimised by all of Grappler's default passes trains as one
    optimised without those skreg leaves out (re-measure the passes if a new
    TensorFlow makes this fail). Here they train to the same bits; the
    tolerance is for CPUs where a left-out pass might fuse ops and round
    differently."""
    import contextlib

    from skreg._engine import trainer

    X, y = data
    X = sp.csr_matrix(np.abs(X))
    params = dict(epochs=3, batch_norm=True, dropout=0.2, l2=1e-3, optimizer="adam",
                  random_state=0)  # fmt: skip
    fits = []
    for options in (trainer.program_graph_options, contextlib.nullcontext):
        monkeypatch.setattr(trainer, "program_graph_options", options)
        clear_training_cache()  # a new program, optimised at its first call
        fits.append(RegularizedMLPClassifier(**params).fit(X, y))
        assert training_cache_info()["misses"] == 1  # on the program
    clear_training_cache()
    for lean, full in zip(_weights(fits[0]), _weights(fits[1])):
        np.testing.assert_allclose(lean, full, rtol=1e-5, atol=1e-6)
    assert fits[0].history_.keys() == fits[1].history_.keys()
    for name, values in fits[0].history_.items():
        np.testing.assert_allclose(values, fits[1].history_[name], rtol=1e-5, atol=1e-6)


def test_results_are_the_same_from_a_fresh_and_a_reused_program(data):
    X, y = data
    params = dict(dropout=0.3, input_dropout=0.2, l2=1e-3, epochs=4, random_state=3)
    clear_training_cache()
    fresh = RegularizedMLPClassifier(**params).fit(X, y)
    reused = RegularizedMLPClassifier(**params).fit(X, y)
    # One program, made for the first fit (run first in the background).
    assert training_cache_info() == {"hits": 2, "misses": 1, "size": 1}
    for a, b in zip(_weights(fresh), _weights(reused)):
        np.testing.assert_array_equal(a, b)
    assert fresh.history_ == reused.history_


def test_what_the_program_does_not_do_is_left_to_keras_with_the_reason(data):
    X, y = data
    clf = RegularizedMLPClassifier(epochs=1, random_state=0).fit(X, y)
    assert plan_model(clf.model_, X).structure.classifies
    noisy = RegularizedMLPClassifier(epochs=1, input_dropout=0.2, input_noise=0.1).fit(X, y)
    assert plan_model(noisy.model_, X).structure.with_input_noise
    images = RegularizedMLPClassifier(epochs=1, image_shape=(2, 4), image_flip=True,
                                      random_state=0).fit(X, y)  # fmt: skip
    with pytest.raises(NotOnProgram, match="image transforms"):
        plan_model(images.model_, X)
    clipped = RegularizedMLPClassifier(epochs=1, optimizer__use_ema=True, random_state=0).fit(X, y)
    with pytest.raises(NotOnProgram, match="optimizer"):
        plan_model(clipped.model_, X)


def test_the_cache_keeps_the_most_recently_used_programs(data, monkeypatch):
    from skreg._engine import cache

    X, y = data
    monkeypatch.setattr(cache, "_CACHE_SIZE", 2)
    clear_training_cache()
    for depth in (1, 2, 3, 1):  # three structures, then the first again
        RegularizedMLPClassifier(hidden_layer_sizes=(4,) * depth, epochs=1).fit(X, y)
    # The first was evicted by the third, so its second fit had it made
    # anew (each program is made for its fit, run first in the background).
    assert training_cache_info() == {"hits": 4, "misses": 4, "size": 2}
    RegularizedMLPClassifier(hidden_layer_sizes=(9, 9, 9), epochs=1).fit(X, y)  # still there
    assert training_cache_info() == {"hits": 5, "misses": 4, "size": 2}
    clear_training_cache()


def test_a_width_change_reuses_the_program_of_the_same_depth(data):
    X, y = data
    clear_training_cache()
    for width in (4, 8, 32):
        RegularizedMLPClassifier(hidden_layer_sizes=(width, width), epochs=1).fit(X, y)
    assert training_cache_info() == {"hits": 3, "misses": 1, "size": 1}


@pytest.mark.parametrize("optimizer", ["rmsprop", "nadam", "adagrad"])
def test_keras_continues_a_warm_start_from_the_programs_optimizer_state(data, optimizer):
    """Slots, steps and Nadam's momentum product go back into Keras' optimizer."""
    X, y = data
    params = dict(epochs=3, batch_size=len(y), warm_start=True, random_state=0,
                  optimizer=optimizer)  # fmt: skip
    ours = RegularizedMLPClassifier(**params).fit(X, y).fit(X, y)
    mixed = RegularizedMLPClassifier(**params).fit(X, y)
    _with_keras(mixed).fit(X, y)  # the second fit through Model.fit
    assert mixed.model_.optimizer.iterations.numpy() == ours.model_.optimizer.iterations.numpy()
    np.testing.assert_allclose(mixed.history_["loss"], ours.history_["loss"], rtol=1e-4)
    np.testing.assert_allclose(mixed.decision_function(X), ours.decision_function(X),
                               rtol=1e-4, atol=1e-5)  # fmt: skip


def _no_keras_fit(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Keras' Model.fit was called")

    monkeypatch.setattr(BaseRegularizedMLP, "_train_with_keras", refuse)


def test_verbose_fits_on_the_program_a_line_per_epoch_same_result(data, capsys, monkeypatch):
    X, y = data
    params = dict(epochs=3, dropout=0.2, random_state=0)
    quiet = RegularizedMLPClassifier(**params).fit(X, y)
    assert capsys.readouterr().out == ""
    before = training_cache_info()
    _no_keras_fit(monkeypatch)
    loud = RegularizedMLPClassifier(**params, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert training_cache_info()["misses"] == before["misses"]
    # Lines come from calls of about half a second: here all in one call.
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("accuracy: " in line and "loss: " in line for line in lines)
    # Calls of a few epochs, and an epoch per call (a callback), train as one call does.
    called = RegularizedMLPClassifier(**params, fit__callbacks=[keras.callbacks.Callback()])
    for other in (loud, called.fit(X, y)):
        for a, b in zip(_weights(quiet), _weights(other)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        assert set(quiet.history_) == set(other.history_) == {"loss", "accuracy"}
        for key in quiet.history_:
            np.testing.assert_allclose(quiet.history_[key], other.history_[key], rtol=1e-6)


def test_keras_callbacks_run_between_the_programs_epochs(data, tmp_path, monkeypatch):
    X, y = data
    _no_keras_fit(monkeypatch)
    log = tmp_path / "log.csv"
    checkpoint = tmp_path / "best.keras"
    seen = []
    callbacks = [
        keras.callbacks.CSVLogger(str(log)),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                          min_delta=10.0),  # every epoch: no 10.0 improvement
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: seen.append(
                (epoch, sorted(logs), float(np.abs(keras_model.model_.layers[1].kernel).sum())))
        ),
    ]
    keras_model = RegularizedMLPClassifier(epochs=4, learning_rate=0.01, random_state=0,
                                           fit__callbacks=callbacks)  # fmt: skip
    keras_model.fit(X, y, validation_data=(X[:30], y[:30]))
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2, 3]
    assert set(seen[0][1]) >= {"accuracy", "loss", "val_accuracy", "val_loss"}
    # The model holds each epoch's weights when the callbacks run.
    assert len({round(total, 6) for _, _, total in seen}) == 4
    rows = log.read_text().splitlines()
    assert len(rows) == 5 and "val_loss" in rows[0]
    assert checkpoint.exists()
    # ReduceLROnPlateau halved the rate after each epoch but the first (which
    # improves on no loss); the program trained with it.
    np.testing.assert_allclose(keras_model.model_.optimizer.learning_rate.numpy(), 0.01 / 8,
                               rtol=1e-6)  # fmt: skip
    slow = RegularizedMLPClassifier(epochs=4, learning_rate=0.01, random_state=0).fit(X, y)
    assert not np.allclose(keras_model.loss_curve_[1:], slow.loss_curve_[1:])


def test_callbacks_that_read_only_the_logs_spare_the_weight_copies(data, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    """Keras' callbacks that read only the logs (and set the learning rate)
    leave the weights in the program between epochs: the fit is the same as
    with a callback that sees the model every epoch."""
    from skreg._engine.model import ModelPlan

    X, y = data
    _no_keras_fit(monkeypatch)

    def callbacks(extra):
        return [keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0),
                keras.callbacks.CSVLogger(str(tmp_path / f"log{len(extra)}.csv")),
                keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                                  min_delta=10.0), *extra]  # fmt: skip

    writes = []
    write = ModelPlan.write
    monkeypatch.setattr(ModelPlan, "write", lambda self, *a, **k: (writes.append(1),
                                                                   write(self, *a, **k)))
    kwargs = dict(epochs=6, learning_rate=0.01, random_state=0)
    light = RegularizedMLPClassifier(**kwargs, fit__callbacks=callbacks([])).fit(X, y)
    assert len(writes) == 1  # the end of the fit only
    seeing = RegularizedMLPClassifier(
        **kwargs, fit__callbacks=callbacks([keras.callbacks.LambdaCallback()])
    ).fit(X, y)
    assert light.n_iter_ == seeing.n_iter_ == 2  # EarlyStopping: no 10.0 improvement
    assert len(writes) == 1 + seeing.n_iter_  # each epoch's weights in the model
    np.testing.assert_allclose(light.model_.optimizer.learning_rate.numpy(), 0.01 / 2)
    np.testing.assert_allclose(light.loss_curve_, seeing.loss_curve_, rtol=1e-6)
    for a, b in zip(_weights(light), _weights(seeing)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_keras_early_stopping_and_terminate_on_nan_stop_the_program(data, monkeypatch):
    X, y = data
    _no_keras_fit(monkeypatch)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                            restore_best_weights=True)  # fmt: skip
    clf = RegularizedMLPClassifier(epochs=60, learning_rate=0.05, random_state=0,
                                   fit__callbacks=[stopper])  # fmt: skip
    clf.fit(X, y, validation_data=(X[:40], y[:40]))
    assert clf.n_iter_ < 60 and stopper.stopped_epoch == clf.n_iter_ - 1
    # The weights are the best epoch's, which Keras restored in the model.
    best = int(np.argmin(clf.history_["val_loss"]))
    assert best == clf.best_epoch_ - 1 < clf.n_iter_ - 1
    X_val = tf.constant(X[:40])
    val_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y[:40], clf.model_(X_val)
    )
    np.testing.assert_allclose(float(val_loss), clf.history_["val_loss"][best], rtol=1e-4)


def test_tensorboard_and_terminate_on_nan_run_on_the_program(data, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")  # Keras' TensorBoard writes through it
    X, y = data
    _no_keras_fit(monkeypatch)
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(tmp_path)),
                 keras.callbacks.TerminateOnNaN()]  # fmt: skip
    clf = RegularizedMLPClassifier(epochs=3, random_state=0, fit__callbacks=callbacks)
    clf.fit(X, y, validation_data=(X[:30], y[:30]))
    assert clf.n_iter_ == 3
    for run in ("train", "validation"):  # epoch_loss and the others, per epoch
        (events,) = (tmp_path / run).glob("events.out.tfevents.*")
        assert events.stat().st_size > 0


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_a_release_whose_internals_moved_trains_the_same_on_the_slower_path(
    data, monkeypatch, optimizer
):
    """skreg's uses of private TensorFlow and Keras API, each as a release
    that moved it: TensorFlow's private modules gone (no idle-pass options,
    no gradient-registry clean-up) and Keras' optimizer slots elsewhere (no
    program, no fused update). The fit falls back to Keras' own fit and
    update and learns the same, without an error."""
    from skreg._backend import optimizers as _optimizers, tensorflow as _tensorflow
    from skreg._engine import model as engine_model

    X, y = data
    params = dict(batch_size=len(y), epochs=8, random_state=0, optimizer=optimizer)
    expected = RegularizedMLPClassifier(**params).fit(X, y)

    def moved(*args):
        raise AttributeError(f"'{optimizer}' object has no attribute '_velocities'")

    monkeypatch.setattr(_tensorflow, "_eager_context", None)
    monkeypatch.setattr(_tensorflow, "_framework_ops", None)
    monkeypatch.setattr(engine_model, "_optimizer_slots", moved)
    monkeypatch.setattr(_optimizers, "_keeps_slots_as_expected", lambda cls: False)
    with pytest.raises(NotOnProgram, match="keeps the optimizer's slots elsewhere"):
        plan_model(expected.model_, X)
    fallback = RegularizedMLPClassifier(**params).fit(X, y)
    assert type(fallback.model_.optimizer).__module__.startswith("keras")  # not skreg's fused
    np.testing.assert_allclose(fallback.history_["loss"], expected.history_["loss"], rtol=1e-4,
                               atol=1e-6)  # fmt: skip
    for a, b in zip(_weights(fallback), _weights(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_the_fused_optimizers_probe_where_keras_keeps_the_slots():
    from skreg._backend import optimizers as _optimizers

    class MovedRMSprop(keras.optimizers.RMSprop):
        """A Keras whose RMSprop keeps its slots under another name."""

        def build(self, var_list):
            super().build(var_list)
            self._slots_of_velocity = self.__dict__.pop("_velocities")

    assert _optimizers._keeps_slots_as_expected(keras.optimizers.RMSprop)
    assert not _optimizers._keeps_slots_as_expected(MovedRMSprop)


@pytest.mark.parametrize(
    "params, reason",
    [
        ({}, None),
        ({"optimizer": "adadelta"}, "the optimizer Adadelta"),
        ({"optimizer": "adam", "optimizer__use_ema": True}, "the optimizer Adam with use_ema=True"),
        ({"optimizer": "rmsprop", "optimizer__centered": True},
         "the optimizer RMSprop with centered=True"),
        ({"compile__jit_compile": False}, "the Keras options compile__jit_compile"),
    ],
)
def test_the_fit_says_what_trained_it_and_why(data, params, reason, capsys):
    X, y = data
    clf = RegularizedMLPClassifier(epochs=2, random_state=0, **params).fit(X, y)
    assert clf.training_path_ == ("program" if reason is None else "keras")
    assert (clf.training_path_reason_ is None) == (reason is None)
    assert reason is None or reason in clf.training_path_reason_
    assert capsys.readouterr().out == ""  # silent at verbose=0
    clf.set_params(verbose=1).fit(X, y)
    said = [line for line in capsys.readouterr().out.splitlines() if "Keras' fit" in line]
    if reason is None:
        assert said == []
    else:  # once, before Keras' progress lines
        assert len(said) == 1 and reason in said[0]
