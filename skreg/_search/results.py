"""A search's results: its rows (a candidate as trained by a rung's end)
and the fitted attributes made from them, as scikit-learn's searches give
them."""

import warnings

import numpy as np
from scipy.stats import rankdata

from .runs import best_so_far
from .scores import SINGLE
from .schedule import iteration_counts

__all__ = ["RungRows", "search_results"]


class RungRows:
    """The rows of ``cv_results_`` of one rung: its candidates as trained
    for the rung's epochs (scored at the last, or at their best epoch so far
    with ``select_epochs``), their split scores [candidates, folds] (of the
    ranking metric; ``metric_scores`` of every metric, by subset and name)
    and training and scoring seconds so far."""

    def __init__(self, rung, candidates, results, *, select_epochs):
        self.rung, self.candidates = rung, list(candidates)
        scores = results.scores[self.candidates, :, : rung.epochs]  # [candidates, folds, epochs]
        if select_epochs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
                curves = np.nanmean(scores, axis=1)
            chosen = np.argmax(np.where(np.isnan(curves), -np.inf, curves), axis=1)
        else:
            chosen = np.full(len(self.candidates), rung.epochs - 1)
        self.epochs = chosen + 1
        rows = np.arange(len(self.candidates))
        self.split_scores = scores[rows, :, chosen]
        self.metric_scores = {
            (subset, metric): table[self.candidates][rows, :, chosen]
            for subset, tables in results.tables.items() for metric, table in tables.items()
        }  # fmt: skip
        self.fit_times = results.fit_times[self.candidates].copy()
        self.score_times = results.score_times[self.candidates].copy()

    def describe(self, name, n_rungs, candidates, seconds):
        """verbose: a line at the rung's end."""
        return (f"[{name}] rung {self.rung.number + 1}/{n_rungs}: {len(self.candidates)} "
                f"candidates trained to epoch {self.rung.epochs}, {seconds:.1f} s"
                + best_so_far(self.split_scores.mean(axis=1),
                              [candidates[c] for c in self.candidates]))  # fmt: skip



def search_results(candidates, results, rows, *, select_epochs, factor, epochs,
                   error_score=np.nan):  # fmt: skip
    """The fitted attributes of a search, by name, from its rows (a
    :class:`RungRows` per rung): ``cv_results_`` as GridSearchCV,
    RandomizedSearchCV or (with halving) HalvingRandomSearchCV give it, the
    best row, the curves and, with halving, scikit-learn's halving
    attributes. ``factor``: halving's (None: no halving); ``epochs``: the
    search's budget of epochs; ``error_score``: the split score of a
    network whose training failed (whose score is NaN)."""
    halving = factor is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        fitted = {
            "test_score_curves_": results.scores.mean(axis=1),
            "train_loss_curves_": results.train_losses.mean(axis=1),
            "test_loss_curves_": results.test_losses.mean(axis=1),
        }
    # The epochs a row was scored at are a parameter (the refit's) when
    # they may differ from ``epochs``, as the resource is in scikit-learn's
    # halving searches.
    params = [
        {**candidates[c], **({"epochs": int(e)} if select_epochs or halving else {})}
        for r in rows for c, e in zip(r.candidates, r.epochs)
    ]  # fmt: skip
    split_scores = np.concatenate([r.split_scores for r in rows])  # [rows, folds]
    split_scores = np.where(np.isnan(split_scores), error_score, split_scores)
    mean = split_scores.mean(axis=1)
    fit_times = np.concatenate([r.fit_times for r in rows])
    score_times = np.concatenate([r.score_times for r in rows])
    table = {}
    if halving:
        table["iter"] = np.concatenate([np.full(len(r.candidates), r.rung.number) for r in rows])
        table["n_resources"] = np.concatenate([np.full(len(r.candidates), r.rung.epochs)
                                               for r in rows])  # fmt: skip
    table.update(
        mean_fit_time=fit_times.mean(axis=1), std_fit_time=fit_times.std(axis=1),
        mean_score_time=score_times.mean(axis=1), std_score_time=score_times.std(axis=1),
    )  # fmt: skip
    for name in sorted({name for row_params in params for name in row_params}):
        column = np.ma.MaskedArray(np.empty(len(params), dtype=object), mask=True)
        for i, row_params in enumerate(params):
            if name in row_params:
                column[i] = row_params[name]
        table[f"param_{name}"] = column
    table["params"] = params
    table.update(_score_columns(rows, results, error_score))
    # The best of the last rung (with halving, as scikit-learn's halving
    # searches: earlier rungs' scores come from fewer epochs).
    last = np.arange(len(params) - len(rows[-1].candidates), len(params))
    best = int(last[np.argmax(np.where(np.isnan(mean[last]), -np.inf, mean[last]))])
    fitted.update(cv_results_=table, best_index_=best, best_params_=params[best],
                  best_score_=float(mean[best]))  # fmt: skip
    if halving:
        fitted.update(
            n_iterations_=len(rows), n_candidates_=[len(r.candidates) for r in rows],
            n_resources_=[r.rung.epochs for r in rows],
            n_remaining_candidates_=len(rows[-1].candidates),
            min_resources_=rows[0].rung.epochs, max_resources_=epochs,
        )  # fmt: skip
        fitted["n_required_iterations_"], fitted["n_possible_iterations_"] = iteration_counts(
            len(rows[0].candidates), rows[0].rung.epochs, epochs, factor)
    fitted["multimetric_"] = _several_metrics(results)
    return fitted


def _several_metrics(results):
    return len(results.tables["test"]) > 1 or results.metric != SINGLE


def _score_columns(rows, results, error_score):
    """``split<i>_<subset>_<metric>``, ``mean_...``, ``std_...`` and (held-out
    scores) ``rank_test_...`` of every metric, as scikit-learn's searches
    name them (``..._score`` for one metric)."""
    several = _several_metrics(results)
    columns = {}
    for subset in ("test", "train"):
        for metric in sorted(results.tables.get(subset, {})):
            scores = np.concatenate([r.metric_scores[subset, metric] for r in rows])
            scores = np.where(np.isnan(scores), error_score, scores)  # [rows, folds]
            name = f"{subset}_{metric if several else SINGLE}"
            for i in range(scores.shape[1]):
                columns[f"split{i}_{name}"] = scores[:, i]
            mean = scores.mean(axis=1)
            columns[f"mean_{name}"], columns[f"std_{name}"] = mean, scores.std(axis=1)
            if subset == "test":
                # NaN scores (diverged fits) rank last, as in GridSearchCV.
                columns[f"rank_{name}"] = rankdata(np.where(np.isnan(mean), np.inf, -mean),
                                                   method="min").astype(np.int32)  # fmt: skip
    return columns
