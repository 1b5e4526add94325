"""`nasnet-tf search` with each strategy and estimator, its time budget (CLI and
`tuner.search(max_minutes=)`), resuming (old settings files, identical results on a rerun),
the controller's TensorBoard scalars, a real search whose stderr stays empty, and two
same-seed searches in their own processes that print the same per-trial table."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from nasnet_tf.cli import main
from tuners import nas_tuner
from tuners.nas_tuner import LayerwiseHyperModel, NASTuner
from tuners.nasnet_space import NASNetSearchSpace
from tuners.search_run import STRATEGIES, make_oracle

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
def test_each_strategy_runs_a_search(capsys, tmp_path, recwarn, strategy):
    if strategy == "evolution":
        pytest.importorskip("tuners.evolution")
    # The layer-wise space keeps children cheap; tests/test_cli.py runs a NASNet-space search.
    argv = ["--strategy", strategy, "--trials", "2", "--space", "layerwise", "--num-layers", "1"]
    out, err = _search(capsys, tmp_path, *argv)
    assert f"Starting the layerwise search ({strategy})" in out
    assert "Time budget" not in out and "Warning" not in err
    # The controller's cadence is derived from the budget: no warning about too few updates.
    assert [str(w.message) for w in recwarn if "update_every" in str(w.message)] == []
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
    assert top[0] == best and best["score"] == max(r["accuracy"] for r in rows)
    # Each number named for what it is: the children were trained standalone by the search.
    assert best["standalone_val_accuracy"] == best["score"] and best["estimate"] is None
    settings = json.loads((tmp_path / "search.json").read_text())
    assert settings["strategy"] == strategy and settings["estimator"] == "train"
    assert settings["update_every"] is None
    # The train estimator scores one architecture per trial, at the trials' cumulative time.
    estimation = json.loads((tmp_path / "estimation.json").read_text())
    assert estimation["estimator"] == "train" and estimation["num_scored"] == 2
    assert [e[1:] for e in estimation["scored"]] == [[r["accuracy"], "trial"] for r in rows]
    times = [e[0] for e in estimation["scored"]]
    assert 0 < times[0] < times[1] == pytest.approx(sum(r["seconds"] for r in rows), abs=2e-3)
    assert "2 architectures scored (train estimator)" in out
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
    assert top == [best] and top[0]["trial"] == rows[0]["trial"]
    assert json.loads((tmp_path / "search.json").read_text())["trials"] == 4


def _layerwise_tuner(tmp_path, cls=NASTuner, max_trials=5, overwrite=True):
    return cls(LayerwiseHyperModel(num_layers=1, input_shape=(8, 8, 3), classes=2),
               max_trials=max_trials, seed=0, directory=str(tmp_path), overwrite=overwrite)


def test_tuner_time_budget_ends_the_search_loop(tmp_path, monkeypatch):
    # A clock that jumps 61 s per trial: with 1.5 minutes, trials start at 0 s and 61 s only.
    clock = [100.0]
    monkeypatch.setattr(nas_tuner, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    ends = []

    class Tuner(NASTuner):
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
    resumed = _layerwise_tuner(tmp_path, Tuner, overwrite=False)
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


def _printed_table(stdout):
    """The per-trial table a search printed: its header and rows (no wall-time column)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "genotype"])
    end = next(i for i, line in enumerate(lines) if "architectures scored" in line)
    return lines[start:end]


@pytest.mark.slow
def test_same_seed_searches_print_the_same_table(tmp_path):
    # Three searches at once, each in its own process, as a user runs them: the children's
    # weights come from the seed and the trial id, so the same seed prints the same table.
    # Random search with the default seed, 0 (which KerasTuner's oracles take for "none").
    # --bn-momentum 0.5: ten steps move the children off chance, so their accuracies differ.
    argv = [sys.executable, "-m", "nasnet_tf", "search", "--strategy", "random", "--trials",
            "3", "--space", "layerwise", "--num-layers", "2", "--epochs", "1",
            "--steps-per-epoch", "10", "--batch-size", "32", "--bn-momentum", "0.5"]
    runs = {
        name: subprocess.Popen([*argv, *extra, "--output-dir", str(tmp_path / name)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, extra in (("first", []), ("again", ["--seed", "0"]), ("other", ["--seed", "1"]))
    }
    tables = {}
    for name, process in runs.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        tables[name] = _printed_table(out)
    assert len(tables["first"]) == 1 + 3
    assert tables["first"] == tables["again"]
    assert tables["first"] != tables["other"]
    accuracies = {line.split()[-3] for line in tables["first"][1:]}
    assert accuracies - {"0.1000"}, tables["first"]  # trained children, not all at chance


def _error(capsys, tmp_path, *argv):
    """Runs a search expected to fail with one line on stderr, status 2, nothing written."""
    out_dir = tmp_path / "run"
    try:
        status = main(["search", *TINY, "--output-dir", str(out_dir), *argv])
    except SystemExit as e:  # argparse
        status = e.code
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasnet-tf search: error: "), err
    assert not out_dir.exists()  # refused before anything is written
    return lines[0]


def test_estimator_options_are_checked_before_any_work(capsys, tmp_path):
    line = _error(capsys, tmp_path, "--candidates-per-trial", "5")
    assert "--candidates-per-trial applies to --estimator shared only (got --estimator " \
           "train)" in line
    line = _error(capsys, tmp_path, "--estimator", "fresh", "--candidates-per-trial", "5")
    assert "(got --estimator fresh)" in line
    for estimator in ("fresh", "shared"):
        line = _error(capsys, tmp_path, "--estimator", estimator, "--space", "layerwise")
        assert f"--estimator {estimator} scores children through a NASNet super-network: " \
               "it needs --space nasnet (got --space layerwise)" in line
    line = _error(capsys, tmp_path, "--estimator", "shared")  # TINY's P=24
    assert "needs --penultimate-filters a multiple of 48" in line and "got 24" in line
    line = _error(capsys, tmp_path, "--estimator", "bayes")
    assert "invalid choice: 'bayes'" in line and "fresh" in line
    line = _error(capsys, tmp_path, "--estimator", "shared", "--candidates-per-trial", "-1")
    assert "expected an integer >= 0, got '-1'" in line
    line = _error(capsys, tmp_path, "--finalists", "3")
    assert "--finalists applies to --estimator fresh / shared only" in line
    line = _error(capsys, tmp_path, "--estimator", "fresh", "--finalists", "x")
    assert "--finalists" in line and "'x'" in line


def test_finalists_default_is_the_final_selections():
    from nasnet_tf.cli.search import DEFAULT_FINALISTS
    from tuners import FinalSelection

    assert FinalSelection().num_standalone == DEFAULT_FINALISTS


def test_chief_worker_mode_is_refused_with_the_way_that_works(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    line = _error(capsys, tmp_path)
    assert "KERASTUNER_ORACLE_IP is set (KerasTuner's chief/worker mode)" in line
    assert "tuners.NASTuner" in line and "docs/distributed.md" in line


def test_ops_options_are_checked_before_any_work(capsys, tmp_path):
    line = _error(capsys, tmp_path, "--ops", "identity", "conv_9x9")
    assert "invalid choice: 'conv_9x9'" in line and "sep_conv_3x3" in line
    line = _error(capsys, tmp_path, "--ops", "identity", "conv_1x1", "identity")
    assert "--ops lists identity more than once" in line
    line = _error(capsys, tmp_path, "--combine-ops", "add", "multiply")
    assert "invalid choice: 'multiply'" in line
    line = _error(capsys, tmp_path, "--space", "layerwise", "--ops", "identity",
                  "--combine-ops", "add")
    assert "--ops and --combine-ops apply to --space nasnet only" in line


def _files_bytes(directory, names):
    return {name: (directory / name).read_bytes() for name in names}


def test_a_rerun_writes_identical_results_and_an_old_search_resumes(capsys, tmp_path):
    # Random search on one-layer children: cheap, and every child scores about the same, so
    # ties are likely; they break by trial id.
    argv = ["--strategy", "random", "--trials", "3", "--space", "layerwise",
            "--num-layers", "1", "--top", "3"]
    _search(capsys, tmp_path, *argv)
    results = ("best_genotype.json", "best_genotypes.json", "estimation.json", "trials.json")
    first = _files_bytes(tmp_path, results)
    top = json.loads(first["best_genotypes.json"])
    assert len(top) == 3
    keys = [(-t["score"], int(t["trial"])) for t in top]
    assert keys == sorted(keys)
    out, _ = _search(capsys, tmp_path, *argv)
    assert "Resuming" in out and "(3 trials done)" in out
    assert _files_bytes(tmp_path, results) == first  # byte for byte

    # A search.json from before --estimator, --ops and the derived --update-every.
    settings_path = tmp_path / "search.json"
    settings = json.loads(settings_path.read_text())
    old = {k: v for k, v in settings.items() if k != "estimator"}
    old["update_every"] = 3
    settings_path.write_text(json.dumps(old))
    out, _ = _search(capsys, tmp_path, *argv)
    assert "Resuming" in out
    resumed = json.loads(settings_path.read_text())
    assert resumed["update_every"] == 3 and resumed["estimator"] == "train"
    assert _files_bytes(tmp_path, results) == first
    # --update-every, when given, must be the search's own.
    out, _ = _search(capsys, tmp_path, *argv, "--update-every", "3")
    assert "Resuming" in out
    status = main(["search", *TINY, "--output-dir", str(tmp_path), *argv, "--update-every", "4"])
    assert status == 2 and "other settings (update_every)" in capsys.readouterr().err


def test_tensorboard_writes_the_controller_scalars(capsys, tmp_path):
    from tuners.tensorboard_log import read_scalars

    # One controller update per trial: two updates (and the oracle's warning that two are few).
    with pytest.warns(UserWarning, match="update_every=1 gives the controller 2 update"):
        out, _ = _search(capsys, tmp_path, "--trials", "2", "--update-every", "1", "--space",
                         "layerwise", "--num-layers", "1", "--tensorboard")
    logdir = tmp_path / "tuner" / "tensorboard" / "controller"
    assert [p.name.startswith("events.out.tfevents.") for p in logdir.iterdir()] == [True]
    rewards = read_scalars(str(logdir))["reward/mean"]
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert [step for step, _ in rewards] == [1, 2]
    assert [v for _, v in rewards] == pytest.approx([r["reward"] for r in rows], abs=1e-6)
    # --tensorboard is not a setting of the search: a rerun without it resumes.
    with pytest.warns(UserWarning, match="update_every=1"):
        out, _ = _search(capsys, tmp_path, "--trials", "2", "--update-every", "1", "--space",
                         "layerwise", "--num-layers", "1")
    assert "Resuming" in out


# The cheapest NASNet space for the super-network estimators: one block, two ops, add only.
SUPERNET = ["--epochs", "1", "--steps-per-epoch", "2", "--num-blocks", "1", "--ops", "identity",
            "conv_1x1", "--combine-ops", "add", "--penultimate-filters", "48",
            "--batch-size", "32", "--trials", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["fresh", "shared"])
def test_supernet_estimators_run_a_search(capsys, tmp_path, estimator):
    extra = ["--candidates-per-trial", "3"] if estimator == "shared" else []
    argv = ["search", *SUPERNET, "--estimator", estimator, *extra, "--finalists", "2",
            "--output-dir", str(tmp_path)]
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"Starting the nasnet search (controller, {estimator} weights)" in out
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 2 and all(0 <= r["accuracy"] <= 1 for r in rows)
    for line in _table_rows(out, rows):
        assert line[-4] == "-"  # params: no standalone child is built
    assert all(r["params"] is None for r in rows)
    settings = json.loads((tmp_path / "search.json").read_text())
    assert settings["estimator"] == estimator
    assert settings["ops"] == ["identity", "conv_1x1"] and settings["combine_ops"] == ["add"]
    assert settings.get("candidates_per_trial") == (3 if estimator == "shared" else None)
    estimation = json.loads((tmp_path / "estimation.json").read_text())
    # fresh: one child per trial; shared: 3 candidates and the trial's own per trial.
    expected = 2 if estimator == "fresh" else 2 * (3 + 1)
    assert estimation["estimator"] == estimator and estimation["num_scored"] == expected
    assert len(estimation["scored"]) == expected
    times = [e[0] for e in estimation["scored"]]
    assert times == sorted(times) and all(0 <= e[1] <= 1 for e in estimation["scored"])
    sources = [e[2] for e in estimation["scored"]]
    assert sources == (["trial"] * 2 if estimator == "fresh"
                       else ["candidate"] * 3 + ["trial"] + ["candidate"] * 3 + ["trial"])
    trial_scores = [e[1] for e in estimation["scored"] if e[2] == "trial"]
    assert trial_scores == pytest.approx([r["accuracy"] for r in rows])
    assert f"{expected} architectures scored ({estimator} estimator)" in out
    # The pick is the final selection's: both numbers labelled; 2 finalists trained.
    best = json.loads((tmp_path / "best_genotype.json").read_text())
    assert best["standalone"].startswith("trained from scratch for 1 epoch, scored")
    assert best["standalone_val_accuracy"] == best["score"] == best["standalone_scores"]["1"]
    assert best["estimate_kind"].startswith(
        "weight-sharing" if estimator == "shared" else "trial val_accuracy")
    top = json.loads((tmp_path / "best_genotypes.json").read_text())
    assert sum(t["standalone_val_accuracy"] is not None for t in top) == 2
    # A rerun resumes, finds the budget spent, and keeps the record and the results.
    before = _files_bytes(tmp_path, ("estimation.json", "best_genotypes.json"))
    assert main(argv) == 0
    assert "Resuming" in capsys.readouterr().out
    assert _files_bytes(tmp_path, ("estimation.json", "best_genotypes.json")) == before


@pytest.mark.slow
def test_fresh_without_finalists_picks_the_best_trial_and_says_so(capsys, tmp_path):
    # What `nasnet-tf demo` runs: the trials' own ranking, no standalone training after it.
    argv = ["search", *SUPERNET, "--estimator", "fresh", "--finalists", "0",
            "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "trials.json").read_text())
    best = json.loads((tmp_path / "best_genotype.json").read_text())
    assert best["standalone_val_accuracy"] is None
    assert best["estimate"] == max(r["accuracy"] for r in rows)
    assert ("(fresh: the trial's validation accuracy, the child trained from fresh weights "
            "inside the super-network)\n") in out
    assert (f"Best trial {best['trial']}: trial val_accuracy {best['estimate']:.4f} "
            "(--finalists 0: none trained standalone)") in out
    assert "Final selection" not in out and "final selection" not in out


def test_settings_from_before_the_new_flags_read_as_their_defaults():
    from nasnet_tf.genotype import COMBINE_OPS, OP_NAMES
    from tuners.search_run import _resumed_settings

    old = {"space": "nasnet", "trials": 6, "update_every": 3}  # before --strategy and others
    now = {"space": "nasnet", "trials": 6, "update_every": None, "strategy": "controller",
           "estimator": "train", "ops": list(OP_NAMES), "combine_ops": list(COMBINE_OPS)}
    previous, settings = _resumed_settings(old, now, update_every_given=False)
    assert previous == settings == {**now, "update_every": 3}
    previous, settings = _resumed_settings(old, {**now, "update_every": 4}, True)
    assert previous["update_every"] == 3 and settings["update_every"] == 4  # a change
    previous, settings = _resumed_settings(old, {**now, "ops": ["identity"]}, False)
    assert previous != settings
