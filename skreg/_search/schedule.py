"""A CV search's schedule as data: its rungs (how many epochs the candidates
have trained by each rung's end, how many go on) and the choice of the
survivors after a rung.

Without halving a search is one rung: every candidate trains every epoch.
With successive halving (``factor``), as scikit-learn's
``HalvingRandomSearchCV(resource=...)`` with the epochs as the resource,
each rung keeps the best ``1/factor`` of its candidates, and these go on
training from their own weights and optimizer state: no epoch of an earlier
rung is trained again (scikit-learn's halving refits every survivor from
scratch).
"""

import math

import numpy as np
from scipy.stats import rankdata

__all__ = ["Rung", "halving_rungs", "iteration_counts", "single_rung", "survivors"]


class Rung:
    """One rung of a search.

    Parameters
    ----------
    number : int
        From 0 (scikit-learn's ``iter``).
    n_candidates : int
        The candidates that train in it (at most: the first rung has them all).
    epochs : int
        Epochs every one of them has trained by the rung's end
        (scikit-learn's ``n_resources``): the rung trains its survivors from
        the previous rung's ``epochs`` to this one.
    """

    def __init__(self, number, n_candidates, epochs):
        self.number, self.n_candidates, self.epochs = number, n_candidates, epochs

    def __repr__(self):
        return f"Rung({self.number}, n_candidates={self.n_candidates}, epochs={self.epochs})"


def single_rung(n_candidates, epochs):
    """A search without halving: every candidate, every epoch."""
    return [Rung(0, n_candidates, epochs)]


def iteration_counts(n_candidates, min_epochs, max_epochs, factor):
    """scikit-learn's ``n_required_iterations_`` (rungs that would bring the
    candidates down to one) and ``n_possible_iterations_`` (rungs that the
    epochs allow from ``min_epochs`` to ``max_epochs``)."""
    n_required = 1 + math.floor(math.log(n_candidates, factor) + 1e-9)
    n_possible = 1 + math.floor(math.log(max_epochs / min_epochs, factor) + 1e-9)
    return n_required, n_possible


def halving_rungs(n_candidates, epochs, *, factor, min_epochs="auto",
                  aggressive_elimination=False):  # fmt: skip
    """The rungs of successive halving over epochs.

    As scikit-learn's halving searches with the epochs as the resource: as
    many rungs as it takes to bring the candidates down to one (each keeps
    ``ceil(n / factor)``), or fewer if the epochs run out (then more than
    one candidate reaches the last rung, and the best of them wins). The
    epochs grow by ``factor`` from rung to rung. ``min_epochs="auto"``
    chooses the first rung's epochs so that the last rung trains ``epochs``
    (scikit-learn's ``min_resources="exhaust"``, except that its last rung
    may stop short of the budget); an int starts there.

    ``aggressive_elimination``, as scikit-learn's: when the epochs allow
    fewer rungs than the candidates need, the first rungs repeat the first
    rung's epochs (training nothing more: the same scores prune again) until
    the last rung has about ``factor`` candidates.
    """
    first = 1 if min_epochs == "auto" else min_epochs
    if first > epochs:
        raise ValueError(f"min_epochs={min_epochs} is more than epochs={epochs}.")
    n_required, n_possible = iteration_counts(n_candidates, first, epochs, factor)
    n_rungs = min(n_required, n_possible)
    # "auto" counts back from the budget: since epochs >= factor ** (n_rungs
    # - 1), each rung still trains at least one epoch more than the last.
    ends = ([epochs // factor ** (n_rungs - 1 - i) for i in range(n_rungs)]
            if min_epochs == "auto" else [first * factor**i for i in range(n_rungs)])  # fmt: skip
    if aggressive_elimination and n_required > n_possible:
        ends = [ends[0]] * (n_required - n_possible) + ends
    return [Rung(i, math.ceil(n_candidates / factor**i), end) for i, end in enumerate(ends)]


def survivors(candidates, mean_scores, factor):
    """The best ``ceil(len(candidates) / factor)`` of ``candidates`` by their
    ``mean_scores`` (NaN last; ties to the earlier candidate, as ranks
    with ``method="min"`` and a stable order give), in their given order."""
    scores = np.asarray(mean_scores, np.float64)
    rank = rankdata(np.where(np.isnan(scores), np.inf, -scores), method="min")
    n_kept = math.ceil(len(candidates) / factor)
    kept = np.argsort(rank, kind="stable")[:n_kept]
    return [candidates[i] for i in sorted(kept)]
