"""What users run, as they run it: `nasnet-tf demo` from the installed binary, and a real
`nasnet-tf search` SIGKILLed while a child trains, then resumed by running the command again.

Both are backend-independent command-line behaviour: they run once, under TensorFlow (the
demo needs it for its SavedModel export)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

BACKEND = __import__("keras").backend.backend()
ROOT = pathlib.Path(__file__).resolve().parents[1]
KILL_HELPER = pathlib.Path(__file__).with_name("_search_kill.py")


def _binary():
    path = pathlib.Path(sys.executable).with_name("nasnet-tf")
    found = str(path) if path.is_file() else shutil.which("nasnet-tf")
    assert found, "the `nasnet-tf` console script is not installed (pip install -e .)"
    return found


def _user_env():
    # As a user's shell: TensorFlow's log level unset, so the CLI's own filtering is tested.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = BACKEND
    return env


def _relative_files(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.tf_only
def test_demo_from_the_installed_binary(tmp_path):
    out = tmp_path / "demo"
    # --penultimate-filters 48: the demo's search scores children through the super-network.
    argv = [_binary(), "demo", "--output-dir", str(out), "--trials", "2", "--epochs", "1",
            "--steps-per-epoch", "2", "--num-blocks", "1", "--penultimate-filters", "48",
            "--train-epochs", "1", "--train-penultimate-filters", "24", "--verbose", "0"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env=_user_env())
    assert result.returncode == 0, result.stderr[-3000:]
    # No TensorFlow / absl start-up lines, no Python warnings: nothing at all on stderr.
    assert result.stderr == ""
    stdout = result.stdout
    for line in (f"nasnet-tf demo: search -> train -> export -> reload, in {out}",
                 "== 1. Controller search ==", "== 2. Training the best cell ==",
                 "== 3. Export and reload ==", "Reloaded SavedModel", "Done in "):
        assert line in stdout, line
    files = _relative_files(out)
    for name in ("demo.json", "search/search.json", "search/trials.json",
                 "search/best_genotype.json", "train/model.keras", "train/model.keras.json",
                 "train/history.json", "saved_model/saved_model.pb",
                 "saved_model/nasnet_tf.json"):
        assert name in files, name
    summary = json.loads((out / "demo.json").read_text())
    assert summary["validation_images"] == 180
    assert 0 <= summary["saved_model_accuracy"] <= 1
    assert f"accuracy {summary['saved_model_accuracy']:.4f} on 180 validation" in stdout
    rows = json.loads((out / "search" / "trials.json").read_text())
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert json.loads((out / "search" / "estimation.json").read_text())["estimator"] == "fresh"
    assert json.loads((out / "train" / "genotype.json").read_text()) == json.loads(
        (out / "search" / "best_genotype.json").read_text())["genotype"]
    assert len(json.loads((out / "train" / "history.json").read_text())["loss"]) == 1


SEARCH = ["search", "--trials", "3", "--epochs", "1", "--steps-per-epoch", "3",
          "--num-blocks", "2", "--penultimate-filters", "24", "--batch-size", "32"]
RESULTS = ("search.json", "trials.json", "estimation.json", "best_genotype.json",
           "best_genotypes.json")


@pytest.mark.slow
@pytest.mark.tf_only
def test_search_killed_mid_child_then_rerun_resumes_and_finishes(tmp_path):
    out = tmp_path / "search"
    argv = [*SEARCH, "--output-dir", str(out)]
    # The CLI's entry point, killed at batch 1 of the second child (trial 1).
    killed = subprocess.run([sys.executable, str(KILL_HELPER), "2", "1", *argv],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env=_user_env())
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert "KILLING at batch 1" in killed.stdout
    rows = json.loads((out / "trials.json").read_text())
    assert [(r["trial"], r["status"]) for r in rows] == [("0", "COMPLETED")]
    assert (out / "tuner" / "trial_1").is_dir()  # the child that was training
    assert not (out / "best_genotype.json").exists()
    first_trial = (out / "tuner" / "trial_0" / "trial.json").read_bytes()

    resumed = subprocess.run([_binary(), *argv], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path, env=_user_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr == ""
    assert "Resuming the nasnet search" in resumed.stdout
    assert "(1 trials done)" in resumed.stdout
    # The budget is finished: three trials, unique ids, the finished one not trained again.
    rows_after = json.loads((out / "trials.json").read_text())
    assert [r["trial"] for r in rows_after] == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in rows_after)
    assert rows_after[0] == rows[0]
    assert (out / "tuner" / "trial_0" / "trial.json").read_bytes() == first_trial
    oracle = json.loads((out / "tuner" / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {} and oracle["end_order"] == ["0", "1", "2"]
    # The results files are whole JSON and agree with each other.
    results = {name: json.loads((out / name).read_text()) for name in RESULTS}
    best = results["best_genotypes.json"][0]
    assert best == results["best_genotype.json"]
    assert best["score"] == max(r["accuracy"] for r in rows_after)
    assert results["estimation.json"]["num_scored"] == 3
    assert f"Best trial {best['trial']}: val_accuracy {best['score']:.4f}" in resumed.stdout
