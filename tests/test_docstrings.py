"""The examples in skreg's docstrings run as written (doctest), as the API
reference shows them."""

import doctest
import importlib

import pytest

MODULES = ["skreg.mlp", "skreg.search", "skreg.text", "skreg.network", "skreg.datasets",
           "skreg.study", "skreg.plotting", "skreg.ensemble"]  # fmt: skip
WITH_EXAMPLES = {"skreg.mlp", "skreg.search", "skreg.text", "skreg.network"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    # The public classes' docstrings are made from templates (skreg._estimators.docs):
    # their examples are found on the classes the module exports.
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    exported = [getattr(module, n) for n in getattr(module, "__all__", [])]
    tests = [t for obj in [module, *(o for o in exported if callable(o))]
             for t in finder.find(obj, module=module, globs={})]  # fmt: skip
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"
    if name in WITH_EXAMPLES:  # the finder found them (a test that could not fail otherwise)
        assert runner.tries > 0
