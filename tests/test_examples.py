"""Every script in `examples/` runs, as a user runs it (its own process, from a scratch
directory), on tiny settings. A new example is collected automatically and fails until its tiny
settings are added to `RUNS`.

The examples are backend-neutral Keras apart from the SavedModel export, so they run once,
under TensorFlow (the default backend; what the READMEs show)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
from _image_folder import write_image_folder

BACKEND = __import__("keras").backend.backend()
ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# Per script: its tiny command-line arguments ({tmp} is the scratch directory, {images} a small
# class-folder dataset written there) and lines its output must hold.
RUNS = {
    "build_nasnet_a.py": (
        ["--preset", "mobile"],  # the smaller preset; no flag makes it smaller
        ["NASNet-A mobile: 4@1056, input (224, 224, 3), 5,326,716 parameters "
         "(keras.applications: 5,326,716; equal)", "with the auxiliary head for training"],
    ),
    "export_and_serve.py": (
        ["--output-dir", "{tmp}/export"],
        ["SavedModel: ", "TFLite: ", "SavedModel classes:", "rebuilt from metadata:"],
    ),
    "keras_tuner_controller_oracle.py": (
        ["--trials", "3", "--epochs", "1", "--update-every", "2", "--directory", "{tmp}/oracle"],
        ["Results summary", "controller update:", "best hyperparameters: {'conv_layers': "],
    ),
    "nasnet_cell_search.py": (
        ["--trials", "2", "--epochs", "1", "--steps-per-epoch", "3", "--num-blocks", "2",
         "--directory", "{tmp}/search"],
        ["Normal cell:", "drawings:", "best cell as NASNet CIFAR 6@768:"],
    ),
    "train_cifar10.py": (
        ["--data", "{images}", "--epochs", "1", "--steps-per-epoch", "2",
         "--penultimate-filters", "24", "--batch-size", "4", "--output-dir", "{tmp}/cifar"],
        ["images: 27 train / 3 validation images (32, 32, 3), 3 classes, augmentation 'cifar'",
         "history:", "saved {tmp}/cifar/cifar10_model.keras"],
    ),
}


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="backend-independent scripts (one exports a SavedModel): run once, "
                    "under TensorFlow")
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_on_tiny_settings(script, tmp_path):
    assert script.name in RUNS, (
        f"examples/{script.name} has no tiny settings: add them to RUNS in {__file__}")
    argv, expected = RUNS[script.name]
    images = tmp_path / "images"
    if any("{images}" in a for a in argv):
        write_image_folder(images, per_class=10)

    def fill(text):
        return text.replace("{tmp}", str(tmp_path)).replace("{images}", str(images))

    # The installed packages only (`pip install -e .`), as for a user: no PYTHONPATH help.
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, str(script), *map(fill, argv)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for line in expected:
        assert fill(line) in result.stdout, (line, result.stdout[-3000:])
    if script.name == "export_and_serve.py":  # the served copies agree with Keras
        diffs = re.findall(r"= ([0-9.e+-]+)", result.stdout.split("max |SavedModel")[1])
        assert len(diffs) == 2 and float(diffs[0]) < 1e-5 and float(diffs[1]) < 1e-4, diffs
    assert not (tmp_path / "nasnet_runs").exists()  # every output went where it was told
