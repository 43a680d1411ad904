"""The regularization study of the Keras book (chapter 4.4) and the penalty search.

:func:`run_study` trains one network per defence against overfitting with the
same data, epochs, batch size and optimizer, validating after every epoch,
and returns the per-variant table and learning curves. :func:`run_search`
picks the penalty by stratified cross-validation in a Pipeline.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch

from .datasets import load_imdb
from .text import MultiHotVectorizer

__all__ = ["VARIANTS", "run_search", "run_study"]

# The book's networks: 16-16 ReLU units, sigmoid output, rmsprop; each variant
# changes one thing. Batch normalization is the LG Aimers notes' addition;
# token dropout (data augmentation) skreg's.
VARIANTS = {
    "original": {},
    "smaller": {"hidden_layer_sizes": (6, 6)},
    "bigger": {"hidden_layer_sizes": (1024, 1024)},
    "l2": {"l2": 1e-3},
    "l1": {"l1": 1e-4},
    "l1_l2": {"l1": 1e-4, "l2": 1e-4},
    "dropout": {"dropout": 0.5},
    "batch_norm": {"batch_norm": True},
    # Data augmentation for bag-of-words text: each word of a review dropped
    # at random, afresh every batch. 0.4 from a sweep of 0.2-0.6 over two
    # seeds (benchmarks/token_dropout_sweep.py, README): the knee, where the
    # final validation loss has fallen to 0.41x the original's (0.39x at most
    # beyond) while the best validation loss stays within 0.001 of it; from
    # 0.5 on the best loss rises and comes epochs later.
    "token_dropout": {"input_dropout": 0.4},
    # The modern defences beside the book's, each picked from a sweep on
    # IMDB (20 epochs of 512, validated on the test reviews; final val_loss
    # against the original's 0.790):
    # - decoupled weight decay, AdamW's: each step takes weight_decay *
    #   learning_rate of every weight, so with Adam's 1e-3 over ~1,000 steps
    #   AdamW's default 0.004 does nothing (0.915); 0.5: 0.647, 1: 0.513,
    #   2: 0.355, with the best val_loss unchanged (0.289-0.292);
    "weight_decay": {"optimizer": "adamw", "weight_decay": 2.0},
    # - max-norm with dropout 0.5 (the dropout paper's pairing): a norm of
    #   3: 0.499, 2: 0.404 with the lowest best val_loss of all (0.2815),
    #   1: 0.312 (best 0.2885, at epoch 8); dropout alone ends at 0.594;
    "max_norm": {"dropout": 0.5, "max_norm": 2.0},
    # - label smoothing 0.1: 0.479, 0.2: 0.522. Its losses include the
    #   smoothing (Keras reports them so), which raises their floor: its
    #   best val_loss (0.394) is not comparable with the others'.
    "label_smoothing": {"label_smoothing": 0.1},
    # - Gaussian noise on the hidden layers' outputs (Keras' GaussianNoise,
    #   at most 1): 0.5: 0.498, 0.7: 0.427, 1: 0.360 (best 0.2816, epoch 5);
    #   with dropout 0.5 beside it, 0.5: 0.336, 1: 0.285 (best 0.2794, at
    #   epoch 16, validation and training loss 0.006 apart).
    "hidden_noise": {"hidden_noise": 1.0},
}
VARIANT_LABELS = {
    "original": "original (16-16)",
    "smaller": "smaller (6-6)",
    "bigger": "bigger (1024-1024)",
    "l2": "L2 (1e-3)",
    "l1": "L1 (1e-4)",
    "l1_l2": "L1+L2 (1e-4 each)",
    "dropout": "dropout (0.5)",
    "batch_norm": "batch normalization",
    "token_dropout": "token dropout (0.4)",
    "weight_decay": "weight decay (AdamW, 2.0)",
    "max_norm": "max-norm (2) + dropout (0.5)",
    "label_smoothing": "label smoothing (0.1)",
    "hidden_noise": "hidden noise (1.0)",
}
# The book ran Keras 2, whose RMSprop divides by sqrt(v) + 1e-7; Keras 3 divides
# by sqrt(v + epsilon), which with its default 1e-7 floors the denominator at
# 3e-4 and slows the rarely-updated weights of rare words. epsilon=1e-14
# restores the book's floor (measured: training loss 0.0147 at epoch 20, the
# book's 0.0151; Keras 3's default gives 0.030).
BASE_NETWORK = {"hidden_layer_sizes": (16, 16), "optimizer": "rmsprop",
                "optimizer__epsilon": 1e-14}  # fmt: skip
# Per data set: the book's settings for IMDB; a batch size that gives digits'
# ~1,200 training images enough steps an epoch.
DATASET_DEFAULTS = {
    "imdb": {"epochs": 20, "batch_size": 512},
    "digits": {"epochs": 20, "batch_size": 32},
}
_QUICK = {"n_train": 5000, "n_validation": 5000, "epochs": 6}
DEFAULT_SEARCH_GRID = {"l2": [0.0, 1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.5]}


def load_study_data(dataset="imdb", *, validation="test", quick=False, data_home=None,
                    max_tokens=10_000, random_state=0):  # fmt: skip
    """Training and validation data for the study, features ready to train on.

    IMDB reviews are multi-hot encoded over the ``max_tokens`` most frequent
    words of the training reviews (the book's ``vectorize_sequences``);
    digits are scaled to [0, 1].

    Returns
    -------
    data : Bunch
        ``X_train, y_train, X_val, y_val`` and ``description``.
    """
    if validation not in ("test", "holdout"):
        raise ValueError(f"validation must be 'test' or 'holdout', got {validation!r}.")
    if dataset == "imdb":
        train = load_imdb("train", data_home=data_home)
        texts, y = train.data, train.target
        if validation == "test":
            test = load_imdb("test", data_home=data_home)
            val_texts, y_val = test.data, test.target
        else:  # the book's other set-up: 10,000 training reviews held out
            texts, val_texts, y, y_val = train_test_split(
                texts, y, test_size=10_000, stratify=y, random_state=random_state
            )
        if quick:
            texts, y = texts[: _QUICK["n_train"]], y[: _QUICK["n_train"]]
            val_texts, y_val = val_texts[: _QUICK["n_validation"]], y_val[: _QUICK["n_validation"]]
        vectorizer = MultiHotVectorizer(max_tokens=max_tokens)
        X_train = vectorizer.fit_transform(texts)
        X_val = vectorizer.transform(val_texts)
        description = (
            f"IMDB reviews, multi-hot over {X_train.shape[1]:,} words: {len(y):,} training, "
            f"{len(y_val):,} validation ({'test set' if validation == 'test' else 'held out'})"
        )
    elif dataset == "digits":
        digits = load_digits()
        X_train, X_val, y, y_val = train_test_split(
            digits.data / 16.0, digits.target, test_size=0.3, stratify=digits.target,
            random_state=random_state,
        )  # fmt: skip
        description = f"digits 8x8: {len(y):,} training, {len(y_val):,} validation images"
    else:
        raise ValueError(f"dataset must be 'imdb' or 'digits', got {dataset!r}.")
    return Bunch(X_train=X_train, y_train=y, X_val=X_val, y_val=y_val, description=description)


def _study_row(name, clf, seconds):
    history = clf.history_
    val_loss = history["val_loss"]
    best = int(np.argmin(val_loss))
    return {
        "variant": name,
        "best_val_loss": val_loss[best],
        "best_epoch": best + 1,
        "best_val_accuracy": max(history["val_accuracy"]),
        "final_val_loss": val_loss[-1],
        "final_val_accuracy": history["val_accuracy"][-1],
        "train_val_gap": val_loss[-1] - history["loss"][-1],
        "fit_seconds": seconds,
    }


def check_variants(variants):
    """The variants' names as a list (None: all of them); ValueError naming
    the unknown ones."""
    variants = list(VARIANTS) if variants is None else list(variants)
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"Unknown variants {unknown}; choose from {list(VARIANTS)}.")
    return variants


def run_study(
    dataset="imdb",
    *,
    variants=None,
    epochs=None,
    batch_size=None,
    validation="test",
    quick=False,
    random_state=0,
    data_home=None,
    progress=None,
    side_by_side=True,
):
    """Train each regularization variant and collect its learning curves.

    Parameters
    ----------
    dataset : {"imdb", "digits"}, default="imdb"
    variants : list of str, default=None
        Names from ``skreg.study.VARIANTS``; all of them by default.
    epochs, batch_size : int, default=None
        The data set's defaults (IMDB: the book's 20 epochs of 512).
    validation : {"test", "holdout"}, default="test"
        Validate on the test set (as the book's chapter 4.4 does) or on a
        split held out of the training data.
    quick : bool, default=False
        5,000 training and 5,000 validation reviews and 6 epochs: a check
        that everything works, in about a minute.
    random_state : int, default=0
    data_home : path, default=None
        Where the IMDB archive is (see :func:`skreg.datasets.load_imdb`).
    progress : callable, default=None
        Called as ``progress(variant, epoch, epochs, logs)`` after each epoch.
    side_by_side : bool, default=True
        Train the variants whose networks differ only in their
        regularizers' numbers (the original, the penalties, dropout,
        max-norm, label smoothing, hidden noise) side by side, as the
        towers of one program: each learns what its own fit learns (same
        start, batches and dropout masks), in about a third of the time.
        False fits them one after another.

    Returns
    -------
    result : Bunch
        ``table`` (list of dicts, one per variant, in the order given;
        ``fit_seconds`` is the variant's share of the training it was part
        of), ``histories`` (variant -> per-epoch dict of lists) and
        ``settings`` (with ``trained_together``: the variants that trained
        side by side, group by group).
    """
    from ._estimators.side_by_side import fit_side_by_side
    from .mlp import RegularizedMLPClassifier

    variants = check_variants(variants)
    defaults = DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["imdb"])
    if epochs is None:
        epochs = _QUICK["epochs"] if quick else defaults["epochs"]
    if batch_size is None:
        batch_size = defaults["batch_size"]
    data = load_study_data(dataset, validation=validation, quick=quick, data_home=data_home,
                           random_state=random_state)  # fmt: skip

    classifiers = [
        RegularizedMLPClassifier(**{**BASE_NETWORK, **VARIANTS[name]}, epochs=epochs,
                                 batch_size=batch_size, random_state=random_state)
        for name in variants
    ]  # fmt: skip
    report = progress and (lambda position, epoch, logs:
                           progress(variants[position], epoch, epochs, logs))  # fmt: skip
    validation_data = (data.X_val, data.y_val)
    if side_by_side:
        trained = fit_side_by_side(classifiers, data.X_train, data.y_train,
                                   validation_data=validation_data, report=report)  # fmt: skip
    else:
        trained = []
        for position, clf in enumerate(classifiers):
            [(_, seconds)] = fit_side_by_side(
                [clf], data.X_train, data.y_train, validation_data=validation_data,
                report=report and (lambda _, epoch, logs, p=position: report(p, epoch, logs)),
            )  # fmt: skip
            trained.append(([position], seconds))
    # Variants trained side by side share their call's seconds equally.
    seconds = {p: group_seconds / len(group) for group, group_seconds in trained for p in group}
    table = [_study_row(name, clf, seconds[p])
             for p, (name, clf) in enumerate(zip(variants, classifiers))]  # fmt: skip
    histories = {name: clf.history_ for name, clf in zip(variants, classifiers)}
    settings = {
        "dataset": dataset,
        "data": data.description,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": BASE_NETWORK["optimizer"],
        "validation": validation,
        "quick": quick,
        "random_state": random_state,
        # Which variants trained side by side, as one program's towers.
        "trained_together": [[variants[p] for p in group] for group, _ in trained],
    }
    return Bunch(table=table, histories=histories, settings=settings)


def run_search(
    dataset="imdb",
    *,
    param_grid=None,
    param_distributions=None,
    n_iter=10,
    factor=None,
    cv=3,
    epochs=None,
    batch_size=None,
    quick=False,
    random_state=0,
    data_home=None,
    verbose=0,
    method="cv",
):
    """Pick the penalty by stratified cross-validation, then score on held-out data.

    ``method="cv"`` (default) runs :class:`skreg.RegularizedMLPClassifierCV`:
    every candidate and fold trained at once, on features made once from all
    the training data (the vocabulary or the scaling sees no labels).
    ``method="grid"`` runs ``GridSearchCV`` over the whole Pipeline, which
    refits the features in each fold.

    The model is a Pipeline (``MultiHotVectorizer`` then the classifier for
    IMDB, so the vocabulary is learned inside each fold; ``StandardScaler``
    then the classifier for digits). ``param_grid`` names classifier
    parameters without prefix, e.g. ``{"l2": [0, 1e-3], "dropout": [0, 0.5]}``.
    ``param_distributions`` (lists or scipy.stats distributions) with
    ``n_iter`` samples candidates instead (``RandomizedSearchCV`` for
    ``method="grid"``); ``factor`` adds successive halving over epochs
    (``method="cv"`` only).

    Returns
    -------
    result : Bunch
        ``table`` (list of dicts: parameters, mean and std of the CV accuracy,
        rank, mean fit seconds), ``best_params``, ``best_cv_score``,
        ``test_score`` (of the refitted best pipeline on the test data),
        ``search`` (the fitted GridSearchCV) and ``settings``.
    """
    from .mlp import RegularizedMLPClassifier

    sampled = param_distributions is not None
    if sampled and param_grid is not None:
        raise ValueError("param_grid and param_distributions are exclusive.")
    if factor is not None and method != "cv":
        raise ValueError("factor (successive halving) needs method='cv'.")
    param_grid = dict(param_distributions if sampled else
                      DEFAULT_SEARCH_GRID if param_grid is None else param_grid)  # fmt: skip
    if quick and param_grid == DEFAULT_SEARCH_GRID:
        param_grid = {"l2": [0.0, 1e-3], "dropout": [0.0, 0.5]}
    defaults = DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["imdb"])
    # Fewer epochs than the study: unpenalized networks peak by epoch 3-4.
    if epochs is None:
        epochs = 3 if quick else 6
    if batch_size is None:
        batch_size = defaults["batch_size"]
    classifier = RegularizedMLPClassifier(
        **BASE_NETWORK, epochs=epochs, batch_size=batch_size, random_state=random_state
    )
    unknown = sorted(set(param_grid) - set(classifier.get_params()))
    if unknown:
        raise ValueError(f"Unknown classifier parameters in the grid: {unknown}.")
    if method not in ("cv", "grid"):
        raise ValueError(f"method must be 'cv' or 'grid', got {method!r}.")
    X, y, X_test, y_test, first_step = _search_data(dataset, quick=quick, data_home=data_home,
                                                    random_state=random_state)  # fmt: skip
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    sampling = dict(n_iter=n_iter, sampled=sampled)
    searched = (
        _search_in_towers(classifier, first_step, param_grid, X, y, folds, factor=factor,
                          **sampling)
        if method == "cv"
        else _search_the_pipeline(classifier, first_step, param_grid, X, y, folds,
                                  verbose=verbose, random_state=random_state, **sampling)
    )  # fmt: skip
    search, fixed, prefix = searched.search, searched.fixed, searched.prefix
    # With halving, a row is a candidate at a rung: its epochs tell which.
    names = [*param_grid, *(["epochs"] if factor is not None else [])]
    best_params = {
        **fixed, **{key[len(prefix) :]: value for key, value in search.best_params_.items()}
    }
    return Bunch(
        table=_search_table(search.cv_results_, names, prefix=prefix, fixed=fixed),
        best_params=best_params,
        best_cv_score=float(search.best_score_),
        test_score=float(searched.fitted.score(X_test, y_test)),
        search=search,
        settings={"dataset": dataset, "method": method, "cv": cv, "epochs": epochs,
                  "batch_size": batch_size,
                  "n_train": len(y), "n_test": len(y_test), "quick": quick},  # fmt: skip
    )


def _search_data(dataset, *, quick, data_home, random_state):
    """(X, y, X_test, y_test, the pipeline's first step) of ``dataset``."""
    if dataset == "imdb":
        train = load_imdb("train", data_home=data_home)
        test = load_imdb("test", data_home=data_home)
        X, y, X_test, y_test = train.data, train.target, test.data, test.target
        if quick:
            X, y, X_test, y_test = X[:3000], y[:3000], X_test[:3000], y_test[:3000]
        return X, y, X_test, y_test, ("multihotvectorizer", MultiHotVectorizer(max_tokens=10_000))
    if dataset == "digits":
        digits = load_digits()
        X, X_test, y, y_test = train_test_split(
            digits.data, digits.target, test_size=0.3, stratify=digits.target,
            random_state=random_state,
        )  # fmt: skip
        return X, y, X_test, y_test, ("standardscaler", StandardScaler())
    raise ValueError(f"dataset must be 'imdb' or 'digits', got {dataset!r}.")


def _search_in_towers(classifier, first_step, param_grid, X, y, folds, *, n_iter, sampled,
                      factor):  # fmt: skip
    """``method="cv"``: the CV estimator on features made once. A Bunch:
    ``search``, ``fitted`` (the pipeline to score), ``fixed`` (one-value
    entries of the structure's parameters: settings, not candidates) and
    ``prefix`` ("": its parameters are the classifier's)."""
    from ._search.structures import TOWER_PARAMS
    from .search import RegularizedMLPClassifierCV

    fixed = {name: values[0] for name, values in param_grid.items()
             if name not in TOWER_PARAMS and isinstance(values, list)
             and len(values) == 1}  # fmt: skip
    space = {k: v for k, v in param_grid.items() if k not in fixed}
    search = RegularizedMLPClassifierCV(
        **classifier.set_params(**fixed).get_params(), cv=folds,
        param_grid=None if sampled else space,
        param_distributions=space if sampled else None, n_iter=n_iter, factor=factor,
    ).fit(first_step[1].fit_transform(X), y)
    fitted = Pipeline([first_step, ("regularizedmlpclassifier", search.best_estimator_)])
    return Bunch(search=search, fitted=fitted, fixed=fixed, prefix="")


def _search_the_pipeline(classifier, first_step, param_grid, X, y, folds, *, n_iter, sampled,
                         verbose, random_state):  # fmt: skip
    """``method="grid"``: scikit-learn's search over the whole pipeline,
    which refits the features in each fold (a Bunch as
    :func:`_search_in_towers` gives; ``fitted``: its refitted best pipeline)."""
    pipeline = Pipeline([first_step, ("regularizedmlpclassifier", classifier)])
    space = {f"regularizedmlpclassifier__{k}": v if hasattr(v, "rvs") else list(v)
             for k, v in param_grid.items()}  # fmt: skip
    search = (
        RandomizedSearchCV(pipeline, space, n_iter=n_iter, cv=folds, verbose=verbose,
                           random_state=random_state)
        if sampled
        else GridSearchCV(pipeline, space, cv=folds, verbose=verbose)
    )  # fmt: skip
    search.fit(X, y)
    return Bunch(search=search, fitted=search, fixed={}, prefix="regularizedmlpclassifier__")


def _search_table(results, names, *, prefix, fixed):
    """A row per candidate (and rung) of ``results``: its ``names``' values,
    its mean and std CV accuracy, rank and mean fit seconds."""
    return [
        {
            **{name: params.get(prefix + name, fixed.get(name)) for name in names},
            "mean_cv_accuracy": float(results["mean_test_score"][i]),
            "std_cv_accuracy": float(results["std_test_score"][i]),
            "rank": int(results["rank_test_score"][i]),
            "mean_fit_seconds": float(results["mean_fit_time"][i]),
        }
        for i, params in enumerate(results["params"])
    ]
