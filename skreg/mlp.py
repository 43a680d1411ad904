"""Regularized multi-layer perceptrons as scikit-learn estimators."""

import numbers

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ._estimators.base import BaseRegularizedMLP
from ._estimators.docs import NOTES_DOC, PARAMETERS_DOC
from ._engine.regularizers import LabelSmoothing
from ._backend.losses import PoissonLogLink
from ._backend.tensorflow import keras

__all__ = ["RegularizedMLPClassifier", "RegularizedMLPRegressor"]


class RegularizedMLPClassifier(ClassifierMixin, BaseRegularizedMLP):
    __doc__ = (
        """A multi-layer perceptron classifier with the textbook defences
    against overfitting as hyperparameters: capacity, L1/L2 weight penalties,
    dropout, batch normalization and early stopping.

    It is a Keras 3 network (TensorFlow backend) behind scikit-learn's API:
    binary, multiclass and multilabel targets with labels of any type,
    dense or scipy sparse input (kept sparse), ``sample_weight`` and
    ``class_weight``.
"""
        + PARAMETERS_DOC.replace(
            "    early_stopping :",
            """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy (Keras' ``label_smoothing``):
        the training targets move this fraction of the way to the uniform
        distribution (binary: 0/1 become ``s/2`` and ``1 - s/2``), which
        keeps the network from growing ever more confident. The reported
        losses include it; predictions and ``predict_proba`` do not change
        meaning.
    early_stopping :""",
        )
        + """    classes_ : ndarray or list of ndarray
        The class labels (for multilabel targets, the label indices).
"""
        + NOTES_DOC
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
        **BaseRegularizedMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
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
        class_weight=None,
        label_smoothing=0.0,
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
            hidden_noise=hidden_noise,
            max_norm=max_norm,
            batch_norm=batch_norm,
            input_dropout=input_dropout,
            input_noise=input_noise,
            image_shape=image_shape,
            image_shift=image_shift,
            image_rotation=image_rotation,
            image_flip=image_flip,
            optimizer=optimizer,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
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
        self.label_smoothing = label_smoothing

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
            unknown = [label for label in class_weight if label not in set(self.classes_)]
            if unknown:  # as scikit-learn's compute_class_weight
                raise ValueError(
                    f"class_weight has weights for {unknown!r}, which are not classes of "
                    f"y; the classes are {self.classes_.tolist()!r}."
                )
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
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return LabelSmoothing.keras_form(loss, self.label_smoothing)

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


class RegularizedMLPRegressor(RegressorMixin, BaseRegularizedMLP):
    __doc__ = (
        """A multi-layer perceptron regressor with the textbook defences
    against overfitting as hyperparameters: capacity, L1/L2 weight penalties,
    dropout, batch normalization and early stopping.

    It is a Keras 3 network (TensorFlow backend) behind scikit-learn's API:
    single or multi-output targets, dense or scipy sparse input (kept sparse).
    Targets are not scaled: scale them (e.g. with
    ``TransformedTargetRegressor``) when they are far from unit size.
"""
        + PARAMETERS_DOC.replace(
            "    early_stopping :",
            """    loss : {"squared_error", "absolute_error", "huber", "poisson"}, \
default="squared_error"
        The loss minimised. ``"poisson"`` is the Poisson deviance with a log
        link, for counts and rates (targets must be >= 0): the network's
        outputs are log-rates, the predictions their exponential, as
        ``MLPRegressor(loss="poisson")`` and ``PoissonRegressor`` have it.
    early_stopping :""",
        )
        + """    n_outputs_ : int
        Number of outputs (target columns).
"""
        + NOTES_DOC
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
        **BaseRegularizedMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber", "poisson"})],
    }
    _KERAS_LOSSES = {
        "squared_error": keras.losses.MeanSquaredError,
        "absolute_error": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
        "poisson": PoissonLogLink,
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
            hidden_noise=hidden_noise,
            max_norm=max_norm,
            batch_norm=batch_norm,
            input_dropout=input_dropout,
            input_noise=input_noise,
            image_shape=image_shape,
            image_shift=image_shift,
            image_rotation=image_rotation,
            image_flip=image_flip,
            optimizer=optimizer,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
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
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(
                f"loss='poisson' needs targets >= 0 (counts or rates); "
                f"{'validation_data' if validation else 'y'} has negative values "
                f"(the smallest is {y.min():.6g})."
            )
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
        predictions = self._predictions(self._raw_predict(X))
        return predictions.ravel() if self.n_outputs_ == 1 else predictions

    def _predictions(self, outputs):
        """The predictions from the network's outputs (log-rates for Poisson)."""
        return np.exp(outputs) if self.loss == "poisson" else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
