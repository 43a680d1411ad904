"""The regularized MLPs' shared fitting: validation, the network and its
optimizer, training (on skreg's program or through Keras' ``Model.fit``),
divergence checks, history and prediction."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .keras_input import make_dataset, n_batches
from .inference import predict_float64
from .._backend.optimizers import fused_optimizer_class
from .params import (
    RoutedParamsMixin,
    augmentation_constraints,
    network_constraints,
    training_constraints,
)
from .rollback import rolled_back_on_failure
from .sklearn_callbacks import CallbackSupportMixin, FitTask, with_callbacks
from .._backend.tensorflow import gradients_released_with, keras, tf
from .._engine.fit import fit_model
from .._engine.regularizers import WeightDecay
from .._engine.model import NotOnProgram, plan_model
from .epoch_hooks import ChainedHooks, HooksAsKerasCallback, KerasEpochHooks
from .interface import shared_program
from ..network import build_mlp, check_augmentation

__all__ = ["PREDICT_BATCH_SIZE", "BaseRegularizedMLP", "checked_sample_weight"]

PREDICT_BATCH_SIZE = 4096


class FitSeeds:
    """The seeds of a fit, from its ``random_state`` (None each: numpy's
    global generator): the validation split, the network's initial weights,
    the batch order and the dropout masks."""

    def __init__(self, split, model, shuffle, dropout):
        self.split, self.model, self.shuffle, self.dropout = split, model, shuffle, dropout


def fit_seeds(random_state):
    """The :class:`FitSeeds` of a fit with ``random_state``. A CV search's
    towers use them too, so that each of its networks learns what the same
    fit in a GridSearchCV over the base estimator learns."""
    if random_state is None:
        return FitSeeds(None, None, None, None)
    rng = check_random_state(random_state)
    return FitSeeds(*(int(s) for s in rng.randint(np.iinfo(np.int32).max, size=4)))


def global_seeds():
    """A batch-order and a dropout seed from numpy's global generator (a fit
    with ``random_state=None``)."""
    return [int(s) for s in np.random.randint(np.iinfo(np.int32).max, size=2)]


class FitJob:
    """A fit made ready to train (:meth:`BaseRegularizedMLP._prepare_fit`):
    the validated, encoded training data, the validation pair (or None),
    the epochs to train and the fit's :class:`FitSeeds`."""

    def __init__(self, X, y, sample_weight, validation, *, epochs, seeds):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.validation = validation
        self.epochs, self.seeds = epochs, seeds


class BaseRegularizedMLP(CallbackSupportMixin, RoutedParamsMixin, BaseEstimator):
    """Shared fitting logic; see the two public estimators for the parameters."""

    _parameter_constraints = {
        **network_constraints,
        **augmentation_constraints,
        **training_constraints,
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        hidden_noise=0.0,
        max_norm=None,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        weight_decay=None,
        batch_size="auto",
        epochs=20,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        random_state=None,
        verbose=0,
        **routed_params,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.l1 = l1
        self.l2 = l2
        self.dropout = dropout
        self.hidden_noise = hidden_noise
        self.max_norm = max_norm
        self.batch_norm = batch_norm
        self.input_dropout = input_dropout
        self.input_noise = input_noise
        self.image_shape = image_shape
        self.image_shift = image_shift
        self.image_rotation = image_rotation
        self.image_flip = image_flip
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        # Stored as given: unknown names are reported by fit, which suggests
        # the closest valid one (scikit-learn's __init__ never validates).
        self._store_extra_params(routed_params)

    # -- the steps of a fit ------------------------------------------------------

    def _resolve_optimizer(self):
        """(optimizer class, base config) from the optimizer parameter."""
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return type(optimizer), optimizer.get_config()
        if isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer):
            return optimizer, {}
        if isinstance(optimizer, str):
            try:
                return type(keras.optimizers.get(optimizer)), {}
            except ValueError:
                raise ValueError(
                    f"Unknown optimizer {optimizer!r}; use a Keras optimizer name "
                    "such as 'rmsprop', 'adam' or 'sgd', or a keras.optimizers.Optimizer."
                ) from None
        raise TypeError(
            "optimizer must be a name, a keras.optimizers.Optimizer class or "
            f"instance; got {optimizer!r}."
        )

    def _initialize_optimizer(self, optimizer_class, config):
        """A new Keras optimizer: never the user's instance, which is left as is."""
        config = {**config, **self._routed_params("optimizer")}
        # A fixed name: Keras otherwise numbers each new optimizer (rmsprop_17),
        # and TensorFlow keeps ~35 kB for every distinct variable name it sees,
        # so each fit's slot variables would stay in memory for good.
        config.setdefault("name", optimizer_class.__name__.lower())
        if self.learning_rate is not None:
            config["learning_rate"] = self.learning_rate
        config = WeightDecay.keras_form(config, self.weight_decay)
        # Same optimizer, same config; RMSprop and Adam update in fused kernels.
        # from_config, not the constructor: it rebuilds a learning-rate schedule
        # that get_config() wrote out as a dict.
        return fused_optimizer_class(optimizer_class).from_config(config)

    def _augmentation(self):
        return {name: getattr(self, name) for name in augmentation_constraints}

    def _initialize_model(self, n_features_in, seed, optimizer):
        model = build_mlp(
            n_features_in,
            self._n_model_outputs(),
            hidden_layer_sizes=tuple(np.atleast_1d(self.hidden_layer_sizes)),
            activation=self.activation,
            l1=self.l1,
            l2=self.l2,
            dropout=self.dropout,
            hidden_noise=self.hidden_noise,
            max_norm=self.max_norm,
            batch_norm=self.batch_norm,
            **self._augmentation(),
            # A sparse Input also takes dense batches, so one network serves
            # both kinds of X (and warm starts that switch between them).
            sparse_input=True,
            random_state=seed,
        )
        model.compile(
            optimizer=optimizer,
            loss=self._keras_loss(),
            metrics=self._keras_metrics(),
            **self._routed_params("compile"),
        )
        # Create the optimizer's slot variables now, eagerly: created inside the
        # first traced train step, each one leaves two tf.cond branch functions
        # in TensorFlow's eager context that no later fit or gc ever frees.
        optimizer.build(model.trainable_variables)
        return model

    def _validate_X(self, X, reset):
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=np.float32,
            reset=reset,
        )
        return _as_canonical_csr(X) if sp.issparse(X) else X

    def _validate_X_y(self, X, y, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            dtype=np.float32,
            multi_output=True,
            y_numeric=not isinstance(self, ClassifierMixin),
            reset=reset,
        )
        if sp.issparse(y):  # a label indicator matrix (MultiLabelBinarizer's sparse_output)
            y = y.toarray()
        return (_as_canonical_csr(X) if sp.issparse(X) else X), y

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "auto":
            # ~20 updates an epoch on small data; the book's 512 on large data.
            return int(np.clip(n_samples // 20, 32, 512))
        return min(self.batch_size, n_samples)

    def _fit(self, X, y, sample_weight, validation_data, *, epochs, incremental, classes=None):
        # A fit that does not complete (bad input, divergence, Ctrl-C) leaves
        # the estimator as it was, so that it never mixes two fits' state.
        with rolled_back_on_failure(self, keep_weights=incremental):
            return self._fit_unguarded(
                X, y, sample_weight, validation_data,
                epochs=epochs, incremental=incremental, classes=classes,
            )  # fmt: skip

    # Inside the rollback, so that callbacks are torn down before a failed
    # fit restores the estimator.
    @with_callbacks
    def _fit_unguarded(
        self, X, y, sample_weight, validation_data, *, epochs, incremental, classes=None
    ):
        job = self._prepare_fit(X, y, sample_weight, validation_data, epochs=epochs,
                                incremental=incremental, classes=classes)  # fmt: skip
        task = FitTask(self, job.X, job.y, job.sample_weight, epochs=epochs)
        history = self._train(
            job.X, job.y, job.sample_weight, job.validation,
            epochs=epochs, seeds=(job.seeds.shuffle, job.seeds.dropout), task=task,
        )  # fmt: skip
        self._finish_fit(history)
        task.end()
        return self

    def _prepare_fit(self, X, y, sample_weight, validation_data, *, epochs, incremental,
                     classes=None):  # fmt: skip
        """Everything of a fit before training: the data validated and
        encoded, the validation rows, and (unless the fit goes on from the
        last) a new network; the :class:`FitJob` to train."""
        first_call = not (incremental and hasattr(self, "model_"))
        optimizer_class, optimizer_config = self._resolve_optimizer()
        self._check_routed_params(optimizer_class)
        X, y = self._validate_X_y(X, y, reset=first_call)
        check_augmentation(X.shape[1], sparse=sp.issparse(X), **self._augmentation())
        if X.shape[0] < 2 and self.early_stopping and validation_data is None:
            raise ValueError("early_stopping needs at least 2 samples to hold some out.")
        y = self._encode_y(y, first_call=first_call, classes=classes)
        sample_weight = self._sample_weight(y, sample_weight, X)
        if sample_weight is not None and not sample_weight.any():
            raise ValueError(
                "Every sample's weight is 0 (sample_weight times class_weight): the loss "
                "is 0 whatever the weights, and nothing would be learned."
            )

        seeds = fit_seeds(self.random_state)
        if validation_data is not None:
            X_val, y_val = self._validate_validation_data(validation_data)
        elif self.early_stopping:
            X, y, sample_weight, X_val, y_val = self._split_validation(
                X, y, sample_weight, seeds.split
            )
        else:
            X_val = y_val = None

        if first_call:
            optimizer = self._initialize_optimizer(optimizer_class, optimizer_config)
            self.model_ = self._initialize_model(X.shape[1], seeds.model, optimizer)
            self.history_ = {}
            self.n_iter_ = 0
        return FitJob(X, y, sample_weight, None if X_val is None else (X_val, y_val),
                      epochs=epochs, seeds=seeds)  # fmt: skip

    def _finish_fit(self, history):
        """Everything of a fit after training: the history recorded, and a
        fit whose loss or weights are not finite refused."""
        self._record_history(history)
        epochs_run = len(history["loss"])
        if not np.isfinite(self.loss_curve_[-1]):
            raise ValueError(
                self._divergence_message(
                    f"the training loss of epoch {epochs_run} is {self.loss_curve_[-1]}"
                )
            )
        # The last step of an epoch can break the weights after its loss was taken.
        if not all(np.isfinite(v.numpy()).all() for v in self.model_.trainable_variables):
            raise ValueError(
                self._divergence_message(f"the weights are not finite after epoch {epochs_run}")
            )

    def _train(self, X, y, sample_weight, validation, *, epochs, seeds, task=None):
        """Train ``model_`` in place; its per-epoch history (Keras' keys)."""
        batch_size = self._resolved_batch_size(X.shape[0])
        try:
            plan, reason = self._program_plan(X), None
        except NotOnProgram as why:  # Keras' fit trains what the program does not
            plan, reason = None, str(why)
            if self.verbose:
                print(f"[{type(self).__name__}] training with Keras' fit, several times slower "
                      f"than skreg's program, which does not cover this fit: {reason}.",
                      flush=True)  # fmt: skip
        self.training_path_ = "program" if plan is not None else "keras"
        self.training_path_reason_ = reason
        try:
            if plan is None:
                return self._train_with_keras(
                    X, y, sample_weight, validation,
                    epochs=epochs, batch_size=batch_size, shuffle_seed=seeds[0], task=task,
                )  # fmt: skip
            shared = shared_program(self)  # a CV search's refit: its program's data
            if seeds[0] is None:  # random_state=None: numpy's global generator
                seeds = global_seeds()
            callbacks = keras_callbacks(self._routed_params("fit").get("callbacks"))
            hooks = ChainedHooks(
                KerasEpochHooks(callbacks, verbose=self.verbose, epochs=epochs,
                                steps=n_batches(X.shape[0], batch_size)),
                task,
            )  # fmt: skip
            return fit_model(
                plan, X, y, sample_weight, validation,
                epochs=epochs, batch_size=batch_size, early_stopping=self.early_stopping,
                patience=self.n_iter_no_change, seeds=[int(s) for s in seeds], hooks=hooks,
                prepared=None if shared is None else shared.prepared,
            )  # fmt: skip
        except tf.errors.OpError as error:
            raise RuntimeError(
                f"TensorFlow failed while training {type(self).__name__}: "
                f"{error.message.strip().splitlines()[0]}"
            ) from None

    def _program_plan(self, X):
        """The plan that trains ``model_`` on skreg's program; NotOnProgram
        saying what the program does not cover."""
        options = self._options_for_keras_fit()
        if options:
            raise NotOnProgram(f"the Keras options {', '.join(options)} (Keras' fit takes them)")
        shared = shared_program(self)
        return plan_model(self.model_, X, like=None if shared is None else shared.structure)

    def _options_for_keras_fit(self):
        """The routed Keras options that only Keras' fit takes: every
        ``compile__`` one, and the ``fit__`` ones but callbacks (which run
        between the program's epochs)."""
        return [f"{route}__{name}" for route in ("compile", "fit")
                for name in self._routed_params(route) if (route, name) != ("fit", "callbacks")]

    def _program_takes_routed_params(self):
        """Whether the routed Keras options leave the fit to the program."""
        return not self._options_for_keras_fit()

    def _train_with_keras(self, X, y, sample_weight, validation, *, epochs, batch_size,
                          shuffle_seed, task=None):  # fmt: skip
        train = make_dataset(
            X, y, sample_weight, batch_size=batch_size, shuffle=True,
            seed=None if shuffle_seed is None else int(shuffle_seed),
        )  # fmt: skip
        validation = (
            None
            if validation is None
            else make_dataset(*validation, batch_size=PREDICT_BATCH_SIZE)
        )
        fit_options = self._routed_params("fit")
        callbacks = [_StopOnNonFiniteLoss(), *keras_callbacks(fit_options.pop("callbacks", None))]
        if task is not None and task.per_epoch:
            callbacks.append(HooksAsKerasCallback(task))
        if self.early_stopping:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=self.n_iter_no_change,
                    restore_best_weights=True,
                )
            )
        # One call into TensorFlow per epoch: Python runs once, not per batch.
        self.model_.steps_per_execution = n_batches(X.shape[0], batch_size)
        with gradients_released_with(self.model_):
            return self.model_.fit(
                train,
                epochs=epochs,
                validation_data=validation,
                callbacks=callbacks,
                shuffle=False,  # the dataset shuffles itself
                verbose=self.verbose,
                **fit_options,
            ).history

    def _divergence_message(self, what):
        learning_rate = (
            "" if self.learning_rate is None else f" (learning_rate={self.learning_rate:g})"
        )
        return (
            f"Training of {type(self).__name__} diverged: {what}. The estimator is left "
            "as it was before this fit. Usual causes: inputs with large values or on "
            "very different scales (standardize them, e.g. with StandardScaler), or too "
            f"large a learning rate{learning_rate}."
        )

    def _sample_weight(self, y, sample_weight, X):
        """The weights of the rows in the loss, or None (all alike)."""
        if sample_weight is not None:
            sample_weight = checked_sample_weight(sample_weight, X)
        return sample_weight

    def _split_validation(self, X, y, sample_weight, seed):
        stratify = y if self._stratify_validation(y) else None
        rows = np.arange(X.shape[0])
        try:
            train_rows, val_rows = train_test_split(
                rows,
                test_size=self.validation_fraction,
                random_state=None if seed is None else int(seed),
                stratify=stratify,
            )
        except ValueError:  # a class too rare to stratify: plain random split
            train_rows, val_rows = train_test_split(
                rows,
                test_size=self.validation_fraction,
                random_state=None if seed is None else int(seed),
            )
        weight = None if sample_weight is None else sample_weight[train_rows]
        return X[train_rows], y[train_rows], weight, X[val_rows], y[val_rows]

    def _validate_validation_data(self, validation_data):
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError(
                "validation_data must be a pair (X_val, y_val)."
            ) from None
        X_val, y_val = self._validate_X_y(X_val, y_val, reset=False)
        return X_val, self._encode_y(y_val, first_call=False, validation=True)

    def _record_history(self, new_history):
        for key, values in new_history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        self.n_iter_ += len(new_history.get("loss", []))
        self.loss_curve_ = list(self.history_.get("loss", []))
        if "val_loss" in self.history_:
            self.validation_loss_curve_ = list(self.history_["val_loss"])
        elif hasattr(self, "validation_loss_curve_"):
            del self.validation_loss_curve_
        curve = self.history_.get("val_loss") or self.loss_curve_
        finite = np.where(np.isfinite(curve), curve, np.inf)
        self.best_epoch_ = int(np.argmin(finite)) + 1
        self.best_loss_ = float(curve[self.best_epoch_ - 1])

    def _raw_predict(self, X):
        """The network's outputs (logits for the classifier), float64.

        Computed in float64 from the trained weights, so that a row gets the
        same output in any batch (see :mod:`skreg._estimators.inference`).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        try:
            return predict_float64(self.model_, X, PREDICT_BATCH_SIZE)
        except tf.errors.OpError as error:
            raise RuntimeError(
                f"TensorFlow failed while predicting: {error.message.strip().splitlines()[0]}"
            ) from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop after the first epoch whose training loss is NaN or infinite."""

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)):
            self.model.stop_training = True


def keras_callbacks(callbacks):
    """``fit__callbacks`` as a list: as Keras' fit, one callback or a list
    (None: none); a TypeError naming anything else."""
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback):
        return [callbacks]
    if isinstance(callbacks, (list, tuple)):
        for callback in callbacks:
            if not isinstance(callback, keras.callbacks.Callback):
                raise TypeError(f"fit__callbacks holds {type(callback).__name__} "
                                f"{callback!r:.60}; it takes keras.callbacks.Callback "
                                "objects.")  # fmt: skip
        return list(callbacks)
    raise TypeError(f"fit__callbacks takes a keras.callbacks.Callback or a list of them; got "
                    f"{type(callbacks).__name__}.")  # fmt: skip


def checked_sample_weight(sample_weight, X):
    """``sample_weight`` as float32 [n_samples], refusing negative weights
    (a negative weight turns the loss into a gain to maximise)."""
    return _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)


def _as_canonical_csr(X):
    """CSR with sorted, unique indices; a copy only when X needs changing."""
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X
