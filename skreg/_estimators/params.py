"""The estimators' parameters: their constraints, and the parameters routed
to Keras by prefix (skorch's ``optimizer__momentum`` style), checked with
did-you-mean errors."""

import difflib
import inspect
import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from .._backend.tensorflow import keras

__all__ = ["RoutedParamsMixin", "augmentation_constraints", "did_you_mean",
           "network_constraints", "training_constraints"]

# Prefixes of the parameters passed through to Keras, e.g. optimizer__momentum.
_ROUTES = ("optimizer", "compile", "fit")
# Arguments of Model.compile / Model.fit that the estimator sets itself.
_OWNED_COMPILE_ARGS = {"self", "optimizer", "loss", "metrics", "kwargs"}
_OWNED_FIT_ARGS = {
    "self", "x", "y", "batch_size", "epochs", "verbose", "validation_split",
    "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
    "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq",
}  # fmt: skip

network_constraints = {
    "hidden_layer_sizes": ["array-like"],
    "activation": [str],
    "l1": [Interval(numbers.Real, 0, None, closed="left")],
    "l2": [Interval(numbers.Real, 0, None, closed="left")],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    # Keras' GaussianNoise takes a standard deviation up to 1.
    "hidden_noise": [Interval(numbers.Real, 0, 1, closed="both")],
    "max_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "batch_norm": ["boolean"],
}
augmentation_constraints = {
    "input_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "input_noise": [Interval(numbers.Real, 0, None, closed="left")],
    "image_shape": ["array-like", None],
    "image_shift": [Interval(numbers.Real, 0, 1, closed="left")],
    "image_rotation": [Interval(numbers.Real, 0, 180, closed="both")],
    "image_flip": ["boolean"],
}
training_constraints = {
    "optimizer": [str, keras.optimizers.Optimizer, type],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left"), None],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def did_you_mean(word, candidates):
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _argument_names(function):
    return {
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


class RoutedParamsMixin:
    """``get_params``/``set_params`` that keep the routed parameters (any
    ``<route>__<name>`` keyword given to ``__init__`` or ``set_params``),
    and their check against the Keras signatures they go to."""

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
        self._store_extra_params({key: value for key, value in params.items()
                                  if key not in named})  # fmt: skip
        return self

    def _store_extra_params(self, params):
        """Store the keywords beyond the named parameters (the routed ones),
        which fit checks. A name starting or ending with "_" is refused at
        once: stored, it would pass for a private or fitted attribute, hidden
        from get_params and so from fit's check (l2_=0.5 trained with l2=0)."""
        for key, value in params.items():
            if key.startswith("_") or key.endswith("_"):
                raise ValueError(
                    f"Unknown parameter {key!r} of {type(self).__name__}: names that start "
                    "or end with '_' are not parameters (a trailing '_' marks what fit "
                    f"sets).{did_you_mean(key.strip('_'), self._get_param_names())}"
                )
            setattr(self, key, value)

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
                    f"{did_you_mean(key, [*named, *every_key])}"
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
                    f"optimizer__, compile__ or fit__.{did_you_mean(key, every_key)}"
                )
            if name not in allowed[route]:
                target = (
                    f"the {optimizer_class.__name__} optimizer"
                    if route == "optimizer"
                    else f"keras.Model.{route} (or set by skreg itself)"
                )
                raise ValueError(
                    f"Unknown parameter {key!r}: {name!r} is not an option of "
                    f"{target}.{did_you_mean(key, every_key)}"
                )
