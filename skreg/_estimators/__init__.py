"""The estimators' machinery: the shared fit (:mod:`.base`), parameters and
their constraints, docstrings, Keras' input pipeline and hooks, inference,
the all-or-nothing rollback and scikit-learn's callbacks. The public
estimators are in :mod:`skreg.mlp`."""
