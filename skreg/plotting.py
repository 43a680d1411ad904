"""Learning-curve plots (matplotlib), as in figures 4-4 to 4-9 of the Keras book."""

from pathlib import Path

__all__ = ["plot_learning_curves", "save_study_figures"]

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


def plot_learning_curves(curves, *, metric="val_loss", reference=None, labels=None,
                         ax=None, title=None):  # fmt: skip
    """Plot one per-epoch metric of several trainings on one axes.

    Parameters
    ----------
    curves : dict of str to (dict, keras History or fitted estimator)
        The trainings to compare, by name.
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
