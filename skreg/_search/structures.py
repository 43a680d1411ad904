"""A search's candidates by network structure.

Candidates that differ only in their towers' numbers (penalties, dropout
rate, learning rate, weight decay, max-norm, label smoothing) share one run:
a :class:`~skreg._search.runs.TowerSearch` whose groups train them side by
side. Any other parameter a candidate sets (widths, depth, ``batch_norm``,
``activation``, the optimizer, the loss, input augmentation) makes a network
of another structure, with a run of its own: its own start (the network a
fit of its first candidate starts from), its own groups under the memory
budget, or one fit at a time where the program does not cover it. The runs
train in the same rungs, so halving compares and prunes across structures.

Networks of different widths do not share a group: the towers of a group
hold one kernel side by side, so a narrow network would have to be padded
(masked) to the widest, and the search's time is bound by that sparse
first layer, whose cost grows with the units it holds.
"""

import copy
import contextlib

from .._engine import TowerStructure
from .._engine.model import NotOnProgram
from .._engine.regularizers import REGULARIZERS
from .._estimators.interface import sharing_program
from .runs import OneFitAtATime, TowerSearch

__all__ = ["FIXED_PARAMS", "TOWER_PARAMS", "SearchRuns"]

# The parameters that may differ between the towers of one group (their
# TowerNumbers).
TOWER_PARAMS = ("learning_rate", *(r.name for r in REGULARIZERS))

# The parameters a candidate may not set, and why.
FIXED_PARAMS = {
    "epochs": "the epochs are the search's budget, which every candidate trains (with "
              "halving, up to it); set select_epochs=True to choose them by cross-validation",
    "early_stopping": "the search scores every epoch on the held-out folds instead; set "
                      "select_epochs=True to choose the epochs by cross-validation",
    "warm_start": "every candidate's networks start afresh",
    "verbose": "the search reports with its own verbose",
}  # fmt: skip


def structure_params(params):
    """The parameters of ``params`` that make a network's structure (all but
    the towers' numbers and the epochs, which the search sets)."""
    return {name: value for name, value in params.items()
            if name not in TOWER_PARAMS and name != "epochs"}  # fmt: skip


def _key(shared):
    # repr: values such as lists or optimizer instances are not hashable.
    return tuple(sorted((name, repr(value)) for name, value in shared.items()))


def _described(shared):
    return ", ".join(f"{name}={value!r}" for name, value in sorted(shared.items()))


class _Run:
    """The candidates (``members``, positions) of one structure (``shared``,
    the parameters they set alike) and the run that trains them."""

    def __init__(self, shared, members, runner, reason):
        self.shared, self.members, self.runner, self.reason = shared, members, runner, reason


class SearchRuns:
    """A search's runs, one per network structure, driven as one search."""

    def __init__(self, candidates, runs):
        self.candidates, self.runs = candidates, runs
        self.n_networks = None

    @classmethod
    def plan(cls, search, base, template, X, candidates):
        """The runs of ``candidates`` (dicts of parameters) over the base
        estimator ``base`` (``template``: its clone with the targets encoded)."""
        by_structure = {}
        for position, candidate in enumerate(candidates):
            shared = structure_params(candidate)
            by_structure.setdefault(_key(shared), (shared, []))[1].append(position)
        runs = []
        for shared, members in by_structure.values():
            # Copies, not clones: their routed options (callbacks) are the user's objects.
            run_base = copy.copy(base).set_params(**shared)
            run_template = copy.copy(template).set_params(**shared)
            try:
                runner, reason = TowerSearch.plan(search, run_base, run_template, X, candidates,
                                                  members), None  # fmt: skip
            except NotOnProgram as why:
                runner = OneFitAtATime(search, run_base, run_template, candidates, members)
                reason = str(why)
            runs.append(_Run(shared, members, runner, reason))
        return cls(candidates, runs)

    @property
    def training_path(self):
        """``training_path_``: "program", "fit by fit" or both."""
        on_program = [run.reason is None for run in self.runs]
        if all(on_program):
            return "program"
        return "program and fit by fit" if any(on_program) else "fit by fit"

    @property
    def reason(self):
        """``training_path_reason_``: what the program does not cover (for
        each structure it does not, when there are several), or None."""
        off = [run for run in self.runs if run.reason is not None]
        if not off:
            return None
        if len(self.runs) == 1:
            return off[0].reason
        return "; ".join(f"{_described(run.shared) or 'the base parameters'}: {run.reason}"
                         for run in off)  # fmt: skip

    def start(self, X, y, y_encoded, sample_weight, splits, results, tasks=None):
        """Cut every run's towers into groups, numbered across the runs."""
        shared_data, first_group = {}, 1
        for run in self.runs:
            run.runner.start(X, y, y_encoded, sample_weight, splits, results, tasks,
                             first_group=first_group, shared_data=shared_data)  # fmt: skip
            first_group += len(getattr(run.runner, "groups", ()))
        for run in self.runs:
            if getattr(run.runner, "progress", None) is not None:
                run.runner.progress.n_groups = first_group - 1
        self.n_networks = sum(len(run.members) for run in self.runs) * len(splits)

    def train(self, candidates, epochs):
        """Train the ``candidates`` (positions) until they have trained
        ``epochs``; the others are let go."""
        alive = set(candidates)
        for run in self.runs:
            run.runner.train([c for c in run.members if c in alive], epochs)

    def report_failures(self):
        """Warn of failed networks; raise with ``error_score="raise"`` or if all failed."""
        for run in self.runs:
            run.runner.report_failures()
        failures = [failure for run in self.runs for failure in run.runner.failures()]
        if failures and len(failures) == self.n_networks:
            raise ValueError(f"Every fit of the search failed; the first: {failures[0]}")

    def finish(self):
        """Let go of the networks."""
        for run in self.runs:
            run.runner.finish()

    def fold_networks(self, candidate, X, y, sample_weight):
        """The networks of ``candidate`` (a position), one per fold, as
        fitted base estimators (before :meth:`finish` lets go of them)."""
        run = next(run for run in self.runs if candidate in run.members)
        return run.runner.fold_networks(candidate, X, y, sample_weight)

    def sharing(self, estimator, params):
        """The block in which ``estimator``'s fit (the refit of ``params``)
        shares the program and data of the run that trained ``params``."""
        runner = self._run_of(params).runner
        if not isinstance(runner, TowerSearch):
            return contextlib.nullcontext()
        return sharing_program(estimator, TowerStructure(**runner.structure),
                               runner.prepared_data())  # fmt: skip

    def _run_of(self, params):
        key = _key(structure_params(params))
        return next(run for run in self.runs if _key(run.shared) == key)
