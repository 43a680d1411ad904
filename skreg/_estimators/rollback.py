"""A fit that does not complete leaves the estimator as it was."""

import contextlib
import copy

__all__ = ["rolled_back_on_failure"]


def _model_variables(model):
    optimizer_variables = model.optimizer.variables if model.optimizer is not None else []
    return [*model.variables, *optimizer_variables]


@contextlib.contextmanager
def rolled_back_on_failure(estimator, *, keep_weights):
    """Put ``estimator`` back as it was if the block raises (or is interrupted).

    Attributes are restored as a whole; the history, which a fit extends in
    place, from a copy; and when the fit trains the existing network further
    (``keep_weights``: warm start, partial_fit), its weights and optimizer
    state from a copy. A fit from scratch builds a new network, so the old
    one needs no copy.
    """
    attributes = dict(vars(estimator))
    history = copy.deepcopy(attributes.get("history_"))
    model = attributes.get("model_") if keep_weights else None
    variables = _model_variables(model) if model is not None else []
    values = [variable.numpy() for variable in variables]
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(attributes)
        if history is not None:
            estimator.history_ = history
        for variable, value in zip(variables, values):
            variable.assign(value)
        raise
