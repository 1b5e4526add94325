"""The `nasnet-tf` command: help, every error path (one line on stderr, status 2, nothing
half-written), and a tiny search -> train -> export -> predict run end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nasnet_tf import NASNET_A
from nasnet_tf import serving as ex
from nasnet_tf.cli import bn_momentum, main

COMMANDS = ("search", "train", "export", "show", "predict", "demo", "report")


def _run(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as e:  # argparse: --help and usage errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def _files(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )


def _assert_error(capsys, tmp_path, expected, *argv, command=None):
    before = _files(tmp_path)
    status, out, err = _run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"nasnet-tf {command or argv[0]}: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert _files(tmp_path) == before  # nothing half-written
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_subcommand(capsys, command):
    status, out, _ = _run(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: nasnet-tf {command}")
    assert "--output" in out or command == "predict"


def test_top_level_help_lists_the_subcommands(capsys):
    status, out, _ = _run(capsys, "--help")
    assert status == 0
    for command in COMMANDS:
        assert command in out


def test_show_prints_and_draws(capsys, tmp_path):
    status, out, err = _run(capsys, "show", "nasnet_a", "--output-dir", str(tmp_path / "cells"),
                            "--formats", "svg", "--engine", "matplotlib")
    assert status == 0, err
    assert "2 = sep_conv_5x5(h_i) + sep_conv_3x3(h_{i-1})" in out
    assert _files(tmp_path) == sorted(
        f"cells/{k}_cell.{e}" for k in ("normal", "reduction") for e in ("dot", "svg")
    )
    # A search result / metadata file with a "genotype" entry works too; --no-draw prints only.
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"genotype": NASNET_A.to_dict(), "score": 0.5}))
    status, out, _ = _run(capsys, "show", str(path), "--no-draw")
    assert status == 0 and "Reduction cell" in out


# -- error paths -------------------------------------------------------------------------------
def test_missing_genotype_file(capsys, tmp_path):
    _assert_error(capsys, tmp_path, "genotype file not found", "show", str(tmp_path / "no.json"),
                  "--output-dir", str(tmp_path / "out"))
    _assert_error(capsys, tmp_path, "genotype file not found", "train",
                  str(tmp_path / "no.json"), "--output-dir", str(tmp_path / "out"))


def test_bad_json(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"normal": [1, 2')
    line = _assert_error(capsys, tmp_path, "invalid JSON in", "show", str(bad), "--no-draw")
    assert "bad.json" in line
    _assert_error(capsys, tmp_path, "invalid JSON in", "train", str(bad),
                  "--output-dir", str(tmp_path / "out"))


def test_json_that_is_not_a_genotype(capsys, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"normal": [[0, 1, "sep_conv_3x3", "teleport"]],
                                "reduction": [[0, 1, "identity", "identity"]]}))
    _assert_error(capsys, tmp_path, "Unknown op 'teleport'", "show", str(path), "--no-draw")


def test_unknown_preset(capsys, tmp_path):
    line = _assert_error(capsys, tmp_path, "invalid choice: 'huge'", "train", "nasnet_a",
                         "--preset", "huge", "--output-dir", str(tmp_path / "out"))
    assert "cifar" in line


def test_unknown_dataset(capsys, tmp_path):
    _assert_error(capsys, tmp_path, "Unknown TFDS dataset 'no_such_dataset_xyz'", "train",
                  "nasnet_a", "--dataset", "no_such_dataset_xyz",
                  "--output-dir", str(tmp_path / "out"))
    _assert_error(capsys, tmp_path, "dataset directory not found", "search",
                  "--dataset", str(tmp_path / "images"), "--output-dir", str(tmp_path / "out"))


def test_unwritable_output(capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    _assert_error(capsys, tmp_path, "is not a directory", "show", "nasnet_a",
                  "--output-dir", str(blocker / "cells"))
    _assert_error(capsys, tmp_path, "is not a directory", "search",
                  "--output-dir", str(blocker / "run"))
    _assert_error(capsys, tmp_path, "is not a directory", "train", "nasnet_a",
                  "--output-dir", str(blocker / "run"))
    _assert_error(capsys, tmp_path, "is not a directory", "demo",
                  "--output-dir", str(blocker / "run"))
    model = tmp_path / "m.keras"
    model.write_text("stub")  # never read: the output is checked first
    _assert_error(capsys, tmp_path, "is not a directory", "export", str(model),
                  "-o", str(blocker / "served"))
    if os.geteuid() != 0:  # root writes anywhere; the probe above covers that case
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _assert_error(capsys, tmp_path, "cannot write", "show", "nasnet_a",
                      "--output-dir", str(locked / "cells"))


def test_export_errors(capsys, tmp_path):
    _assert_error(capsys, tmp_path, "model not found", "export", str(tmp_path / "m.keras"),
                  "-o", str(tmp_path / "served"))
    weights = tmp_path / "m.h5"
    weights.write_text("x")
    _assert_error(capsys, tmp_path, "expected a .keras model file", "export", str(weights),
                  "-o", str(tmp_path / "served"))
    corrupt = tmp_path / "c.keras"
    corrupt.write_text("not a zip")
    _assert_error(capsys, tmp_path, "Cannot load the Keras model", "export", str(corrupt),
                  "-o", str(tmp_path / "copy.keras"))
    (tmp_path / "served").mkdir()
    _assert_error(capsys, tmp_path, "already exists (pass --overwrite", "export", str(corrupt),
                  "-o", str(tmp_path / "served"))
    _assert_error(capsys, tmp_path, "invalid choice: 'onnx'", "export", str(corrupt),
                  "-o", str(tmp_path / "x"), "--format", "onnx")


def test_predict_errors(capsys, tmp_path):
    _assert_error(capsys, tmp_path, "model not found", "predict", str(tmp_path / "sm"),
                  str(tmp_path / "a.png"))
    from PIL import Image

    image = tmp_path / "ok.png"
    Image.new("RGB", (8, 8)).save(image)
    (tmp_path / "notsaved").mkdir()
    _assert_error(capsys, tmp_path, "is not a SavedModel directory", "predict",
                  str(tmp_path / "notsaved"), str(image))
    (tmp_path / "model.onnx").write_text("x")
    _assert_error(capsys, tmp_path, "unknown model type", "predict",
                  str(tmp_path / "model.onnx"), str(image))
    path = str(tmp_path / "m.keras")  # images are checked before the model is read
    (tmp_path / "m.keras").write_text("never read")
    _assert_error(capsys, tmp_path, "image not found", "predict", path, str(tmp_path / "a.png"))
    fake = tmp_path / "fake.png"
    fake.write_text("plain text")
    _assert_error(capsys, tmp_path, "cannot read image", "predict", path, str(fake))
    _assert_error(capsys, tmp_path, "expected an integer >= 1", "predict", path, str(fake),
                  "--top-k", "0")


def test_bn_momentum_rule():
    assert bn_momentum(0.5, 10) == 0.5
    assert bn_momentum(None, 100_000) == 0.9997
    assert bn_momentum(None, 250) == pytest.approx(0.96)
    assert bn_momentum(None, 20) == 0.9


# -- end to end --------------------------------------------------------------------------------
def _write_digit_pngs(directory, n=3):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(n):
        path = directory / f"digit{i}_label{digits.target[i]}.png"
        Image.fromarray(np.round(digits.images[i] * 255 / 16).astype("uint8")).save(path)
        paths.append(str(path))
    return paths, digits.target[:n]


@pytest.mark.slow
@pytest.mark.tf_only
def test_search_train_export_predict_end_to_end(capsys, tmp_path):
    search_dir = tmp_path / "search"
    search = ["search", "--trials", "2", "--epochs", "1", "--steps-per-epoch", "3",
              "--num-blocks", "2", "--penultimate-filters", "24",
              "--batch-size", "32", "--output-dir", str(search_dir)]
    status, out, err = _run(capsys, *search)
    assert status == 0, err
    assert "trial  genotype" in out and "entropy" in out
    rows = json.loads((search_dir / "trials.json").read_text())
    assert len({r["trial"] for r in rows}) == len(rows) == 2
    table = [line for line in out.splitlines()
             if line.split() and line.split()[0] in {r["trial"] for r in rows}]
    assert len(table) == 2
    for row in rows:
        assert row["params"] > 0 and 0 <= row["accuracy"] <= 1 and row["entropy"] > 0
        assert row["reward"] == pytest.approx(row["accuracy"])
    best = search_dir / "best_genotype.json"
    assert (search_dir / "cells" / "normal_cell.png").is_file()

    # Run again: the search resumes, finds its budget spent, trains nothing new.
    status, out, _ = _run(capsys, *search)
    assert status == 0 and "Resuming" in out and "(2 trials done)" in out
    assert json.loads((search_dir / "trials.json").read_text()) == rows
    # Other settings in the same directory are refused.
    status, _, err = _run(capsys, *search, "--trials", "3")
    assert status == 2 and "holds a search with other settings (trials)" in err

    train_dir = tmp_path / "train"
    status, out, err = _run(capsys, "train", str(best), "--epochs", "1", "--steps-per-epoch",
                            "3", "--num-cells", "1", "--penultimate-filters", "24",
                            "--batch-size", "32", "--verbose", "0",
                            "--output-dir", str(train_dir))
    assert status == 0, err
    model_path = train_dir / "model.keras"
    meta = ex.read_metadata(model_path)
    assert meta["dataset"] == "digits" and meta["output"]["class_names"][3] == "3"
    assert meta["genotype"] == json.loads(best.read_text())["genotype"]

    saved = tmp_path / "served"
    status, out, err = _run(capsys, "export", str(model_path), "-o", str(saved),
                            "--input-dtype", "uint8")
    assert status == 0, err
    tflite = tmp_path / "model.tflite"
    assert _run(capsys, "export", str(model_path), "-o", str(tflite))[0] == 0

    images, labels = _write_digit_pngs(tmp_path)
    outputs = {}
    for model in (saved, tflite, model_path):
        status, out, err = _run(capsys, "predict", str(model), *images, "--json", "--top-k", "10")
        assert status == 0, err
        outputs[model] = json.loads(out)
    for result in outputs[saved]:
        probs = sorted(t["probability"] for t in result["top"])
        assert len(probs) == 10 and sum(probs) == pytest.approx(1.0, abs=1e-5)
    # The three artefacts agree on every image's class probabilities.
    for a, b in ((saved, tflite), (saved, model_path)):
        for ra, rb in zip(outputs[a], outputs[b]):
            pa = {t["class"]: t["probability"] for t in ra["top"]}
            pb = {t["class"]: t["probability"] for t in rb["top"]}
            assert max(abs(pa[k] - pb[k]) for k in pa) < 1e-4


@pytest.mark.tf_only
def test_console_script_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nasnet_tf", "show", str(tmp_path / "none.json"), "--no-draw"],
        capture_output=True, text=True, timeout=240,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "nasnet-tf show: error: genotype file not found"
    )


def test_train_refuses_to_resume_another_genotypes_run(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "genotype.json").write_text(json.dumps(NASNET_A.to_dict()))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"normal": [[0, 1, "identity", "conv_3x3"]],
                                 "reduction": [[0, 1, "max_pool_3x3", "conv_1x1"]]}))
    _assert_error(capsys, tmp_path, "holds a training run of another genotype", "train",
                  str(other), "--output-dir", str(run))


@pytest.mark.skipif(__import__("keras").backend.backend() == "tensorflow",
                    reason="checks the error under other backends")
def test_tensorflow_only_commands_say_so(capsys, tmp_path):
    _assert_error(capsys, tmp_path, "needs the TensorFlow backend", "demo",
                  "--output-dir", str(tmp_path / "demo"))
    (tmp_path / "m.keras").write_text("never read")
    _assert_error(capsys, tmp_path, "needs the TensorFlow backend", "export",
                  str(tmp_path / "m.keras"), "-o", str(tmp_path / "served"))


ONE_BLOCK = {"normal": [[0, 1, "identity", "conv_1x1"]],
             "reduction": [[0, 1, "max_pool_3x3", "conv_1x1"]]}


def test_train_overwrite_discards_the_run_and_nothing_else(capsys, tmp_path, monkeypatch):
    import nasnet_tf.training

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "state.json").write_text("{}")
    (run / "logs" / "train").mkdir(parents=True)
    (run / "logs" / "train" / "events.out.tfevents.1").write_text("x")
    (run / "genotype.json").write_text(json.dumps(NASNET_A.to_dict()))
    for name in ("config.json", "history.json", "model.keras", "model.keras.sha256",
                 "model.keras.json", "notes.txt"):
        (run / name).write_text("x")
    genotype = tmp_path / "g.json"
    genotype.write_text(json.dumps(ONE_BLOCK))
    seen = []

    def stop(*args, **kwargs):  # what train finds in the directory, then stop
        seen.append(_files(run))
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(nasnet_tf.training, "train", stop)
    status, out, err = _run(capsys, "train", str(genotype), "--overwrite",
                            "--output-dir", str(run))
    assert status == 2 and "stopped before training" in err
    assert "Discarded the earlier training run" in out
    # Another genotype's run is no obstacle with --overwrite; only the run's own files go.
    assert seen == [["genotype.json", "notes.txt"]]
    from nasnet_tf import Genotype

    assert json.loads((run / "genotype.json").read_text()) == Genotype.from_dict(
        ONE_BLOCK).to_dict()


@pytest.mark.slow
@pytest.mark.tf_only  # file handling, the backends' same (about 50 s under JAX)
def test_train_with_a_damaged_checkpoint_then_overwrite(capsys, tmp_path):
    genotype = tmp_path / "g.json"
    genotype.write_text(json.dumps(ONE_BLOCK))
    run = tmp_path / "run"
    argv = ["train", str(genotype), "--epochs", "1", "--steps-per-epoch", "2", "--num-cells",
            "1", "--penultimate-filters", "24", "--batch-size", "32", "--verbose", "0",
            "--output-dir", str(run)]
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    weights = run / "checkpoints" / "epoch-00001.weights.h5"
    with open(weights, "r+b") as f:  # a cut-short copy
        f.truncate(100)
    before = _files(run)
    status, out, err = _run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("nasnet-tf train: error: Cannot resume the training run in ")
    assert "epoch-00001.weights.h5" in lines[0] and "pass --overwrite" in lines[0]
    assert _files(run) == before  # nothing renamed or deleted
    status, out, err = _run(capsys, *argv, "--overwrite")
    assert status == 0, err
    assert "Discarded the earlier training run" in out and "Validation accuracy" in out
    assert weights.stat().st_size > 100 and (run / "model.keras").is_file()
