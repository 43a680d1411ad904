"""skreg: regularized neural networks as first-class scikit-learn estimators.

TensorFlow is imported on first use of a name that needs it, so that
``import skreg`` and the text and dataset tools stay fast.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "RegularizedMLPClassifier": "skreg.mlp",
    "RegularizedMLPRegressor": "skreg.mlp",
    "RegularizedMLPClassifierCV": "skreg.search",
    "RegularizedMLPRegressorCV": "skreg.search",
    "FoldEnsembleClassifier": "skreg.ensemble",
    "FoldEnsembleRegressor": "skreg.ensemble",
    "build_mlp": "skreg.network",
    "clear_training_cache": "skreg._engine.cache",
    "MultiHotVectorizer": "skreg.text",
    "plot_learning_curves": "skreg.plotting",
    "plot_search": "skreg.plotting",
    "run_study": "skreg.study",
    "run_search": "skreg.study",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skreg' has no attribute {name!r}")


def __dir__():
    return __all__
