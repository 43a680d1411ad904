"""Regularized multi-layer perceptrons as scikit-learn estimators."""

import contextlib
import copy
import difflib
import inspect
import numbers

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._batching import make_dataset, n_batches
from ._inference import predict_float64
from ._optimizers import fused_optimizer_class
from ._tensorflow import gradients_released_with, keras, tf
from ._training import plan_training, train_in_one_call
from .network import build_mlp, check_augmentation

__all__ = ["RegularizedMLPClassifier", "RegularizedMLPRegressor"]

# Prefixes of the parameters passed through to Keras, e.g. optimizer__momentum.
_ROUTES = ("optimizer", "compile", "fit")
# Arguments of Model.compile / Model.fit that the estimator sets itself.
_OWNED_COMPILE_ARGS = {"self", "optimizer", "loss", "metrics", "kwargs"}
_OWNED_FIT_ARGS = {
    "self", "x", "y", "batch_size", "epochs", "verbose", "validation_split",
    "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
    "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq",
}  # fmt: skip
_PREDICT_BATCH_SIZE = 4096

_network_constraints = {
    "hidden_layer_sizes": ["array-like"],
    "activation": [str],
    "l1": [Interval(numbers.Real, 0, None, closed="left")],
    "l2": [Interval(numbers.Real, 0, None, closed="left")],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "batch_norm": ["boolean"],
}
_augmentation_constraints = {
    "input_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "input_noise": [Interval(numbers.Real, 0, None, closed="left")],
    "image_shape": ["array-like", None],
    "image_shift": [Interval(numbers.Real, 0, 1, closed="left")],
    "image_rotation": [Interval(numbers.Real, 0, 180, closed="both")],
    "image_flip": ["boolean"],
}
_training_constraints = {
    "optimizer": [str, keras.optimizers.Optimizer, type],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _did_you_mean(word, candidates):
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _argument_names(function):
    return {
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


class _BaseRegularizedMLP(BaseEstimator):
    """Shared fitting logic; see the two public estimators for the parameters."""

    _parameter_constraints = {
        **_network_constraints,
        **_augmentation_constraints,
        **_training_constraints,
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
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
        self.batch_norm = batch_norm
        self.input_dropout = input_dropout
        self.input_noise = input_noise
        self.image_shape = image_shape
        self.image_shift = image_shift
        self.image_rotation = image_rotation
        self.image_flip = image_flip
        self.optimizer = optimizer
        self.learning_rate = learning_rate
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
        for key, value in routed_params.items():
            setattr(self, key, value)

    # -- parameters routed to Keras (skorch's optimizer__momentum style) --------

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        # Beyond the named parameters, the extra keywords given to __init__ or
        # set_params: every public attribute that is not a fitted one.
        params.update(
            (key, value)
            for key, value in vars(self).items()
            if not key.startswith("_") and not key.endswith("_") and key not in params
        )
        return params

    def set_params(self, **params):
        named = self._get_param_names()
        super().set_params(**{key: value for key, value in params.items() if key in named})
        # Like __init__: other keywords are stored, and fit reports unknown ones.
        for key, value in params.items():
            if key not in named:
                setattr(self, key, value)
        return self

    def _routed_params(self, route):
        prefix = route + "__"
        return {
            key[len(prefix) :]: value
            for key, value in self.get_params(deep=False).items()
            if key.startswith(prefix)
        }

    def _check_routed_params(self, optimizer_class):
        allowed = {
            "optimizer": _argument_names(optimizer_class.__init__) - {"self", "learning_rate"},
            "compile": _argument_names(keras.Model.compile) - _OWNED_COMPILE_ARGS,
            "fit": _argument_names(keras.Model.fit) - _OWNED_FIT_ARGS,
        }
        every_key = {f"{route}__{name}" for route in _ROUTES for name in allowed[route]}
        named = self._get_param_names()
        for key in self.get_params(deep=False):
            if key in named:
                continue
            if "__" not in key:
                raise ValueError(
                    f"Unknown parameter {key!r} of {type(self).__name__}."
                    f"{_did_you_mean(key, [*named, *every_key])}"
                )
            route, _, name = key.partition("__")
            if key == "optimizer__learning_rate":
                raise ValueError(
                    "Set the learning rate with the parameter learning_rate, not "
                    "optimizer__learning_rate."
                )
            if route not in _ROUTES:
                raise ValueError(
                    f"Unknown parameter {key!r}: routed parameters start with "
                    f"optimizer__, compile__ or fit__.{_did_you_mean(key, every_key)}"
                )
            if name not in allowed[route]:
                target = (
                    f"the {optimizer_class.__name__} optimizer"
                    if route == "optimizer"
                    else f"keras.Model.{route} (or set by skreg itself)"
                )
                raise ValueError(
                    f"Unknown parameter {key!r}: {name!r} is not an option of "
                    f"{target}.{_did_you_mean(key, every_key)}"
                )

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
        # Same optimizer, same config; RMSprop and Adam update in fused kernels.
        # from_config, not the constructor: it rebuilds a learning-rate schedule
        # that get_config() wrote out as a dict.
        return fused_optimizer_class(optimizer_class).from_config(config)

    def _augmentation(self):
        return {name: getattr(self, name) for name in _augmentation_constraints}

    def _initialize_model(self, n_features_in, seed, optimizer):
        model = build_mlp(
            n_features_in,
            self._n_model_outputs(),
            hidden_layer_sizes=tuple(np.atleast_1d(self.hidden_layer_sizes)),
            activation=self.activation,
            l1=self.l1,
            l2=self.l2,
            dropout=self.dropout,
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
        return (_as_canonical_csr(X) if sp.issparse(X) else X), y

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "auto":
            # ~20 updates an epoch on small data; the book's 512 on large data.
            return int(np.clip(n_samples // 20, 32, 512))
        return min(self.batch_size, n_samples)

    def _fit(self, X, y, sample_weight, validation_data, *, epochs, incremental, classes=None):
        # A fit that does not complete (bad input, divergence, Ctrl-C) leaves
        # the estimator as it was, so that it never mixes two fits' state.
        with _rolled_back_on_failure(self, keep_weights=incremental):
            return self._fit_unguarded(
                X, y, sample_weight, validation_data,
                epochs=epochs, incremental=incremental, classes=classes,
            )  # fmt: skip

    def _fit_unguarded(
        self, X, y, sample_weight, validation_data, *, epochs, incremental, classes=None
    ):
        first_call = not (incremental and hasattr(self, "model_"))
        optimizer_class, optimizer_config = self._resolve_optimizer()
        self._check_routed_params(optimizer_class)
        X, y = self._validate_X_y(X, y, reset=first_call)
        check_augmentation(X.shape[1], sparse=sp.issparse(X), **self._augmentation())
        if X.shape[0] < 2 and self.early_stopping and validation_data is None:
            raise ValueError("early_stopping needs at least 2 samples to hold some out.")
        y = self._encode_y(y, first_call=first_call, classes=classes)
        sample_weight = self._sample_weight(y, sample_weight, X)

        rng = check_random_state(self.random_state)
        split_seed, model_seed, shuffle_seed, dropout_seed = (
            rng.randint(np.iinfo(np.int32).max, size=4)
            if self.random_state is not None
            else (None, None, None, None)
        )
        if validation_data is not None:
            X_val, y_val = self._validate_validation_data(validation_data)
        elif self.early_stopping:
            X, y, sample_weight, X_val, y_val = self._split_validation(
                X, y, sample_weight, split_seed
            )
        else:
            X_val = y_val = None

        if first_call:
            self.model_ = self._initialize_model(
                X.shape[1], model_seed, self._initialize_optimizer(optimizer_class, optimizer_config)
            )
            self.history_ = {}
            self.n_iter_ = 0

        history = self._train(
            X, y, sample_weight, None if X_val is None else (X_val, y_val),
            epochs=epochs, seeds=(shuffle_seed, dropout_seed),
        )  # fmt: skip
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
        return self

    def _train(self, X, y, sample_weight, validation, *, epochs, seeds):
        """Train ``model_`` in place; its per-epoch history (Keras' keys)."""
        batch_size = self._resolved_batch_size(X.shape[0])
        plan = None
        if self._trains_in_one_call():
            plan = plan_training(
                self.model_,
                sparse=sp.issparse(X),
                with_accuracy=self._keras_metrics() is not None,
                validation_sparse=None if validation is None else sp.issparse(validation[0]),
            )
        try:
            if plan is None:
                return self._train_with_keras(
                    X, y, sample_weight, validation,
                    epochs=epochs, batch_size=batch_size, shuffle_seed=seeds[0],
                )  # fmt: skip
            if seeds[0] is None:  # random_state=None: numpy's global generator
                seeds = np.random.randint(np.iinfo(np.int32).max, size=2)
            return train_in_one_call(
                plan, X, y, sample_weight, validation,
                epochs=epochs, batch_size=batch_size, early_stopping=self.early_stopping,
                patience=self.n_iter_no_change, seeds=[int(s) for s in seeds],
            )  # fmt: skip
        except tf.errors.OpError as error:
            raise RuntimeError(
                f"TensorFlow failed while training {type(self).__name__}: "
                f"{error.message.strip().splitlines()[0]}"
            ) from None

    def _trains_in_one_call(self):
        """Whether nothing asks for Python after each epoch (progress output,
        callbacks) or for Keras-only options, so the traced program can train."""
        return not self.verbose and not (
            self._routed_params("fit") or self._routed_params("compile")
        )

    def _train_with_keras(self, X, y, sample_weight, validation, *, epochs, batch_size,
                          shuffle_seed):  # fmt: skip
        train = make_dataset(
            X, y, sample_weight, batch_size=batch_size, shuffle=True,
            seed=None if shuffle_seed is None else int(shuffle_seed),
        )  # fmt: skip
        validation = (
            None
            if validation is None
            else make_dataset(*validation, batch_size=_PREDICT_BATCH_SIZE)
        )
        fit_options = self._routed_params("fit")
        callbacks = [_StopOnNonFiniteLoss(), *(fit_options.pop("callbacks", None) or [])]
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
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
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
        same output in any batch (see :mod:`skreg._inference`).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        try:
            return predict_float64(self.model_, X, _PREDICT_BATCH_SIZE)
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


def _model_variables(model):
    optimizer_variables = model.optimizer.variables if model.optimizer is not None else []
    return [*model.variables, *optimizer_variables]


@contextlib.contextmanager
def _rolled_back_on_failure(estimator, *, keep_weights):
    """Put ``estimator`` back as it was if the block raises (or is interrupted).

    Attributes are restored as a whole; the history, which a fit extends in
    place, from a copy; and when the fit trains the existing network further
    (``keep_weights``: warm start, partial_fit), its weights and optimizer
    state from a copy. A fit from scratch builds a new network, so the old
    one needs no copy.
    """
    attributes = dict(vars(estimator))
    history = copy.deepcopy(attributes.get("history_"))
    model = attributes.get("model_") if keep_weights else None
    variables = _model_variables(model) if model is not None else []
    values = [variable.numpy() for variable in variables]
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(attributes)
        if history is not None:
            estimator.history_ = history
        for variable, value in zip(variables, values):
            variable.assign(value)
        raise


def _as_canonical_csr(X):
    """CSR with sorted, unique indices; a copy only when X needs changing."""
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(16, 16)
        Units of each hidden layer: the network's capacity.
    activation : str, default="relu"
        Activation of the hidden layers (any Keras activation name).
    l1 : float, default=0.0
        L1 penalty factor on the hidden layers' kernels (``l1 * sum|w|``).
    l2 : float, default=0.0
        L2 penalty factor on the hidden layers' kernels (``l2 * sum w**2``).
        ``l1`` and ``l2`` both positive gives the elastic net.
    dropout : float in [0, 1), default=0.0
        Fraction of each hidden layer's outputs dropped while training.
    batch_norm : bool, default=False
        ``BatchNormalization`` between each hidden ``Dense`` and its activation.
    input_dropout : float in [0, 1), default=0.0
        Data augmentation: probability of dropping each input value (on
        multi-hot text, each word of a row), drawn afresh for every training
        batch and never at prediction. Kept values are scaled by
        ``1 / (1 - input_dropout)``, as Keras' ``Dropout`` does, so the
        expected input is unchanged. Sparse input stays sparse.
    input_noise : float, default=0.0
        Data augmentation: standard deviation of Gaussian noise added to the
        inputs of every training batch (Keras' ``GaussianNoise``). On sparse
        input only the stored values get noise; the other zeros stay zero.
    image_shape : tuple of int or None, default=None
        For features that are the pixels of images: ``(height, width)`` or
        ``(height, width, channels)`` (e.g. ``(8, 8)`` for scikit-learn's
        digits), in row-major order; needed by the three options below.
    image_shift : float in [0, 1), default=0.0
        Data augmentation: largest random shift of the images, as a fraction
        of their height and width (Keras' ``RandomTranslation``; zeros fill in).
    image_rotation : float in [0, 180], default=0.0
        Data augmentation: largest random rotation, in degrees (Keras'
        ``RandomRotation``; zeros fill in).
    image_flip : bool, default=False
        Data augmentation: flip half the images left-right (Keras'
        ``RandomFlip``). Image transforms need dense input.
    optimizer : str, keras.optimizers.Optimizer class or instance, default="rmsprop"
        The optimizer. An instance is copied through its config, never changed.
        Its other options are set with routed parameters such as
        ``optimizer__momentum=0.9`` (grid-searchable like any parameter).
        Keras' RMSprop and Adam run as subclasses that apply the same update
        in one fused TensorFlow kernel per variable (faster; equal results).
    learning_rate : float or None, default=None
        Step size; ``None`` keeps the optimizer's own (1e-3 for rmsprop and adam).
        Training stops at the first epoch whose loss is not finite and ``fit``
        raises a ``ValueError`` (too large a step, or unscaled inputs).
    batch_size : int or "auto", default="auto"
        Samples per gradient step. ``"auto"`` is ``n_samples // 20`` clipped to
        [32, 512]: about 20 steps an epoch on small data, 512 (the book's
        value) on large data.
    epochs : int, default=20
        Passes over the training data (each call of ``fit``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        the classifier), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, and restore the weights of the best epoch.
        With ``validation_data`` passed to ``fit``, that data is monitored instead.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=5
        Epochs without improvement of the validation loss before stopping.
    warm_start : bool, default=False
        Continue training the fitted network on ``fit`` instead of starting anew.
        A ``fit`` or ``partial_fit`` that does not complete (an error, a
        diverging loss, ``KeyboardInterrupt``) leaves the estimator exactly as
        it was before the call: unfitted after a first fit, otherwise with the
        previous network, weights, optimizer state and history.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout masks, batch order and validation split:
        two fits with the same integer give identical predictions. TensorFlow's
        global state (global seed, op determinism) is never changed.
    verbose : int, default=0
        0 is silent, 1 shows Keras' progress bar, 2 one line an epoch.
    **routed_params
        Keras options, by prefix: ``optimizer__<name>`` (an argument of the
        optimizer class), ``compile__<name>`` (of ``keras.Model.compile``, e.g.
        ``compile__jit_compile``), ``fit__callbacks`` (extra Keras callbacks).
        A misspelled name is reported with the closest valid one.

    Attributes
    ----------
    model_ : keras.Model
        The trained network (built by :func:`skreg.build_mlp`). The estimator
        predicts from its weights in float64, so that a row gets the same
        output in any batch; ``model_.predict`` computes in float32 and may
        differ from that in the 7th digit.
    history_ : dict of str to list of float
        Per-epoch values: ``loss`` and, with validation data, ``val_loss``
        (plus ``accuracy``/``val_accuracy`` for the classifier). Losses
        include the weight penalties, as in Keras.
    loss_curve_ : list of float
        The training loss of each epoch.
    validation_loss_curve_ : list of float
        The validation loss of each epoch; only set when there was validation data.
    best_epoch_ : int
        1-based epoch of the lowest validation loss (training loss without
        validation data).
    best_loss_ : float
        That lowest loss.
    n_iter_ : int
        Epochs run, summed over warm-started fits and ``partial_fit`` calls.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Names of the features, when X had string column names.
"""


_NOTES_DOC = """
    Notes
    -----
    A fit runs in one call into TensorFlow: a training program traced once
    per network structure in the process (see
    :func:`skreg.clear_training_cache`) runs every epoch, batch, validation
    pass and early-stopping decision, and what a search varies (``l1``,
    ``l2``, ``dropout``, ``learning_rate``, the optimizer's numbers,
    ``epochs``, ``batch_size``, ``random_state``, sample and class weights,
    and the values of ``input_dropout`` and ``input_noise``) are its
    run-time inputs, so the fits of a grid search after the first cost no
    tracing (switching input dropout or noise on or off is another
    structure). Keras' ``Model.fit`` trains instead, an epoch per call,
    when something needs Python after each epoch (``verbose > 0``,
    ``fit__`` options such as callbacks) or the program does not cover it
    (image transforms, ``compile__`` options, optimizers other than RMSprop,
    Adam and SGD, learning-rate schedules, clipping, weight decay). Both
    compute the same updates (tested to float32 rounding); their random
    streams (batch order, dropout masks) differ.
"""


class RegularizedMLPClassifier(ClassifierMixin, _BaseRegularizedMLP):
    __doc__ = (
        """A multi-layer perceptron classifier with the textbook defences
    against overfitting as hyperparameters: capacity, L1/L2 weight penalties,
    dropout, batch normalization and early stopping.

    It is a Keras 3 network (TensorFlow backend) behind scikit-learn's API:
    binary, multiclass and multilabel targets with labels of any type,
    dense or scipy sparse input (kept sparse), ``sample_weight`` and
    ``class_weight``.
"""
        + _PARAMETERS_DOC.replace(
            "    early_stopping :",
            """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    early_stopping :""",
        )
        + """    classes_ : ndarray or list of ndarray
        The class labels (for multilabel targets, the label indices).
"""
        + _NOTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skreg import RegularizedMLPClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(),
    ...                     RegularizedMLPClassifier(l2=1e-3, dropout=0.2, random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """
    )

    _parameter_constraints = {
        **_BaseRegularizedMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        batch_size="auto",
        epochs=20,
        class_weight=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        random_state=None,
        verbose=0,
        **routed_params,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            l1=l1,
            l2=l2,
            dropout=dropout,
            batch_norm=batch_norm,
            input_dropout=input_dropout,
            input_noise=input_noise,
            image_shape=image_shape,
            image_shift=image_shift,
            image_rotation=image_rotation,
            image_flip=image_flip,
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            **routed_params,
        )
        self.class_weight = class_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the network for ``epochs`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; scipy sparse input stays sparse.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.
        validation_data : tuple (X_val, y_val), default=None
            Data scored after each epoch (``val_loss``, ``val_accuracy`` in
            ``history_``), as in Keras; monitored by early stopping.

        Returns
        -------
        self : RegularizedMLPClassifier
        """
        return self._fit(
            X, y, sample_weight, validation_data, epochs=self.epochs, incremental=self.warm_start
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call unless ``y`` is a
            multilabel indicator matrix. Later calls may omit it; if given,
            it must be the same classes (a ``ValueError`` otherwise).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : RegularizedMLPClassifier
        """
        if not hasattr(self, "model_") and classes is None:
            if type_of_target(y) != "multilabel-indicator":
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(all the labels the classifier will see)."
                )
        if hasattr(self, "model_") and classes is not None and not self._multilabel:
            # As scikit-learn's partial_fit: the classes are fixed by the first call.
            if not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()!r} differs from the classes of "
                    f"the first call to partial_fit, {self.classes_.tolist()!r}."
                )
        return self._fit(
            X, y, sample_weight, None, epochs=1, incremental=True, classes=classes
        )

    def _encode_y(self, y, *, first_call, classes=None, validation=False):
        if first_call:
            target_type = type_of_target(y, input_name="y")
            if target_type == "multilabel-indicator":
                self._multilabel = True
                self.classes_ = np.arange(y.shape[1])
                return np.asarray(y, dtype=np.float32)
            self._multilabel = False
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            self._label_encoder = LabelEncoder().fit(y if classes is None else classes)
            self.classes_ = self._label_encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes, but "
                    f"the data contains only one class: {self.classes_[0]!r}."
                )
        if self._multilabel:
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1] if y.ndim == 2 else 1} label columns; the "
                    f"classifier was fitted with {len(self.classes_)}."
                )
            return np.asarray(y, dtype=np.float32)
        y = column_or_1d(y, warn=True)
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            where = "validation_data" if validation else "y"
            raise ValueError(
                f"{where} contains labels not seen in the first fit: {unseen.tolist()!r}; "
                f"known classes are {self.classes_.tolist()!r}."
            )
        return self._label_encoder.transform(y).astype(np.int32)

    def _sample_weight(self, y, sample_weight, X):
        sample_weight = super()._sample_weight(y, sample_weight, X)
        if self.class_weight is None:
            return sample_weight
        class_weight = self.class_weight
        if isinstance(class_weight, dict) and not self._multilabel:
            # Keys are original labels; y is already encoded to 0..k-1.
            class_weight = {
                code: class_weight.get(label, 1.0) for code, label in enumerate(self.classes_)
            }
        weights = compute_sample_weight(class_weight, y).astype(np.float32)
        return weights if sample_weight is None else weights * sample_weight

    def _stratify_validation(self, y):
        return not self._multilabel

    def _n_model_outputs(self):
        if self._multilabel or len(self.classes_) > 2:
            return len(self.classes_)
        return 1

    def _keras_loss(self):
        if self._n_model_outputs() == 1 or self._multilabel:
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def _keras_metrics(self):
        if self._n_model_outputs() == 1 or self._multilabel:
            return [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def decision_function(self, X):
        """Logits of the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For binary targets, the log-odds of ``classes_[1]``; otherwise one
            column per class (multiclass: unnormalized log-probabilities).
        """
        scores = self._raw_predict(X)
        return scores.ravel() if self._n_model_outputs() == 1 and not self._multilabel else scores

    def predict_proba(self, X):
        """Probability of each class, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self._raw_predict(X)
        if self._multilabel:
            return expit(scores)
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels (a 0/1 indicator matrix for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        scores = self._raw_predict(X)
        if self._multilabel:
            return (scores > 0).astype(np.int64)
        if scores.shape[1] == 1:
            return self.classes_[(scores[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class RegularizedMLPRegressor(RegressorMixin, _BaseRegularizedMLP):
    __doc__ = (
        """A multi-layer perceptron regressor with the textbook defences
    against overfitting as hyperparameters: capacity, L1/L2 weight penalties,
    dropout, batch normalization and early stopping.

    It is a Keras 3 network (TensorFlow backend) behind scikit-learn's API:
    single or multi-output targets, dense or scipy sparse input (kept sparse).
    Targets are not scaled: scale them (e.g. with
    ``TransformedTargetRegressor``) when they are far from unit size.
"""
        + _PARAMETERS_DOC.replace(
            "    early_stopping :",
            """    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        The loss minimised.
    early_stopping :""",
        )
        + """    n_outputs_ : int
        Number of outputs (target columns).
"""
        + _NOTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skreg import RegularizedMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = RegularizedMLPRegressor(hidden_layer_sizes=(32,), learning_rate=0.01,
    ...                               epochs=5, random_state=0).fit(X, y / 100)
    >>> reg.predict(X[:2]).shape
    (2,)
    """
    )

    _parameter_constraints = {
        **_BaseRegularizedMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber"})],
    }
    _KERAS_LOSSES = {
        "squared_error": keras.losses.MeanSquaredError,
        "absolute_error": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(16, 16),
        activation="relu",
        l1=0.0,
        l2=0.0,
        dropout=0.0,
        batch_norm=False,
        input_dropout=0.0,
        input_noise=0.0,
        image_shape=None,
        image_shift=0.0,
        image_rotation=0.0,
        image_flip=False,
        optimizer="rmsprop",
        learning_rate=None,
        batch_size="auto",
        epochs=20,
        loss="squared_error",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        random_state=None,
        verbose=0,
        **routed_params,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            l1=l1,
            l2=l2,
            dropout=dropout,
            batch_norm=batch_norm,
            input_dropout=input_dropout,
            input_noise=input_noise,
            image_shape=image_shape,
            image_shift=image_shift,
            image_rotation=image_rotation,
            image_flip=image_flip,
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            **routed_params,
        )
        self.loss = loss

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the network for ``epochs`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; scipy sparse input stays sparse.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.
        validation_data : tuple (X_val, y_val), default=None
            Data scored after each epoch (``val_loss`` in ``history_``), as in
            Keras; monitored by early stopping.

        Returns
        -------
        self : RegularizedMLPRegressor
        """
        return self._fit(
            X, y, sample_weight, validation_data, epochs=self.epochs, incremental=self.warm_start
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : RegularizedMLPRegressor
        """
        return self._fit(X, y, sample_weight, None, epochs=1, incremental=True)

    def _encode_y(self, y, *, first_call, classes=None, validation=False):
        with np.errstate(over="ignore"):
            y32 = np.asarray(y, dtype=np.float32)
        if not np.isfinite(y32).all():
            raise ValueError(
                f"{'validation_data' if validation else 'y'} has values too large for "
                f"float32 (largest magnitude {np.max(np.abs(y)):.3g}); scale the targets, "
                "e.g. with sklearn.compose.TransformedTargetRegressor."
            )
        y = y32
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first_call:
            self.n_outputs_ = n_outputs
        elif n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} output columns; the regressor was fitted with "
                f"{self.n_outputs_}."
            )
        return y.reshape(-1, self.n_outputs_)

    def _stratify_validation(self, y):
        return False

    def _n_model_outputs(self):
        return self.n_outputs_

    def _keras_loss(self):
        return self._KERAS_LOSSES[self.loss]()

    def _keras_metrics(self):
        return None

    def predict(self, X):
        """Predicted target values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        outputs = self._raw_predict(X)
        return outputs.ravel() if self.n_outputs_ == 1 else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
