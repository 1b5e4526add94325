"""`ControllerOracle` inside real KerasTuner searches: rewards, failures, space checks, resume."""

import itertools
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import keras
import keras_tuner
import numpy as np
import pytest
from _oracle_toy import (
    BEST,
    PeakedHyperModel,
    ScoreTuner,
    ToyHyperModel,
    ToyTuner,
    make_tuner,
    peaked_score,
    quiet_small_budgets,  # noqa: F401 (an autouse fixture)
    toy_score,
)

from tuners.controller_oracle import ControllerOracle
from tuners.decisions import decision_values, nearest_untried
from tuners.state_files import json_default

TOY = pathlib.Path(__file__).with_name("_oracle_toy.py")
MAX = keras_tuner.Objective("score", "max")
COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
FAILED = keras_tuner.engine.trial.TrialStatus.FAILED


def _ids(n):
    return [f"{i:0{len(str(n))}d}" for i in range(n)]


def _controller_arrays_equal(a, b):
    for key in ("weights", "optimizer"):
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)
    for key in ("baseline", "num_updates", "rng", "history", "config"):
        assert a[key] == b[key], key


def test_search_samples_rewards_updates_and_learns(tmp_path):
    max_trials = 20
    tuner = make_tuner(
        tmp_path, max_trials=max_trials, overwrite=True, update_every=3, learning_rate=0.005
    )
    tuner.search(verbose=0)
    oracle = tuner.oracle
    trials = oracle.trials
    # The toy space has 30 configurations: the whole budget runs, however often the
    # controller draws configurations it tried.
    n = len(trials)
    assert sorted(trials) == _ids(max_trials)
    assert all(t.status == COMPLETED for t in trials.values())
    # One decision per tunable hp, in the space's order; Fixed is not one.
    assert oracle.controller.num_choices == [3, 2, 5]
    assert oracle._signature == [["a", 3], ["b", 2], ["c", 5]]
    # Each trial's values are the decoding of the decisions the controller made for it.
    values_of = {"a": [1, 2, 3], "b": [False, True], "c": [0, 2, 4, 6, 8]}
    for trial_id, decisions in oracle.trial_decisions.items():
        values = trials[trial_id].hyperparameters.values
        assert values["f"] == 7
        for name, d in zip("abc", decisions):
            assert values[name] == values_of[name][d]
    # No configuration was trained twice.
    assert len({json.dumps(t.hyperparameters.values, sort_keys=True) for t in trials.values()}) == n
    # Every trial's reward (its score) reached the controller exactly once.
    from_trials = [r for r in oracle.rewards if r[2] == "trial"]
    assert sorted(r[0] for r in from_trials) == sorted(trials)
    for trial_id, reward, _ in from_trials:
        assert reward == pytest.approx(toy_score(trials[trial_id].hyperparameters.values))
    # Updates every 3 rewards (repeat draws are rewards too).
    assert len(oracle.history) == len(oracle.rewards) // 3
    assert len(oracle.pending_rewards) == len(oracle.rewards) % 3
    assert {"reward_mean", "baseline", "entropy", "loss"} <= set(oracle.history[0])
    best = tuner.get_best_hyperparameters()[0].values
    assert toy_score(best) == max(toy_score(t.hyperparameters.values) for t in trials.values())
    # The controller moved towards the best configuration (chance: 1/30).
    p_best = float(np.prod(oracle.controller.probabilities([[2, 1, 4]])))
    assert p_best > 0.5, p_best
    assert dict(BEST, f=7) in [t.hyperparameters.values for t in trials.values()]


def test_small_space_is_exhausted_not_repeated(tmp_path):
    class TwoByTwo(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("x", [0, 1])
            hp.Boolean("y")

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            return {"score": float(v["x"] + v["y"])}

    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=10,
        units=8,
        update_every=2,
        seed=1,
    )
    tuner = Tuner(oracle=oracle, hypermodel=TwoByTwo(), directory=str(tmp_path))
    tuner.search(verbose=0)
    assert len(oracle.trials) == 4  # every configuration once, then stopped
    values = {tuple(t.hyperparameters.values.items()) for t in oracle.trials.values()}
    assert len(values) == 4
    # Draws of tried configurations were rewarded from their results ("repeat").
    repeats = [r for r in oracle.rewards if r[2] == "repeat"]
    assert repeats
    assert all(r[1] == oracle.trials[r[0]].score for r in oracle.rewards)

    # Under weight sharing a repeat is a new measurement: the whole budget runs.
    oracle = ControllerOracle(objective=MAX, max_trials=10, units=8, update_every=2, seed=1,
                              rescore_repeats=True)  # fmt: skip
    tuner = Tuner(oracle=oracle, hypermodel=TwoByTwo(), directory=str(tmp_path / "rescore"))
    tuner.search(verbose=0)
    values = [tuple(t.hyperparameters.values.items()) for t in oracle.trials.values()]
    assert len(values) == 10 and len(set(values)) < 10
    assert [r[2] for r in oracle.rewards] == ["trial"] * 10  # each run once, none "repeat"


def _longest_run(items, wanted):
    longest = run = 0
    for item in items:
        run = run + 1 if item == wanted else 0
        longest = max(longest, run)
    return longest


@pytest.mark.parametrize("seed", range(5))
def test_a_converged_controller_runs_the_whole_budget(tmp_path, seed):
    # 7**5 = 16,807 configurations and a reward peaked at one: a fast learner converges
    # within some 20 trials, after which most of its draws are configurations it tried.
    max_trials, max_collisions = 30, 5
    oracle = ControllerOracle(
        objective=MAX, max_trials=max_trials, units=8, update_every=2, learning_rate=0.2,
        ppo_epochs=1, max_collisions=max_collisions, seed=seed,
    )  # fmt: skip
    tuner = ScoreTuner(peaked_score, oracle=oracle, hypermodel=PeakedHyperModel(),
                       directory=str(tmp_path), overwrite=True)  # fmt: skip
    tuner.search(verbose=0)
    assert sorted(oracle.trials) == _ids(max_trials)
    values = {json.dumps(t.hyperparameters.values, sort_keys=True) for t in oracle.trials.values()}
    assert len(values) == max_trials  # no configuration trained twice
    # At some trial, max_collisions + 1 draws in a row were tried configurations (each
    # rewarded as a "repeat"): KerasTuner's rule, and this oracle's before, stopped there.
    assert _longest_run([r[2] for r in oracle.rewards], "repeat") >= max_collisions + 1


def test_nearest_untried_searches_rings_around_the_start():
    tried = set(itertools.product(range(3), range(3))) - {(2, 2)}
    assert nearest_untried((0, 0), [3, 3], lambda d: d not in tried) == [(2, 2)]
    assert nearest_untried((2, 1), [3, 3], lambda d: d not in tried) == [(2, 2)]
    assert nearest_untried((1, 1), [3, 3], lambda d: False) == []  # all tried: exhausted
    around = nearest_untried((0, 0, 0), [2, 3, 2], lambda d: d != (0, 0, 0))
    assert around == [(1, 0, 0), (0, 1, 0), (0, 2, 0), (0, 0, 1)]  # one decision changed


# KerasTuner's own metrics tracker warns on a history of NaNs; the test makes one on purpose.
@pytest.mark.filterwarnings("ignore:All-NaN axis encountered:RuntimeWarning")
def test_failed_and_nan_trials_are_penalised_and_search_goes_on(tmp_path):
    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=12,
        units=16,
        update_every=4,
        failure_reward=-1.0,
        seed=3,
        max_retries_per_trial=1,
        max_consecutive_failed_trials=50,
    )
    tuner = ToyTuner(
        oracle=oracle,
        hypermodel=ToyHyperModel(),
        directory=str(tmp_path),
        raise_if=lambda v: v["b"],
        nan_if=lambda v: v["a"] == 1,
    )
    tuner.search(verbose=0)
    trials = oracle.trials
    assert sorted(trials) == _ids(12)  # the whole budget ran despite failures
    statuses = {t.status for t in trials.values()}
    assert statuses == {COMPLETED, FAILED}
    by_reward = {r[0]: r[1] for r in oracle.rewards if r[2] == "trial"}
    assert sorted(by_reward) == _ids(12)
    for trial_id, trial in trials.items():
        values = trial.hyperparameters.values
        if values["b"] or values["a"] == 1:
            assert trial.status == FAILED
            assert by_reward[trial_id] == -1.0
            # Retried once (max_retries_per_trial=1), rewarded once.
            assert tuner.calls.count(trial_id) == 2
        else:
            assert trial.status == COMPLETED
            assert by_reward[trial_id] == toy_score(values)
            assert tuner.calls.count(trial_id) == 1
    raised = [t for t in trials.values() if t.hyperparameters.values["b"]]
    nan = [t for t in trials.values() if not t.hyperparameters.values["b"] and t.status == FAILED]
    assert raised and nan
    assert all("child failed on purpose" in t.message for t in raised)
    assert len(oracle.history) >= 3


def test_consecutive_failures_stop_as_in_keras_tuner_but_rewards_are_kept(tmp_path):
    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=10,
        units=8,
        update_every=2,
        failure_reward=-5.0,
        seed=0,
        max_consecutive_failed_trials=2,
    )
    tuner = ToyTuner(
        oracle=oracle,
        hypermodel=ToyHyperModel(),
        directory=str(tmp_path),
        raise_if=lambda v: True,
    )
    with pytest.raises(RuntimeError, match="consecutive failures"):
        tuner.search(verbose=0)
    assert [r[1] for r in oracle.rewards] == [-5.0, -5.0]
    assert len(oracle.history) == 1
    saved = json.loads((tmp_path / "untitled_project" / "oracle.json").read_text())
    assert len(saved["controller_oracle"]["rewards"]) == 2


def test_min_objective_and_reward_fn(tmp_path):
    class Loss(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return {"loss": 1.0 + trial.hyperparameters.Choice("a", [1, 2, 3])}

    oracle = ControllerOracle(objective="loss", max_trials=3, units=8, seed=0)
    Loss(oracle=oracle, directory=str(tmp_path / "a")).search(verbose=0)
    for trial_id, reward, _ in oracle.rewards[1:]:
        assert reward == -oracle.trials[trial_id].score  # lower loss, higher reward

    oracle = ControllerOracle(
        objective="loss", max_trials=3, units=8, seed=0, reward_fn=lambda t: 10.0 / t.score
    )
    Loss(oracle=oracle, directory=str(tmp_path / "b")).search(verbose=0)
    for trial_id, reward, _ in oracle.rewards:
        if oracle.trials[trial_id].status == COMPLETED:
            assert reward == pytest.approx(10.0 / oracle.trials[trial_id].score)


@pytest.mark.parametrize(
    "declare, name",
    [
        (lambda hp: hp.Float("lr", 1e-4, 1e-1), "lr"),
        (lambda hp: hp.Int("units", 8, 512, sampling="log"), "units"),
        (lambda hp: hp.Int("many", 0, 10**6), "many"),
    ],
)
def test_unsupported_space_is_refused_when_declared(tmp_path, declare, name):
    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("ok", [1, 2])
            declare(hp)

    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=2, units=8
    )
    with pytest.raises(ValueError, match="Received") as info:
        ToyTuner(oracle=oracle, hypermodel=HM(), directory=str(tmp_path))
    assert f"'{name}'" in str(info.value)
    # Also when given up front.
    hp = keras_tuner.HyperParameters()
    declare(hp)
    with pytest.raises(ValueError, match=name):
        ControllerOracle(objective=keras_tuner.Objective("score", "max"), hyperparameters=hp)


def test_conditional_scope_is_refused(tmp_path):
    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            kind = hp.Choice("kind", ["a", "b"])
            with hp.conditional_scope("kind", ["a"]):
                if kind == "a":
                    hp.Int("depth", 1, 3)

    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=2, units=8
    )
    with pytest.raises(ValueError, match="conditional.*depth"):
        ToyTuner(oracle=oracle, hypermodel=HM(), directory=str(tmp_path))


def test_stepped_float_and_log_int_are_decisions(tmp_path):
    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Float("rate", 0.1, 0.5, step=0.1)
            hp.Int("width", 8, 64, step=2, sampling="log")
            hp.Choice("single", ["only"])

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            assert v["single"] == "only"
            return {"score": v["rate"] * v["width"]}

    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=4, units=8, seed=0
    )
    Tuner(oracle=oracle, hypermodel=HM(), directory=str(tmp_path)).search(verbose=0)
    assert oracle.controller.num_choices == [5, 4]  # a single-value Choice is no decision
    for trial in oracle.trials.values():
        assert trial.hyperparameters.values["width"] in (8, 16, 32, 64)
        assert round(trial.hyperparameters.values["rate"], 6) in (0.1, 0.2, 0.3, 0.4, 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"update_every": 0}, "update_every=0"),
        ({"failure_reward": math.nan}, "failure_reward=nan"),
        ({"algorithm": "sgd"}, "algorithm='sgd'"),
        ({"units": -3}, "units=-3"),
        ({"reward_fn": 3}, "reward_fn"),
        ({"lstm_layers": 2}, "lstm_layers"),
    ],
)
def test_bad_oracle_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ControllerOracle(objective=keras_tuner.Objective("score", "max"), max_trials=2, **kwargs)


def test_resume_in_process_continues_ids_and_controller(tmp_path):
    # Same id width before and after (KerasTuner pads ids to len(str(max_trials))).
    first = make_tuner(tmp_path, max_trials=5, overwrite=True)
    first.search(verbose=0)
    saved = first.oracle.controller.get_state()
    saved_pending = first.oracle.pending_rewards

    second = make_tuner(tmp_path, max_trials=9)  # overwrite=False: reload
    _controller_arrays_equal(second.oracle.controller.get_state(), saved)
    assert second.oracle.pending_rewards == saved_pending
    assert second.oracle.trial_decisions == first.oracle.trial_decisions
    second.search(verbose=0)
    assert sorted(second.oracle.trials) == _ids(9)
    assert second.calls == _ids(9)[5:]  # nothing re-run
    assert sorted(r[0] for r in second.oracle.rewards if r[2] == "trial") == _ids(9)


def _end_order(project):
    try:
        return json.loads((project / "oracle.json").read_text())["end_order"]
    except (OSError, ValueError, KeyError):
        return []


def _run_until_killed(cmd, project, ended, env, limit=240):
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + limit
    try:
        while len(_end_order(project)) < ended:
            if proc.poll() is not None:
                raise AssertionError(f"search ended before the kill: {proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("search too slow to reach the kill point")
            time.sleep(0.05)
        time.sleep(0.1)  # land inside the next trial
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()


def _saved_controller(project):
    state = json.loads((project / "oracle.json").read_text())["controller_oracle"]
    with np.load(project / state["controller_file"]) as arrays:
        weights = [arrays[f"w{i}"] for i in range(int(arrays["num_weights"]))]
        optimizer = [arrays[f"o{i}"] for i in range(int(arrays["num_optimizer"]))]
    return dict(state["controller"], weights=weights, optimizer=optimizer), state


@pytest.mark.slow
def test_sigkill_mid_search_then_resume(tmp_path):
    max_trials = 12
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tmp_path / "runs.txt"
    cmd = [sys.executable, str(TOY), "--directory", str(tmp_path), "--max-trials",
           str(max_trials), "--sleep", "0.3", "--log", str(log)]  # fmt: skip
    project = tmp_path / "toy"

    for ended in (3, 7):  # killed twice, at different points
        _run_until_killed(cmd, project, ended, env)
        saved, raw = _saved_controller(project)
        # Reloading (what a restart does first) gives back exactly the state on disk.
        reloaded = make_tuner(tmp_path, max_trials=max_trials).oracle
        _controller_arrays_equal(reloaded.controller.get_state(), saved)
        assert reloaded.pending_rewards == raw["pending"]
        assert reloaded.trial_decisions == raw["trial_decisions"]
        assert len(reloaded.trials) < max_trials

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    final = make_tuner(tmp_path, max_trials=max_trials).oracle
    assert sorted(final.trials) == _ids(max_trials)  # unique and continuous
    assert all(t.status == COMPLETED for t in final.trials.values())
    rewarded = [r[0] for r in final.rewards if r[2] == "trial"]
    assert sorted(rewarded) == _ids(max_trials)  # each trial rewarded exactly once
    runs = [line.split()[1] for line in log.read_text().splitlines()]
    # Only a trial cut by a kill ran again (under its own id), at most once per kill.
    assert set(runs) == set(_ids(max_trials))
    assert len(runs) - max_trials <= 2

    # The resumed search is the search that was never killed: same trials, same controller.
    reference = make_tuner(tmp_path / "reference", max_trials=max_trials, overwrite=True)
    reference.search(verbose=0)
    for trial_id in _ids(max_trials):
        assert (
            final.trials[trial_id].hyperparameters.values
            == reference.oracle.trials[trial_id].hyperparameters.values
        )
    a, b = final.controller.get_state(), reference.oracle.controller.get_state()
    assert a["num_updates"] == b["num_updates"] and a["rng"] == b["rng"]
    for x, y in zip(a["weights"], b["weights"]):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_plain_keras_hypermodel_on_digits(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, y_train, x_val, y_val = x[:600], y[:600], x[600:900], y[600:900]

    def build(hp):
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(
                    hp.Choice("units", [16, 32]), activation=hp.Choice("act", ["relu", "tanh"])
                ),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            keras.optimizers.Adam(hp.Choice("lr", [1e-2, 3e-2])),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    oracle = ControllerOracle(objective="val_accuracy", max_trials=2, units=8, update_every=2)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path))
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=2, verbose=0)
    assert len(oracle.trials) == 2
    assert all(t.status == COMPLETED for t in oracle.trials.values())
    rewards = {r[0]: r[1] for r in oracle.rewards if r[2] == "trial"}
    assert rewards == {i: t.score for i, t in oracle.trials.items()}
    assert oracle.get_best_trials()[0].score > 0.5
    assert len(oracle.history) == len(oracle.rewards) // 2


# ------------------------------------------- presets, failures, candidates, saved state
def test_presets_update_every_and_the_too_few_updates_warning():
    max_obj = keras_tuner.Objective("score", "max")
    assert ControllerOracle(objective=max_obj, max_trials=200).update_every == 5
    assert ControllerOracle(objective=max_obj, max_trials=20).update_every == 4
    paper = ControllerOracle(objective=max_obj, max_trials=1000, preset="nasnet")
    assert paper.update_every == 20
    assert paper._controller_kwargs["preset"] == "nasnet"
    with pytest.warns(UserWarning, match="update_every=20 gives the controller 1 update"):
        ControllerOracle(objective=max_obj, max_trials=20, update_every=20)
    with pytest.raises(ValueError, match=r"Accepted: \['default', 'nasnet'\]"):
        ControllerOracle(objective=max_obj, max_trials=20, preset="enas")


def test_minimised_objective_with_a_failing_choice_makes_it_rarer(tmp_path):
    class Loss(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            a, c = hp.Choice("a", [1, 2, 3]), hp.Int("c", 0, 8, step=2)
            if a == 1:
                raise RuntimeError("a=1 always fails")
            return {"val_loss": 2.0 + 0.1 * a - 0.05 * c}  # every real reward is < 0

    oracle = ControllerOracle(
        objective="val_loss", max_trials=14, units=16, seed=1, max_consecutive_failed_trials=50
    )
    tuner = Loss(oracle=oracle, directory=str(tmp_path))
    p_before = None
    oracle.update_space(_declare(lambda hp: (hp.Choice("a", [1, 2, 3]), hp.Int("c", 0, 8, step=2))))
    oracle._ensure_controller()
    p_before = oracle.controller.probabilities([[0, 0]])[0, 0]
    tuner.search(verbose=0)
    failed = {t for t, trial in oracle.trials.items() if trial.status == FAILED}
    # Each failed trial, and each draw that repeated one ("repeat"), got the failure reward.
    assert failed and {r[0] for r in oracle.rewards if r[0] in failed} == failed
    assert oracle.num_failures == sum(r[0] in failed for r in oracle.rewards)
    real = [r[1] for r in oracle.rewards if r[0] not in failed]
    for trial_id, reward, _ in oracle.rewards:
        if trial_id in failed:
            assert reward < min(real)  # below every real (negative) reward, unlike 0.0
    assert oracle.history[-1]["num_failures"] <= oracle.num_failures
    p_after = oracle.controller.probabilities([[0, 0]])[0, 0]
    assert p_before == pytest.approx(1 / 3, abs=0.06)
    assert p_after < 0.5 * p_before, (p_before, p_after)


def _declare(fn):
    hp = keras_tuner.HyperParameters()
    fn(hp)
    return hp


def test_sample_candidates_and_add_rewards_update_and_resume_exactly(tmp_path):
    tuner = make_tuner(tmp_path, max_trials=10, overwrite=True, update_every=3)
    oracle = tuner.oracle
    oracle.update_space(_declare(ToyHyperModel().build))
    shared = oracle.sample_candidates(2, record=False)  # e.g. to train shared weights
    candidates = oracle.sample_candidates(5)
    assert [c["id"] for c in shared + candidates] == [f"c{i:06d}" for i in range(1, 8)]
    assert all(set(c["values"]) == {"a", "b", "c", "f"} for c in candidates)
    assert all(c["values"]["f"] == 7 for c in candidates)
    assert sorted(oracle.recorded_candidates) == [c["id"] for c in candidates]
    with pytest.raises(ValueError, match="unknown ids \\['c000001'\\]"):
        oracle.add_rewards(["c000001"], [1.0])  # drawn with record=False
    with pytest.raises(ValueError, match="repeated"):
        oracle.add_rewards(["c000003", "c000003"], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        oracle.add_rewards(["c000003"], [math.nan])
    ids = [c["id"] for c in candidates]
    oracle.add_rewards(ids[:4], [toy_score(c["values"]) for c in candidates[:4]])
    assert len(oracle.history) == 1 and len(oracle.pending_rewards) == 1
    assert [r[2] for r in oracle.rewards] == ["candidate"] * 4
    assert oracle.pending_rewards[0][0] == ids[3]
    decisions, log_prob = oracle.recorded_candidates[ids[4]]
    assert len(decisions) == 3 and log_prob < 0  # drawn before the update: its own log-prob

    saved = json.loads((tmp_path / "toy" / "oracle.json").read_text())["controller_oracle"]
    assert saved["decision_names"] == ["a", "b", "c"] == oracle.decision_names
    assert saved["candidate_count"] == 7 and list(saved["candidates"]) == [ids[4]]
    assert "decision_probs" in saved["controller"]["history"][0]

    tuner.save()  # KerasTuner reloads a project only once the tuner has saved itself.
    reloaded = make_tuner(tmp_path, max_trials=10).oracle
    _controller_arrays_equal(reloaded.controller.get_state(), oracle.controller.get_state())
    assert reloaded.recorded_candidates == oracle.recorded_candidates
    assert reloaded.pending_rewards == oracle.pending_rewards
    # Same next draws (random state), ids that continue, and the same next update.
    a, b = oracle.sample_candidates(3), reloaded.sample_candidates(3)
    assert a == b and a[0]["id"] == "c000008"
    for o, batch in ((oracle, a), (reloaded, b)):
        o.add_rewards([ids[4]] + [c["id"] for c in batch[:2]], [1.0, 2.0, 0.5])
    assert len(reloaded.history) == 2
    _controller_arrays_equal(reloaded.controller.get_state(), oracle.controller.get_state())


def test_trials_store_their_sampling_time_log_prob(tmp_path):
    tuner = make_tuner(tmp_path, max_trials=7, overwrite=True, update_every=3)
    tuner.search(verbose=0)
    saved = json.loads((tmp_path / "toy" / "oracle.json").read_text())["controller_oracle"]
    log_probs = saved["trial_log_probs"]
    assert sorted(log_probs) == sorted(tuner.oracle.trial_decisions)
    assert all(lp < 0 for lp in log_probs.values())
    # Trials drawn before an update kept their sampling-time log-probability, which the
    # updated policy no longer gives them.
    first = tuner.oracle.trial_decisions["0"]
    assert abs(log_probs["0"] - float(tuner.oracle.controller.log_prob([first])[0])) > 1e-3
    assert all(len(p) == 4 for p in saved["pending"])


def test_numeric_ranges_are_counted_without_being_listed():
    from keras_tuner.engine import hyperparameters as hp_module

    too_many = hp_module.Int("x", 0, 10**9)  # a billion values: refused without listing them
    with pytest.raises(ValueError, match="'x' has more than 1024 values.*larger `step`"):
        decision_values(too_many)
    log_int = hp_module.Int("z", 1, 1024, step=2, sampling="log")
    assert decision_values(log_int) == tuple(2**i for i in range(11))
    fine = hp_module.Float("y", 0.0, 1.0, step=0.001)  # KerasTuner counts 1000 values
    assert decision_values(fine) == tuple(fine.values) and len(tuple(fine.values)) <= 1024


def test_draws_from_a_callers_rng_repeat_and_leave_the_controller_alone(tmp_path):
    tuner = make_tuner(tmp_path, max_trials=10, overwrite=True, update_every=3)
    oracle = tuner.oracle
    oracle.update_space(_declare(ToyHyperModel().build))
    oracle.sample_candidates(1)  # builds the controller, saves the state
    saved = (tmp_path / "toy" / "oracle.json").read_bytes()
    own = oracle.controller.get_state(include_arrays=False)["rng"]
    a = oracle.sample_candidates(6, record=False, rng=np.random.default_rng([1, 7, 0]))
    b = oracle.sample_candidates(6, record=False, rng=np.random.default_rng([1, 7, 0]))
    assert a == b and [c["id"] for c in a] == [None] * 6
    assert oracle.controller.get_state(include_arrays=False)["rng"] == own
    assert (tmp_path / "toy" / "oracle.json").read_bytes() == saved
    recorded = oracle.sample_candidates(2, rng=np.random.default_rng([1, 7, 0]))
    assert [c["values"] for c in recorded] == [c["values"] for c in a[:2]]
    oracle.discard_candidates([c["id"] for c in recorded])
    assert list(oracle.recorded_candidates) == ["c000001"]


def test_final_candidates_are_distinct_policy_draws(tmp_path):
    tuner = make_tuner(tmp_path, max_trials=6, overwrite=True, update_every=3)
    tuner.search(verbose=0)
    oracle = tuner.oracle
    rewards, pending = oracle.rewards, oracle.pending_rewards
    rng = oracle.controller.get_state(include_arrays=False)["rng"]
    final = oracle.final_candidates(40)
    keys = [json.dumps(v, sort_keys=True) for v in final]
    assert 1 <= len(final) <= 30 and len(set(keys)) == len(final)  # 30 configurations
    assert all(set(v) == {"a", "b", "c", "f"} and v["f"] == 7 for v in final)
    # Nothing recorded and no reward expected; the random state moved and was saved.
    assert oracle.rewards == rewards and oracle.pending_rewards == pending
    assert oracle.recorded_candidates == {}
    saved = json.loads((tmp_path / "toy" / "oracle.json").read_text())["controller_oracle"]
    assert saved["controller"]["rng"] == oracle.controller.get_state()["rng"] != rng
    # The same as the policy's own draws, in the order drawn (one batched call).
    probe = make_tuner(tmp_path / "probe", max_trials=6, overwrite=True, update_every=3)
    probe.search(verbose=0)
    drawn = probe.oracle.controller.sample(40)
    expected = [probe.oracle._values_for([int(d) for d in row]) for row in drawn]
    assert final == list({json.dumps(v, sort_keys=True): v for v in expected}.values())
    with pytest.raises(ValueError, match="n=0"):
        oracle.final_candidates(0)


def _oracle_warnings(make_oracle, trials, directory):
    """Warnings raised during a search of `trials` trials, less KerasTuner's own (its
    `synchronized` calls `threading.currentThread`, deprecated, on every oracle call)."""
    tuner = ScoreTuner(peaked_score, oracle=make_oracle(trials), hypermodel=PeakedHyperModel(),
                       directory=str(directory), overwrite=True)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.search(verbose=0)
    assert len(tuner.oracle.trials) == trials
    package = os.path.dirname(keras_tuner.__file__)
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if not w.filename.startswith(package)]  # fmt: skip


@pytest.mark.parametrize("name", ["controller", "evolution"])
def test_no_warning_per_trial(tmp_path, name):
    from tuners.evolution import EvolutionOracle

    def make_oracle(trials):
        if name == "controller":
            return ControllerOracle(objective=MAX, max_trials=trials, units=8, update_every=1,
                                    seed=0)  # fmt: skip
        return EvolutionOracle(objective=MAX, max_trials=trials, population_size=4,
                               sample_size=2, seed=0)  # fmt: skip

    few = _oracle_warnings(make_oracle, 5, tmp_path / "few")
    many = _oracle_warnings(make_oracle, 10, tmp_path / "many")
    assert many == few == [], many  # controller files written, updates made: none


def test_oracle_json_is_the_plain_json_of_the_state(tmp_path):
    # `rewards` and the controller's `history` are encoded once per entry and spliced into
    # the text (`_state_text`): it must be exactly `json.dumps` of the state, before and
    # after a resume (which starts the encodings afresh).
    tuner = make_tuner(tmp_path, max_trials=12, overwrite=True, update_every=3)
    tuner.search(verbose=0)
    oracle = tuner.oracle
    assert len(oracle.history) >= 3 and "repeat" in {r[2] for r in oracle.rewards}
    plain = json.dumps(oracle.get_state(), default=json_default)
    assert (tmp_path / "toy" / "oracle.json").read_text() == plain
    assert oracle._state_text(oracle.get_state()) == plain
    resumed = make_tuner(tmp_path, max_trials=16)
    resumed.search(verbose=0)
    assert len(resumed.oracle.history) > len(oracle.history)
    plain = json.dumps(resumed.oracle.get_state(), default=json_default)
    assert (tmp_path / "toy" / "oracle.json").read_text() == plain
