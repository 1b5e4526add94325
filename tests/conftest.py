"""Shared test setup: backend selection, markers, the shared CIFAR-10 folder."""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from nasnet_tf.cli.utils import prepare_backend  # noqa: E402

prepare_backend()  # TensorFlow's start-up lines held back, as the command line does

import keras  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CIFAR_DIR = ROOT.parent / "shared" / "data" / "cifar10" / "train"
BACKEND = keras.backend.backend()


def pytest_collection_modifyitems(config, items):
    skip_tf = pytest.mark.skip(reason=f"needs the TensorFlow backend (running {BACKEND})")
    for item in items:
        if "tf_only" in item.keywords and BACKEND != "tensorflow":
            item.add_marker(skip_tf)


@pytest.fixture
def cifar_dir():
    """The shared real CIFAR-10 training images; skips where they are absent (users' machines)."""
    if not CIFAR_DIR.is_dir():
        pytest.skip(f"shared CIFAR-10 images not found at {CIFAR_DIR}")
    return CIFAR_DIR


@pytest.fixture(autouse=True, scope="module")
def _clear_session():
    # Once per module: per test, clear_session's garbage collection costs seconds.
    yield
    keras.backend.clear_session()
