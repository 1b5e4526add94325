"""Fast estimators: fresh weights through one compiled super-network, and ENAS weight sharing."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import BACKEND, ROOT

from nasnet_tf import Block, CellGenotype, Genotype
from tuners import NASNetHyperModel, NASNetTuner
from tuners.estimation import Child
from tuners.weight_sharing import FreshWeights, SharedWeights, supernet_for

# The tiny searches give the controller too few updates on purpose (cost); its warning about
# that is tests/test_nas_tuner.py's.
pytestmark = pytest.mark.filterwarnings("ignore:.*too few to move it off uniform")
OPS = ("identity", "sep_conv_3x3", "max_pool_3x3")
CHILD = dict(num_blocks=1, ops=OPS, num_cells=1, penultimate_filters=48, input_shape=(8, 8, 3),
             classes=3)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, n)
    return x[:48], y[:48], x[48:], y[48:]


def _genotype(op):
    cell = CellGenotype([Block(0, 1, op, "identity", "concat")])
    return Genotype(cell, cell)


class _StartWeights(FreshWeights):
    """Records each child's path weights as its training starts and as it ends."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.starts, self.ends = [], []

    def _path(self, genotype):
        return [np.array(keras.ops.convert_to_numpy(w))
                for layer in self.supernet.path_layers(genotype) for w in layer.weights]

    def estimate(self, child, *fit_args, **fit_kwargs):
        self._genotype, self._start = child.architecture, None
        logs = super().estimate(child, *fit_args, **fit_kwargs)
        self.starts.append(self._start)
        self.ends.append(self._path(child.architecture))
        return logs

    def _train_epoch(self, *args, **kwargs):
        if self._start is None:
            self._start = self._path(self._genotype)
        return super()._train_epoch(*args, **kwargs)


def test_fresh_weights_same_seed_same_score_and_new_weights(tmp_path):
    x, y, vx, vy = _data()
    hypermodel = NASNetHyperModel(**CHILD)
    estimator = _StartWeights(seed=4)
    reports = []

    def child(genotype, trial_id="1"):
        return Child(genotype, None, None, trial_id, str(tmp_path), hypermodel=hypermodel,
                     report=lambda m, s: reports.append((s, m["val_accuracy"])))

    fit = dict(validation_data=(vx, vy), epochs=2, batch_size=16)
    genotype = _genotype("sep_conv_3x3")
    first = estimator.estimate(child(genotype), x, y, **fit)
    # Another child in between trains its own path, and shares the stem and the classifier.
    estimator.estimate(child(_genotype("max_pool_3x3"), "2"), x, y, **fit)
    again = estimator.estimate(child(genotype), x, y, **fit)
    # The path really starts afresh: the same child starts from the very weights it started
    # from the first time, not from those it (or the child in between) ended with.
    start, end, start_again = estimator.starts[0], estimator.ends[0], estimator.starts[2]
    for a, b in zip(start, start_again):
        np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in zip(end, start_again)]
    assert sum(changed) >= len(changed) // 2, changed
    assert again == first
    assert set(first) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # Each epoch was reported, as the trial's history.
    assert [s for s, _ in reports[:2]] == [0, 1]
    assert estimator.num_scored == 3


def test_fresh_weights_search(tmp_path):
    # That its children share one traced train and predict function (no compilation per
    # child) is `test_shared_scoring.py::test_estimators_trace_their_functions_once`.
    x, y, vx, vy = _data()
    # The final selection (default with these estimators) is test_shared_scoring.py's.
    tuner = NASNetTuner(**CHILD, max_trials=4, seed=2, estimator=FreshWeights(seed=0),
                        oracle_kwargs={"update_every": 2, "units": 16}, final_selection=None,
                        directory=tmp_path, overwrite=True)
    tuner.search(x, y, validation_data=(vx, vy), epochs=1, batch_size=16, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 4 and all(t.status == "COMPLETED" for t in trials)
    assert tuner.estimator.num_scored == 4
    assert tuner.get_best_genotypes(1)[0] in [tuner.hypermodel.decode(t.hyperparameters)
                                              for t in trials]


def test_supernet_for_refuses_what_it_cannot_hold():
    with pytest.raises(ValueError, match="auxiliary head"):
        supernet_for(NASNetHyperModel(**CHILD, build_kwargs={"auxiliary_head": True}))


def test_shared_weights_search_in_process_then_reload(tmp_path):
    x, y, vx, vy = _data()

    def make(overwrite):
        return NASNetTuner(**CHILD, max_trials=3, seed=5,
                           estimator=SharedWeights(candidates_per_trial=4, seed=1),
                           oracle_kwargs={"update_every": 4, "units": 16},
                           final_selection=None, directory=tmp_path, overwrite=overwrite)

    tuner = make(True)
    tuner.search(x, y, validation_data=(vx, vy), batch_size=16, verbose=0)
    estimator = tuner.estimator
    # Three epochs; 4 candidates and the trial's own architecture scored in each.
    assert estimator.epochs_done == 3
    assert estimator.num_scored == 3 * (4 + 1)
    # Every candidate's score reached the controller, in order, beside the trials' rewards.
    rewards = tuner.oracle.rewards
    assert [r[2] for r in rewards].count("trial") == 3
    assert [r[1] for r in rewards if r[2] == "candidate"] == pytest.approx(
        [c[1] for c in estimator.candidates])
    assert len(estimator.candidates) == 12
    best = estimator.best_architectures(2)
    assert len(best) == 2 and best[0][1] >= best[1][1]
    state = json.loads((tmp_path / "untitled_project" / "shared_state.json").read_text())
    assert state["num_scored"] == 15 and len(state["scored"]) == 15
    saved = [np.array(keras.ops.convert_to_numpy(w)) for w in estimator.supernet.weights]

    again = make(False)
    child = Child(None, None, None, "x", str(tmp_path / "untitled_project" / "trial_x"),
                  hypermodel=again.hypermodel, oracle=again.oracle)
    again.estimator._ensure_supernet(child)
    again.estimator._maybe_restore(child)
    for a, w in zip(saved, again.estimator.supernet.weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(w))
    assert again.estimator.num_scored == 15


def _wait_for(path, proc, limit):
    start = time.time()
    while time.time() - start < limit:
        if path.exists() or proc.poll() is not None:
            return
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.tf_only
@pytest.mark.parametrize("real", [True, False], ids=["cifar10", "generated"])
def test_shared_weights_search_resumes_after_sigkill(tmp_path, real):
    cifar = ROOT.parent / "shared" / "data" / "cifar10" / "train"
    if real and not cifar.is_dir():
        pytest.skip(f"shared CIFAR-10 images not found at {cifar}")
    cmd = [sys.executable, str(ROOT / "tests" / "_shared_search.py"), "--directory",
           str(tmp_path), "--max-trials", "3"] + (["--cifar", str(cifar)] if real else [])
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    state = tmp_path / "shared" / "shared_state.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Killed as soon as the first epoch's state is on disk (mid-search).
    _wait_for(state, proc, 600)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads(state.read_text())
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    restored = json.loads((tmp_path / "restored.json").read_text())
    assert restored["epochs_done"] == saved["epochs_done"] >= 1
    assert restored["weights"] == saved["values_sha256"]
    finished = json.loads((tmp_path / "finished.json").read_text())
    assert len(finished["trials"]) == 3 == len(set(finished["trials"]))
    # Every epoch trained once: the three trials' epochs, none repeated after the kill.
    final = json.loads(state.read_text())
    assert final["epochs_done"] == 3
