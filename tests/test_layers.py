"""The package's layers: private TensorFlow and Keras API only in the
adapter (skreg/_backend), and the search's machinery reaching the
estimators only through their interface (skreg/_estimators/interface.py)."""

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skreg"
# A private attribute read off a TensorFlow or Keras object, or a private
# TensorFlow module imported.
PRIVATE_API = re.compile(r"(?:\b(?:optimizer|loss|keras(?:\.\w+)*|tf(?:\.\w+)*)\._[a-z]\w*"
                         r"|from tensorflow\.python|tensorflow\.core)")  # fmt: skip


def _modules(*folders):
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(path.relative_to(PACKAGE).parts[0] == f for f in folders):
            yield path


def test_private_tensorflow_and_keras_api_is_used_in_the_adapter_only():
    offenders = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
                 for path in _modules("_backend")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if PRIVATE_API.search(line)]  # fmt: skip
    assert offenders == []


@pytest.mark.parametrize("folder", ["_search"])
def test_the_search_reaches_estimators_through_their_interface(folder):
    private_call = re.compile(r"\b(?:base|template|first|estimator)\._[a-z]\w*\(")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
                 for path in sorted((PACKAGE / folder).glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if private_call.search(line)]  # fmt: skip
    assert offenders == []
