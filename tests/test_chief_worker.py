"""KerasTuner chief/worker searches on 127.0.0.1 that survive their workers and their chief.

The chief (KERASTUNER_TUNER_ID=chief) serves the oracle over gRPC and runs the controller; the
workers run the trials (`tests/_oracle_toy.py`, sleep-based toy trials). Each is a separate
process; the tests coordinate with them through files in `tmp_path`, and every wait is
bounded, so nothing can hang CI. See `docs/distributed.md`.

The machinery under test (KerasTuner's gRPC service, the oracles' leases and bookkeeping in
`tuners.state_files`) does not depend on the Keras backend, and the controller itself is
tested under both backends in `tests/test_controller_oracle.py`: the process tests run once, under
TensorFlow.
"""

import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from tuners.controller_oracle import ControllerOracle
from tuners.evolution import EvolutionOracle

pytest.importorskip("grpc")

TOY = pathlib.Path(__file__).with_name("_oracle_toy.py")
LIMIT_S = 150  # per test, for all its waits together
COMPLETED = trial_module.TrialStatus.COMPLETED
MAX = keras_tuner.Objective("score", "max")

multi_process = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="backend-independent processes (KerasTuner's gRPC and the oracle's bookkeeping); "
    "run once, under TensorFlow, to save CI time",
)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Starts the toy's chief and workers; kills whatever is left at the end."""

    def __init__(self, tmp_path, max_trials, *args):
        self.tmp_path = tmp_path
        self.port = str(_free_port())
        self.log = tmp_path / "runs.txt"
        self.cmd = [sys.executable, str(TOY), "--directory", str(tmp_path), "--max-trials",
                    str(max_trials), "--sleep", "0.2", "--log", str(self.log), *args]  # fmt: skip
        self.procs = []  # [(name, Popen, log file)]
        self.deadline = time.monotonic() + LIMIT_S

    def start(self, tuner_id, *args):
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=self.port,
        )
        if tuner_id != "chief":
            # The toy's workers train nothing: Keras' NumPy backend starts them in half the
            # time. The chief trains the controller, under the backend of the test run.
            env["KERAS_BACKEND"] = "numpy"
        name = f"{tuner_id}.{len(self.procs)}"
        out = open(self.tmp_path / f"{name}.log", "w")  # closed in `close`
        proc = subprocess.Popen([*self.cmd, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, out))
        return proc

    def logs(self):
        return "\n".join(
            f"--- {name} (rc={proc.poll()}):\n{(self.tmp_path / f'{name}.log').read_text()[-2000:]}"
            for name, proc, _ in self.procs
        )

    def wait_until(self, condition, what):
        start = time.monotonic()
        while not condition():
            if time.monotonic() > self.deadline:
                pytest.fail(f"Timed out waiting for {what}.\n{self.logs()}")
            time.sleep(0.05)
        print(f"waited {time.monotonic() - start:.1f} s for {what}")

    def serving(self):
        try:
            socket.create_connection(("127.0.0.1", int(self.port)), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self, proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def wait_all(self):
        start = time.monotonic()
        for name, proc, _ in self.procs:
            try:
                proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} did not finish.\n{self.logs()}")
        print(f"waited {time.monotonic() - start:.1f} s for the processes to finish")

    def close(self):
        for _, proc, out in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()


@pytest.fixture
def cluster_factory(tmp_path):
    clusters = []

    def make(max_trials, *args):
        clusters.append(Cluster(tmp_path, max_trials, *args))
        return clusters[-1]

    yield make
    for cluster in clusters:
        cluster.close()


def _check_search(tmp_path, max_trials):
    """Every trial completed and rewarded once; returns the runs log as [(tuner, trial)]."""
    oracle = ControllerOracle(objective=MAX, max_trials=max_trials)
    oracle._set_project_dir(str(tmp_path), "toy")
    oracle.reload()
    ids = [f"{i:02d}" for i in range(max_trials)]
    assert sorted(oracle.trials) == ids
    assert all(t.status == COMPLETED for t in oracle.trials.values())
    assert sorted(oracle.end_order) == ids  # each ended once

    saved = json.loads((tmp_path / "toy" / "oracle.json").read_text())["controller_oracle"]
    from_trials = [r for r in saved["rewards"] if r[2] == "trial"]
    assert sorted(r[0] for r in from_trials) == ids
    for trial_id, reward, _ in from_trials:
        assert reward == oracle.trials[trial_id].score
    assert sorted(saved["rewarded"]) == ids
    history = saved["controller"]["history"]
    assert len(history) == len(saved["rewards"]) // 3 >= 3
    assert len(saved["pending"]) == len(saved["rewards"]) % 3
    assert oracle.controller.num_updates == len(history)
    return [tuple(line.split()) for line in (tmp_path / "runs.txt").read_text().splitlines()]


@multi_process
@pytest.mark.slow
def test_a_killed_worker_s_trial_runs_again_on_the_other(tmp_path, cluster_factory):
    max_trials = 10
    (tmp_path / "block").mkdir()
    cluster = cluster_factory(max_trials, "--trial-lease", "4", "--block-trial", "03",
                              "--block-dir", str(tmp_path / "block"))  # fmt: skip
    # Start-up skew: the workers are up and calling before the chief serves; they wait.
    workers = {}
    for tuner_id in ("tuner0", "tuner1"):
        workers[tuner_id] = cluster.start(tuner_id, "--ready", str(tmp_path / f"{tuner_id}.up"))
    cluster.wait_until(
        lambda: all((tmp_path / f"{t}.up").exists() for t in workers), "the workers to start"
    )
    chief = cluster.start("chief")

    blocked = tmp_path / "block" / "blocked"
    cluster.wait_until(lambda: blocked.exists() and blocked.read_text(), "trial 03 to block")
    victim = blocked.read_text()
    cluster.kill(workers[victim])
    (survivor,) = set(workers) - {victim}
    cluster.wait_all()
    assert chief.returncode == 0, cluster.logs()
    assert workers[survivor].returncode == 0, cluster.logs()
    assert workers[victim].returncode == -signal.SIGKILL

    runs = _check_search(tmp_path, max_trials)
    # Trial 03 ran twice: on the killed worker, then (its lease run out) on the other one,
    # under its own id. Every other trial ran once.
    assert [r for r in runs if r[1] == "03"] == [(victim, "03"), (survivor, "03")]
    others = sorted(trial_id for _, trial_id in runs if trial_id != "03")
    assert others == [f"{i:02d}" for i in range(max_trials) if i != 3]


@multi_process
@pytest.mark.slow
def test_a_killed_chief_restarts_from_its_saved_state(tmp_path, cluster_factory):
    sys.path.insert(0, str(TOY.parent))
    try:
        from _oracle_toy import saved_digest
    finally:
        sys.path.remove(str(TOY.parent))
    max_trials = 10
    (tmp_path / "block").mkdir()
    cluster = cluster_factory(max_trials, "--trial-lease", "60", "--block-trial", "05",
                              "--block-dir", str(tmp_path / "block"))  # fmt: skip
    chief = cluster.start("chief")
    # Workers started before the chief serves wait in gRPC's reconnect backoff (seconds);
    # the other test covers that.
    cluster.wait_until(cluster.serving, "the chief to serve")
    workers = [cluster.start(tuner_id) for tuner_id in ("tuner0", "tuner1")]
    oracle_json = tmp_path / "toy" / "oracle.json"

    def updated_and_blocked():
        if not (tmp_path / "block" / "blocked").exists():
            return False
        state = json.loads(oracle_json.read_text())["controller_oracle"]
        return state["controller"] is not None and state["controller"]["num_updates"] >= 1

    cluster.wait_until(updated_and_blocked, "a controller update and trial 05 to block")
    cluster.kill(chief)  # trial 05 is still running on its worker
    saved = saved_digest(str(tmp_path / "toy"))
    assert saved["pending"] or saved["num_updates"]
    loaded = tmp_path / "loaded.json"
    chief = cluster.start("chief", "--loaded", str(loaded))
    cluster.wait_until(loaded.exists, "the restarted chief to reload")
    # The controller (weights, optimizer, baseline, random state), the PPO buffers and the
    # running trials, exactly as saved before the kill.
    assert json.loads(loaded.read_text()) == saved
    (tmp_path / "block" / "release").touch()
    cluster.wait_all()
    assert chief.returncode == 0, cluster.logs()
    assert [w.returncode for w in workers] == [0, 0], cluster.logs()

    # Every trial ran once: the worker that ran trial 05 across the restart reported it to
    # the new chief, which had kept it running for that worker.
    runs = _check_search(tmp_path, max_trials)
    assert sorted(trial_id for _, trial_id in runs) == [f"{i:02d}" for i in range(max_trials)]


# ----------------------------------------------------- the leases, in process
def _oracle(kind, tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Int("c", 0, 8, step=2)
    if kind == "controller":
        oracle = ControllerOracle(
            objective=MAX, max_trials=3, hyperparameters=hp, units=8, update_every=2,
            seed=1, trial_lease=0.5,
        )  # fmt: skip
    else:
        oracle = EvolutionOracle(
            objective=MAX, max_trials=3, hyperparameters=hp, population_size=2,
            sample_size=1, seed=1, trial_lease=0.5,
        )  # fmt: skip
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


def _end(oracle, trial, score):
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = COMPLETED
    oracle.end_trial(trial)


def _counted(oracle, kind):
    if kind == "controller":
        return [r[0] for r in oracle.rewards if r[2] == "trial"]
    return [h["id"] for h in oracle.history if h["source"] == "trial"]


@pytest.mark.filterwarnings("ignore:ControllerOracle. update_every")
@pytest.mark.parametrize("kind", ["controller", "evolution"])
def test_a_silent_worker_s_trial_is_handed_on_and_counted_once(kind, tmp_path, caplog):
    oracle = _oracle(kind, tmp_path)
    t0 = oracle.create_trial("tuner0")
    t1 = oracle.create_trial("tuner1")
    _end(oracle, t1, 1.0)
    time.sleep(0.6)  # tuner0 says nothing for longer than `trial_lease`
    with caplog.at_level(logging.WARNING, logger="tuners.trial_leases"):
        again = oracle.create_trial("tuner1")
    assert again.trial_id == t0.trial_id
    assert again.hyperparameters.values == t0.hyperparameters.values
    assert "tuner0" not in oracle.ongoing_trials and "tuner0" not in oracle.tuner_ids
    assert "has not reported" in caplog.text

    # Weight sharing goes on meanwhile.
    candidates = oracle.sample_candidates(2)
    oracle.add_rewards([c["id"] for c in candidates], [0.5, 0.25])

    _end(oracle, again, 2.0)
    # tuner0 was alive after all: its late reports are ignored; the result counts once.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tuners.trial_leases"):
        oracle.update_trial(t0.trial_id, {"score": 99.0})
        late = trial_module.Trial(oracle.get_space(), trial_id=t0.trial_id, status=COMPLETED)
        oracle.end_trial(late)
    assert caplog.text.count("ignored") == 2
    assert oracle.trials[t0.trial_id].score == 2.0
    assert oracle.end_order.count(t0.trial_id) == 1
    assert sorted(_counted(oracle, kind)) == sorted([t0.trial_id, t1.trial_id])
    assert len(set(oracle.values_hashes.values())) == len(oracle.trials)

    # Winding down: the budget is spent once trial 2 runs; a worker asking meanwhile waits.
    last = oracle.create_trial("tuner1")
    assert last.status == trial_module.TrialStatus.RUNNING
    assert oracle.create_trial("tuner0").status == trial_module.TrialStatus.IDLE
    _end(oracle, last, 3.0)
    assert oracle.create_trial("tuner1").status == trial_module.TrialStatus.STOPPED
    assert oracle.create_trial("tuner0").status == trial_module.TrialStatus.STOPPED
    assert not oracle.ongoing_trials and not oracle.tuner_ids  # the chief may exit

    # All of it was saved: a reload sees each trial ended once, with its values' hash.
    reloaded = _oracle(kind, tmp_path)
    reloaded.reload()
    assert reloaded.values_hashes == oracle.values_hashes
    assert sorted(reloaded.end_order) == sorted(oracle.end_order)
    assert sorted(_counted(reloaded, kind)) == sorted(_counted(oracle, kind))


def test_trial_lease_and_max_collisions_are_checked():
    with pytest.raises(ValueError, match="trial_lease=0"):
        ControllerOracle(objective=MAX, max_trials=2, trial_lease=0)
    with pytest.raises(ValueError, match="max_collisions=-1"):
        EvolutionOracle(objective=MAX, max_trials=2, max_collisions=-1)
