"""Every docstring example in the library runs and prints what it says (`doctest`).

The examples are the Keras-style "Example:" sections users copy; this keeps them true. They
show TensorFlow-backend output (the default backend), so they run under TensorFlow only, but
for the JAX-only modules' (`jax_*.py`), which run under JAX.
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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    backend = "jax" if name.rsplit(".", 1)[-1].startswith("jax_") else "tensorflow"
    if keras.backend.backend() != backend:
        pytest.skip(f"the examples show the {backend} backend's output")
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
