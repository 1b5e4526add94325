"""Every docstring example in the library runs and prints what it says (`doctest`).

The examples are the Keras-style "Example:" sections users copy; this keeps them true. They
show TensorFlow-backend output (the default backend), so they run under TensorFlow only.
"""

import doctest
import importlib
import pathlib

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in ("nasnet_tf", "tuners")
    for path in (ROOT / package).rglob("*.py")
    if path.name not in ("__init__.py", "__main__.py")
)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the examples show the default (TensorFlow) backend's output")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
