"""Learning-curve plots (matplotlib), as in figures 4-4 to 4-9 of the Keras book."""

from pathlib import Path

import numpy as np

__all__ = ["plot_learning_curves", "plot_search", "save_study_figures"]

_METRIC_LABELS = {
    "loss": "training loss",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
}


def _pyplot():
    try:
        import matplotlib.pyplot as plt  # falls back to Agg without a display
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib: pip install 'skreg[plot]' (or matplotlib)."
        ) from None
    return plt


def _history_of(curve):
    """A per-epoch dict from a history dict, a Keras History or a fitted estimator."""
    if isinstance(curve, dict):
        return curve
    history = getattr(curve, "history_", None) or getattr(curve, "history", None)
    if isinstance(history, dict):
        return history
    raise TypeError(
        "Each curve must be a history dict (metric -> per-epoch values), a Keras "
        f"History or a fitted skreg estimator; got {type(curve).__name__}."
    )


def _named_trainings(curves):
    """``curves`` as a dict of trainings by name; one training alone (a
    history dict, whose values are per-epoch lists, a History or an
    estimator) under its own name."""
    if not isinstance(curves, dict):
        _history_of(curves)  # a TypeError naming what it is, if it is no training
        return {type(curves).__name__: curves}
    if curves and all(isinstance(v, (list, tuple, np.ndarray)) for v in curves.values()):
        return {"history": curves}
    return curves


def plot_learning_curves(curves, *, metric="val_loss", reference=None, labels=None,
                         ax=None, title=None):  # fmt: skip
    """Plot one per-epoch metric of several trainings on one axes.

    Parameters
    ----------
    curves : dict of str to (dict, keras History or fitted estimator)
        The trainings to compare, by name; or one training alone (a history
        dict, a Keras History or a fitted estimator).
    metric : str, default="val_loss"
        Key of the histories to plot (``loss``, ``val_loss``, ``accuracy``...).
    reference : str, default=None
        Name of the curve drawn as the baseline (crosses), as the book draws
        its original model against each variant (dots).
    labels : dict of str to str, default=None
        Legend text per name; the name itself otherwise.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure otherwise.
    title : str, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    curves = _named_trainings(curves)
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    labels = labels or {}
    n_epochs = 0
    for name, curve in curves.items():
        history = _history_of(curve)
        if metric not in history:
            raise ValueError(
                f"The history of {name!r} has no {metric!r}; it has {sorted(history)}."
            )
        values = history[metric]
        n_epochs = max(n_epochs, len(values))
        epochs = range(1, len(values) + 1)
        style = (
            {"marker": "+", "markersize": 9, "linestyle": "--", "color": "0.3"}
            if name == reference
            else {"marker": "o", "markersize": 4}
        )
        ax.plot(epochs, values, label=labels.get(name, name), **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
    ax.set_xticks(range(1, n_epochs + 1, 2))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_search(search, *, metric="score", color_by=None, ax=None, title=None):
    """Each candidate's mean held-out score (or loss) after each epoch in a
    fitted CV search; with successive halving the candidates left behind end
    at their rung (dotted lines mark the rungs). The winner is drawn bold.

    Parameters
    ----------
    search : fitted RegularizedMLPClassifierCV or RegularizedMLPRegressorCV
    metric : {"score", "loss"}, default="score"
        ``test_score_curves_`` or ``test_loss_curves_`` (without penalties).
    color_by : str, default=None
        A searched parameter (such as ``"hidden_layer_sizes"``) whose
        values color the curves, one legend entry each; None draws the
        others grey.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure otherwise.
    title : str, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    if metric not in ("score", "loss"):
        raise ValueError(f"metric must be 'score' or 'loss'; got {metric!r}.")
    curves = getattr(search, f"test_{metric}_curves_", None)
    if curves is None:
        raise TypeError(
            "plot_search draws a fitted RegularizedMLPClassifierCV or "
            f"RegularizedMLPRegressorCV; got {type(search).__name__}"
            + ("" if hasattr(search, "cv_results_") else " (fit it first)") + "."
        )
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    results = search.cv_results_
    # The winner's candidate: its row's parameters without the epochs the
    # search added to them.
    best = {k: v for k, v in search.best_params_.items() if k != "epochs"}
    rows = [{k: v for k, v in p.items() if k != "epochs"} for p in results["params"]]
    candidates = list({repr(sorted(p.items())): p for p in rows}.values())
    winner = next(i for i, p in enumerate(candidates) if p == best)
    epochs = np.arange(1, curves.shape[1] + 1)
    colors = {}  # a color per value of color_by, in the candidates' order
    for i, values in enumerate(curves):
        if i == winner:
            continue
        last = np.flatnonzero(np.isfinite(values))
        color, label = "0.6", None
        if color_by is not None:
            value = repr(candidates[i].get(color_by))
            if value not in colors:
                colors[value] = f"C{len(colors) % 10}"
                label = f"{color_by}={value}"
            color = colors[value]
        ax.plot(epochs, values, color=color, linewidth=0.8, alpha=0.7, label=label)
        if len(last) and last[-1] < len(values) - 1:  # left behind at a rung
            ax.plot(epochs[last[-1]], values[last[-1]], "x", color="0.5", markersize=4)
    label = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in sorted(best.items()))  # fmt: skip
    ax.plot(epochs, curves[winner], color="black" if color_by else "C3", linewidth=2.2,
            label=f"winner: {label}")  # fmt: skip
    for n_resources in getattr(search, "n_resources_", [])[:-1]:
        ax.axvline(n_resources, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"mean held-out {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    halving = (f", halving {' -> '.join(map(str, search.n_candidates_))} candidates"
               if hasattr(search, "n_candidates_") else "")  # fmt: skip
    ax.set_title(title or f"{len(curves)} candidates{halving}")
    return ax


def save_study_figures(result, folder, *, reference="original", labels=None):
    """Write the study's figures as PNG files; return their paths.

    One figure of validation loss per variant against ``reference`` (the
    book's figures 4-4, 4-5, 4-7 to 4-9), the training loss of the reference
    against the bigger network (figure 4-6) and all validation losses together.
    """
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    histories = result.histories
    dataset = result.settings.get("dataset", "")
    paths = []

    def save(ax, name):
        path = folder / f"{name}.png"
        ax.figure.savefig(path, dpi=110)
        plt.close(ax.figure)
        paths.append(path)

    others = [name for name in histories if name != reference]
    if reference in histories:
        for name in others:
            ax = plot_learning_curves(
                {reference: histories[reference], name: histories[name]},
                reference=reference,
                labels=labels,
                title=f"{dataset}: validation loss, {_label(reference, labels)} vs "
                f"{_label(name, labels)}",
            )
            save(ax, f"val_loss_{name}")
        if "bigger" in histories:
            ax = plot_learning_curves(
                {reference: histories[reference], "bigger": histories["bigger"]},
                metric="loss",
                reference=reference,
                labels=labels,
                title=f"{dataset}: training loss, {_label(reference, labels)} vs "
                f"{_label('bigger', labels)}",
            )
            save(ax, "train_loss_bigger")
    ax = plot_learning_curves(histories, reference=reference, labels=labels,
                              title=f"{dataset}: validation loss of every variant")  # fmt: skip
    save(ax, "val_loss_all")
    return paths


def _label(name, labels):
    return (labels or {}).get(name, name)
