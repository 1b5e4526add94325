"""Durable writes per trial (issue 18, the oracles' per-trial cost).

A trial's end is the oracles' one commit point: `oracle.json` (with its sidecar, the companion
files it names that were not synced yet, and the project directory) is `fsync`ed there; the
other writes of a trial (`trial.json`, `oracle.prev.json`, the state saved by `create_trial`)
are whole-or-nothing but not synced (see "Durability" in `tuners.state_files`). These tests
keep the count from creeping back up, check that the commit still syncs what it must, and
that a search killed between trials resumes with no trial lost.
"""

import os
import signal
import subprocess
import sys
import textwrap

import keras_tuner
import pytest
from _evolution_toy import make_tuner as make_evolution_tuner
from _evolution_toy import toy_score
from _oracle_toy import make_tuner as make_controller_tuner
from _oracle_toy import quiet_small_budgets, trial_ids  # noqa: F401

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


class _FsyncLog:
    """Records what each `os.fsync` synced (the fd's path, read from /proc on Linux)."""

    def __init__(self, monkeypatch):
        self.paths = []
        original = os.fsync

        def fsync(fd):
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = "?"
            self.paths.append(path)
            return original(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def _search_and_count(monkeypatch, tuner):
    log = _FsyncLog(monkeypatch)
    tuner.search(verbose=0)
    return log.paths


# Before issue 18: 14 (evolution) and about 13 (controller) fsyncs per trial; now 3 for the
# commit (oracle.json, its sidecar, the project directory) plus, for the controller, the
# controller file (and its sidecar) when it changed since the last commit.
@pytest.mark.parametrize(
    "make, per_trial, tmp_prefix",
    [(make_evolution_tuner, 3, ".evolution_oracle_tmp_"),
     (make_controller_tuner, 5, ".controller_oracle_tmp_")],
    ids=["evolution", "controller"],
)  # fmt: skip
def test_fsyncs_per_trial_stay_few_and_each_trial_end_commits(
    tmp_path, monkeypatch, make, per_trial, tmp_prefix
):
    trials = 8
    tuner = make(tmp_path, max_trials=trials, overwrite=True)
    project = os.path.realpath(tmp_path / "toy")
    paths = _search_and_count(monkeypatch, tuner)
    assert len(tuner.oracle.trials) == trials
    assert len(paths) <= per_trial * trials, paths
    # No trial file is synced: they are written three times per trial.
    assert not [p for p in paths if os.path.basename(os.path.dirname(p)).startswith("trial_")]
    # Every trial's end is a commit: the new oracle.json, its sidecar, then the directory.
    commits = [i for i, p in enumerate(paths) if p == project]
    assert len(commits) >= trials
    for i in commits:
        data, sidecar = paths[i - 2], paths[i - 1]
        assert os.path.basename(data).startswith(tmp_prefix) and data.endswith(".json")
        # The sidecar's temporary file carries the oracle's prefix too (swept with it).
        assert os.path.basename(sidecar).startswith(tmp_prefix) and sidecar.endswith(".sha256")


def test_an_unchanged_state_is_not_rewritten_nor_synced_again(tmp_path, monkeypatch):
    tuner = make_evolution_tuner(tmp_path, max_trials=3, overwrite=True)
    tuner.search(verbose=0)
    oracle_json = tmp_path / "toy" / "oracle.json"
    before = os.stat(oracle_json).st_ino
    log = _FsyncLog(monkeypatch)
    tuner.save()  # what KerasTuner does after every `end_trial`
    tuner.oracle.save()
    assert log.paths == []
    assert os.stat(oracle_json).st_ino == before


_KILL_BETWEEN_TRIALS = textwrap.dedent(
    """
    import os, signal, sys
    sys.path[:0] = [{tests!r}, {root!r}]
    from _evolution_toy import ToyTuner, make_tuner

    def pre_create_trial(self):
        ended = sum(t.status == "COMPLETED" for t in self.oracle.trials.values())
        if ended == {kill_after}:
            os.kill(os.getpid(), signal.SIGKILL)

    ToyTuner.pre_create_trial = pre_create_trial
    make_tuner({directory!r}, {max_trials}, log={log!r}).search(verbose=0)
    """
)


@pytest.mark.parametrize("kill_after", [1, 4])
def test_a_search_killed_between_trials_resumes_with_no_trial_lost(tmp_path, kill_after):
    max_trials, log = 7, tmp_path / "runs.txt"
    script = _KILL_BETWEEN_TRIALS.format(
        tests=TESTS, root=ROOT, kill_after=kill_after, directory=str(tmp_path),
        max_trials=max_trials, log=str(log),
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    ran = log.read_text().split()
    assert ran == trial_ids(max_trials)[:kill_after]

    # Reloading (what a restart does first) finds every trial that ended before the kill.
    resumed = make_evolution_tuner(tmp_path, max_trials=max_trials, log=str(log))
    ended = {k: t for k, t in resumed.oracle.trials.items() if t.status == COMPLETED}
    assert sorted(ended) == ran
    for trial in ended.values():
        assert trial.score == toy_score(trial.hyperparameters.values)
    assert sorted(resumed.oracle.end_order) == ran

    resumed.search(verbose=0)
    final = resumed.oracle
    assert sorted(final.trials) == trial_ids(max_trials)
    assert all(t.status == COMPLETED for t in final.trials.values())
    assert log.read_text().split() == trial_ids(max_trials)  # none lost, none run twice
