"""`nasnet-tf search` with each strategy, its time budget (CLI and `tuner.search(max_minutes=)`),
and a real search whose stderr stays empty."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from nasnet_tf.cli import main
from nasnet_tf.cli.search import STRATEGIES, make_oracle
from tuners import nas_tuner
from tuners.nas_tuner import LayerwiseTuner
from tuners.nasnet_space import NASNetSearchSpace

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--num-blocks", "2",
        "--penultimate-filters", "24", "--batch-size", "32"]


def _search(capsys, out_dir, *argv):
    status = main(["search", *TINY, "--output-dir", str(out_dir), *argv])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out, err


def _table_rows(out, rows):
    ids = {r["trial"] for r in rows}
    return [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ids]


@pytest.mark.parametrize("strategy", ["controller", "evolution", "random"])
def test_each_strategy_runs_a_search(capsys, tmp_path, strategy):
    if strategy == "evolution":
        pytest.importorskip("tuners.evolution")
    # The layer-wise space keeps children cheap; tests/test_cli.py runs a NASNet-space search.
    argv = ["--strategy", strategy, "--trials", "2", "--update-every", "2",
            "--space", "layerwise", "--num-layers", "1"]
    out, err = _search(capsys, tmp_path, *argv)
    assert f"Starting the layerwise search ({strategy})" in out
    assert "Time budget" not in out and "Warning" not in err
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len({r["trial"] for r in rows}) == len(rows) == 2
    table = _table_rows(out, rows)
    assert len(table) == 2
    for row, line in zip(rows, table):
        assert row["params"] > 0 and 0 <= row["accuracy"] <= 1
        if strategy == "controller":
            assert row["entropy"] > 0 and row["reward"] == pytest.approx(row["accuracy"])
        else:  # the controller's columns
            assert row["entropy"] is None and row["reward"] is None
            assert line[-2:] == ["-", "-"]
    best = json.loads((tmp_path / "best_genotype.json").read_text())
    top = json.loads((tmp_path / "best_genotypes.json").read_text())
    assert top[0]["genotype"] == best and top[0]["score"] == max(r["accuracy"] for r in rows)
    assert json.loads((tmp_path / "search.json").read_text())["strategy"] == strategy
    # The directory belongs to this strategy: another one is refused before any work.
    other = "random" if strategy != "random" else "controller"
    status = main(["search", *TINY, "--output-dir", str(tmp_path), *argv, "--strategy", other])
    assert status == 2 and "other settings (strategy)" in capsys.readouterr().err


def test_strategies_repeat_with_their_seed():
    def first_trial(strategy, seed):
        if strategy == "evolution":
            pytest.importorskip("tuners.evolution")
        oracle = make_oracle(strategy, max_trials=3, seed=seed)
        hp = oracle.get_space()
        NASNetSearchSpace(num_blocks=2).declare(hp)
        oracle.update_space(hp)
        return oracle.populate_space("t0")["values"]

    for strategy in STRATEGIES:
        assert first_trial(strategy, 3) == first_trial(strategy, 3)
        assert first_trial(strategy, 3) != first_trial(strategy, 4)
    with pytest.raises(ValueError, match="Accepted: \\['controller', 'evolution', 'random'\\]"):
        make_oracle("bayesian", max_trials=3, seed=0)
    with pytest.raises(ValueError, match="evolution strategy only"):
        make_oracle("random", max_trials=3, seed=0, population_size=4)


def test_max_minutes_stops_the_search_and_writes_results(capsys, tmp_path):
    # 0.3 s: the first trial starts at once and outlasts it, so no second trial starts.
    out, _ = _search(capsys, tmp_path, "--strategy", "random", "--trials", "4",
                     "--space", "layerwise", "--num-layers", "1", "--max-minutes", "0.005")
    assert "4 trials, at most 0.005 minutes" in out
    assert "Time budget of 0.005 minutes spent: 1 of 4 trials done" in out
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 1 < 4
    best = json.loads((tmp_path / "best_genotype.json").read_text())
    top = json.loads((tmp_path / "best_genotypes.json").read_text())
    assert [t["genotype"] for t in top] == [best] and top[0]["trial"] == rows[0]["trial"]
    assert json.loads((tmp_path / "search.json").read_text())["trials"] == 4


def _layerwise_tuner(tmp_path, cls=LayerwiseTuner, max_trials=5):
    return cls(num_layers=1, input_shape=(8, 8, 3), classes=2, max_trials=max_trials, seed=0,
               directory=str(tmp_path), overwrite=True)


def test_tuner_time_budget_ends_the_search_loop(tmp_path, monkeypatch):
    # A clock that jumps 61 s per trial: with 1.5 minutes, trials start at 0 s and 61 s only.
    clock = [100.0]
    monkeypatch.setattr(nas_tuner, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    ends = []

    class Tuner(LayerwiseTuner):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            clock[0] += 61.0

        def on_search_end(self):
            super().on_search_end()
            ends.append(len(self.oracle.trials))

    rng = np.random.default_rng(0)
    x, y = rng.random((8, 8, 8, 3), "float32"), rng.integers(0, 2, 8)
    tuner = _layerwise_tuner(tmp_path, Tuner)
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0, max_minutes=1.5)
    assert tuner.stopped_by_time_budget
    assert ends == [2]  # on_search_end ran once, after the second trial
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 2
    assert len(tuner.get_best_genotypes(5)) == 2
    # A resumed tuner (same directory) gets its budget afresh and continues the count.
    resumed = Tuner(num_layers=1, input_shape=(8, 8, 3), classes=2, max_trials=5, seed=0,
                    directory=str(tmp_path), overwrite=False)
    resumed.search(x, y, validation_data=(x, y), epochs=1, verbose=0, max_minutes=1.0)
    assert resumed.stopped_by_time_budget and ends == [2, 3]


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_tuner_rejects_a_bad_time_budget(tmp_path, value):
    tuner = _layerwise_tuner(tmp_path)
    with pytest.raises(ValueError, match=r"`max_minutes` must be a number of minutes > 0.*"
                       r"Received: max_minutes="):
        tuner.search(np.zeros((2, 8, 8, 3)), np.zeros(2), validation_split=0.5,
                     max_minutes=value)
    assert not tuner.oracle.trials


@pytest.mark.slow
def test_a_real_search_prints_no_log_lines_or_warnings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "nasnet_tf", "search", "--strategy", "random", "--trials", "1",
         *TINY, "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow / absl log line, no Python warning
    assert "Best trial 0" in result.stdout
    assert (tmp_path / "best_genotype.json").is_file()
