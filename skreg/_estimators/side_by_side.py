"""Several estimators fitted on the same data at once, as the regularization
study fits its variants: those whose networks share a traced program train
side by side as its towers, each learning what its own ``fit`` learns (to
float32 rounding). On small networks an epoch costs TensorFlow's per-op
overhead more than arithmetic, so five such networks take about 1.6x the
time of one (IMDB, 16-16, scored on 25,000 reviews after each epoch)."""

import contextlib
import time

from .._engine.fit import fit_plans_side_by_side
from .._engine.fit import program_group
from .._engine.model import NotOnProgram, plan_model
from .rollback import rolled_back_on_failure
from .._backend.tensorflow import tf

__all__ = ["fit_side_by_side"]


def _may_share(estimator):
    """Whether nothing in the estimator's fit needs a fit of its own: Python
    between its epochs (callbacks, verbose, early stopping), Keras' fit
    (routed options), a network to go on from (warm start) or seeds drawn
    afresh (``random_state=None``)."""
    return not (
        getattr(estimator, "_skl_callbacks", None)
        or estimator.verbose
        or estimator.early_stopping
        or estimator.warm_start
        or estimator.random_state is None
        or estimator._routed_params("fit")
        or not estimator._program_takes_routed_params()
    )


def fit_side_by_side(estimators, X, y, *, validation_data=None, report=None):
    """Fit each of ``estimators`` on ``X, y`` as its ``fit`` would, the
    networks that share a program side by side.

    Estimators share a call when their networks have one structure (widths,
    layers, loss, optimizer but its learning rate, input augmentation) and
    they train the same epochs on the same batches (batch size and
    ``random_state``); they may differ in penalties, dropout rate and
    learning rate. The others, and any whose fit needs Python between
    epochs or Keras' fit, are fitted alone. If any fit fails, every
    estimator is left as it was and the error is raised.

    Parameters
    ----------
    estimators : list of RegularizedMLPClassifier or RegularizedMLPRegressor
    X, y, validation_data
        As each estimator's ``fit`` takes them (no sample weights).
    report : callable, default=None
        ``report(position, epoch, logs)`` after each epoch (from 1) of the
        estimator at ``position``, with Keras' logs. Estimators that need
        a fit of their own (see above) report their epochs when it ends.

    Returns
    -------
    groups : list of (list of int, float)
        The positions of the estimators that trained together, and the
        seconds their training took, in the order they trained.
    """
    groups, alone, jobs, trained = {}, [], {}, []
    with contextlib.ExitStack() as rollbacks:
        for estimator in estimators:
            rollbacks.enter_context(rolled_back_on_failure(
                estimator, keep_weights=bool(estimator.warm_start)))
        for position, estimator in enumerate(estimators):
            if not _may_share(estimator):
                alone.append(position)
                continue
            job = estimator._prepare_fit(X, y, None, validation_data,
                                         epochs=estimator.epochs, incremental=False)  # fmt: skip
            try:
                plan = plan_model(estimator.model_, job.X)
            except NotOnProgram:
                plan = None
            # Class weights make row weights of its own (the group's towers share none).
            if plan is None or job.sample_weight is not None:
                alone.append(position)  # its own fit starts afresh, below
                continue
            jobs[position] = (job, plan)
            key = (program_group(plan), estimator._resolved_batch_size(job.X.shape[0]),
                   job.epochs, job.seeds.shuffle, job.seeds.dropout)  # fmt: skip
            groups.setdefault(key, []).append(position)
        for (_, batch_size, epochs, *seeds), positions in groups.items():
            job = jobs[positions[0]][0]
            start = time.perf_counter()
            try:
                histories = fit_plans_side_by_side(
                    [jobs[p][1] for p in positions], job.X, job.y, job.validation,
                    epochs=epochs, batch_size=batch_size, seeds=seeds,
                    report=report and (lambda k, epoch, logs, positions=positions:
                                       report(positions[k], epoch + 1, logs)),
                )  # fmt: skip
            except tf.errors.OpError as error:
                raise RuntimeError(
                    "TensorFlow failed while training the networks side by side: "
                    f"{error.message.strip().splitlines()[0]}"
                ) from None
            for position, history in zip(positions, histories):
                estimators[position]._finish_fit(history)
            trained.append((positions, time.perf_counter() - start))
        for position in sorted(alone):
            start = time.perf_counter()
            estimators[position].fit(X, y, validation_data=validation_data)
            trained.append(([position], time.perf_counter() - start))
            if report is not None:
                history = estimators[position].history_
                for epoch in range(len(history["loss"])):
                    report(position, epoch + 1, {name: values[epoch]
                                                 for name, values in history.items()})  # fmt: skip
    return trained
