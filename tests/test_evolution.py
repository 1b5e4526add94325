"""`EvolutionOracle`: aging, mutations, tournaments, learning, resume, weight-sharing calls."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras_tuner
import numpy as np
import pytest
from _evolution_toy import NAMES, ToyHyperModel, ToyTuner, make_tuner, toy_score

from nasnet_tf.io_utils import atomic_write
from tuners.decisions import decision_values
from tuners.estimation import PerformanceEstimator
from tuners.evolution import EvolutionOracle, mutation_kind
from tuners.nas_tuner import NASNetTuner
from tuners.nasnet_space import NASNetSearchSpace

TOY = pathlib.Path(__file__).with_name("_evolution_toy.py")
COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
FAILED = keras_tuner.engine.trial.TrialStatus.FAILED
MAX = keras_tuner.Objective("score", "max")


def _ids(n):
    return [f"{i:0{len(str(n))}d}" for i in range(n)]


def _members_before(oracle, trial_id, population_size):
    """The population when `trial_id` was drawn (sequential search): the last P members that
    joined before it, by end order."""
    joined = [h["id"] for h in oracle.history]
    before = joined[: joined.index(trial_id)]
    return before[-population_size:]


def _check_child(parent_values, child_values, mutation, space):
    """Exactly one decision changed (none for identity), to another valid value."""
    changed = [k for k in child_values if child_values[k] != parent_values[k]]
    if mutation["kind"] == "identity":
        assert changed == []
        return
    assert changed == [mutation["name"]]
    assert mutation["old"] == parent_values[mutation["name"]]
    assert mutation["new"] == child_values[mutation["name"]] != mutation["old"]
    assert mutation["new"] in decision_values(space.get(mutation["name"]))
    assert mutation["kind"] == mutation_kind(mutation["name"])


class _Space:
    def __init__(self, hyperparameters):
        self.by_name = {hp.name: hp for hp in hyperparameters.space}

    def get(self, name):
        return self.by_name[name]


def test_population_ages_and_the_oldest_dies_even_when_best(tmp_path):
    population_size, max_trials = 4, 11

    class FirstIsBest(ToyTuner):
        def run_trial(self, trial, *args, **kwargs):
            score = toy_score(trial.hyperparameters.values)
            return {"score": 100.0 if trial.trial_id == "00" else score}

    oracle = EvolutionOracle(
        objective=MAX, max_trials=max_trials, population_size=population_size, sample_size=2,
        seed=3,
    )  # fmt: skip
    tuner = FirstIsBest(oracle=oracle, hypermodel=ToyHyperModel(), directory=str(tmp_path))
    tuner.search(verbose=0)
    assert sorted(oracle.trials) == _ids(max_trials)
    assert [h["id"] for h in oracle.history] == oracle.end_order  # every trial joined in order
    # P + k ended: exactly the last P by end order, the best ("00", 100.0) long dead.
    assert [m["id"] for m in oracle.population] == oracle.end_order[-population_size:]
    assert "00" not in [m["id"] for m in oracle.population]
    for member in oracle.population:
        trial = oracle.trials[member["id"]]
        assert member["reward"] == trial.score
        assert member["values"] == trial.hyperparameters.values
    # The first P trials are random samples; each later one is a child of a member alive
    # when it was drawn.
    for i, entry in enumerate(oracle.history):
        if i < population_size:
            assert entry["parent"] is None and entry["mutation"] is None
        else:
            alive = _members_before(oracle, entry["id"], population_size)
            assert entry["parent"] in alive
    # "00" (the best) was a parent only while alive: in the first tournaments at most.
    late = [h for h in oracle.history[2 * population_size :]]
    assert all(h["parent"] != "00" for h in late)


def test_mutations_change_one_decision_to_a_valid_value(tmp_path):
    class Mixed(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("act", ["relu", "tanh", "gelu"])
            hp.Boolean("bn")
            hp.Int("units", 8, 64, step=2, sampling="log")
            hp.Float("rate", 0.1, 0.5, step=0.1)
            hp.Choice("single", ["only"])
            hp.Fixed("f", 7)

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            return {"score": v["units"] * v["rate"] + v["bn"] + len(v["act"])}

    oracle = EvolutionOracle(objective=MAX, max_trials=30, population_size=5, sample_size=2,
                             seed=0)  # fmt: skip
    Tuner(oracle=oracle, hypermodel=Mixed(), directory=str(tmp_path)).search(verbose=0)
    space = _Space(oracle.hyperparameters)
    children = [h for h in oracle.history if h["parent"] is not None]
    assert len(children) >= 20
    names = set()
    for child in children:
        parent_values = oracle.trials[child["parent"]].hyperparameters.values
        child_values = oracle.trials[child["id"]].hyperparameters.values
        _check_child(parent_values, child_values, child["mutation"], space)
        assert child["mutation"]["kind"] == "hyperparameter"
        names.add(child["mutation"]["name"])
    assert names == {"act", "bn", "units", "rate"}  # never a one-value or Fixed entry
    # No configuration was trained twice.
    hashes = {json.dumps(t.hyperparameters.values, sort_keys=True) for t in oracle.trials.values()}
    assert len(hashes) == len(oracle.trials)


def _fill(oracle, rewards):
    """Random members with the given rewards, through the weight-sharing calls."""
    candidates = oracle.sample_candidates(len(rewards))
    oracle.add_rewards([c["id"] for c in candidates], rewards)
    return candidates


@pytest.mark.parametrize("combine_ops", [None, ("add",)])
def test_mutations_on_the_nasnet_space_change_one_op_or_input(combine_ops):
    nasnet = NASNetSearchSpace(num_blocks=2, combine_ops=combine_ops)
    # Batches of children only (no re-scores), to see many mutations.
    oracle = EvolutionOracle(objective=MAX, hyperparameters=nasnet.hyperparameters(),
                             population_size=6, sample_size=3, seed=4,
                             children_per_batch=10)  # fmt: skip
    _fill(oracle, [float(i) for i in range(6)])
    space = _Space(oracle.hyperparameters)
    members = {m["id"]: m["values"] for m in oracle.population}
    kinds, fields = {"input": 0, "op": 0}, set()
    for _ in range(20):
        children = oracle.sample_candidates(10)
        pending = oracle.recorded_candidates
        for child in children:
            record = pending[child["id"]]
            assert sorted(child["values"]) == sorted(nasnet.names)  # every hp of the space
            nasnet.decode(child["values"])  # a valid genotype
            mutation = record["mutation"]
            _check_child(members[record["parent"]], child["values"], mutation, space)
            kinds[mutation["kind"]] += 1
            fields.add(mutation["name"].split("_", 2)[2])
        oracle.add_rewards([c["id"] for c in children], [0.0] * len(children))
        members.update({m["id"]: m["values"] for m in oracle.population})
    # Input and op mutations about equally often (200 draws, each kind p=1/2).
    assert 70 <= kinds["input"] <= 130, kinds
    expected = {"input_a", "input_b", "op_a", "op_b"}
    assert fields == (expected if combine_ops else expected | {"combine"})


def test_identity_mutation_keeps_the_parent():
    hp = keras_tuner.HyperParameters()
    for name in "xyz":
        hp.Choice(name, list(range(50)))  # many neighbours: new children never run out
    oracle = EvolutionOracle(objective=MAX, hyperparameters=hp, population_size=4,
                             sample_size=2, identity_prob=0.5, seed=1,
                             children_per_batch=100)  # fmt: skip
    _fill(oracle, [1.0, 2.0, 3.0, 4.0])
    parents = {m["id"]: m["values"] for m in oracle.population}
    children = oracle.sample_candidates(100)
    records = oracle.recorded_candidates
    identity = 0
    for child in children:
        record = records[child["id"]]
        _check_child(parents[record["parent"]], child["values"], record["mutation"],
                     _Space(hp))  # fmt: skip
        identity += record["mutation"]["kind"] == "identity"
    assert 30 <= identity <= 70, identity


def test_tournament_picks_the_best_of_its_sample():
    hp = keras_tuner.HyperParameters()
    hp.Choice("x", list(range(50)))
    rewards = [5.0, -1.0, 9.0, 3.0, 7.0, 0.0, 2.0, 8.0]
    oracle = EvolutionOracle(objective=MAX, hyperparameters=hp, population_size=8,
                             sample_size=3, seed=11)  # fmt: skip
    _fill(oracle, rewards)
    population = oracle.population
    wins = set()
    for _ in range(40):
        # The same generator, copied: the members the tournament will draw.
        probe = np.random.default_rng()
        probe.bit_generator.state = oracle._rng.bit_generator.state
        drawn = probe.choice(len(population), size=3, replace=False)
        parent = oracle._tournament()
        assert parent["reward"] == max(rewards[i] for i in drawn)
        assert parent["id"] == population[int(max(drawn, key=lambda i: rewards[i]))]["id"]
        wins.add(parent["id"])
    assert len(wins) > 1  # not always the population's best: the sample varies

    # A tournament over the whole population always picks its best.
    oracle = EvolutionOracle(objective=MAX, hyperparameters=hp, population_size=8,
                             sample_size=8, seed=11, children_per_batch=10)  # fmt: skip
    _fill(oracle, rewards)
    best = oracle.population[int(np.argmax(rewards))]["id"]
    for child in oracle.sample_candidates(10):
        assert oracle.recorded_candidates[child["id"]]["parent"] == best


def test_it_learns_on_a_toy_objective_deterministically(tmp_path):
    def run(directory):
        tuner = make_tuner(directory, 60, overwrite=True, seed=2, population_size=10,
                           sample_size=3)  # fmt: skip
        tuner.search(verbose=0)
        oracle = tuner.oracle
        return oracle, [oracle.trials[t].score for t in _ids(60)]

    oracle, scores = run(tmp_path / "a")
    random_phase, last = np.mean(scores[:10]), np.mean(scores[-20:])
    assert all(h["parent"] is None for h in oracle.history[:10])
    assert all(h["parent"] is not None for h in oracle.history[10:])
    # Random samples score about -6.7 on average (0 is the optimum).
    assert last > random_phase + 1.5, (random_phase, last)
    assert max(scores) >= -1.0
    again, scores_again = run(tmp_path / "b")
    assert scores_again == scores and again.history == oracle.history


def test_failed_trials_do_not_join_and_the_search_goes_on(tmp_path):
    tuner = make_tuner(tmp_path, 16, raise_if=lambda v: v["a"] in (0, 1))
    tuner.search(verbose=0)
    oracle = tuner.oracle
    assert sorted(oracle.trials) == _ids(16)
    failed = [t for t, trial in oracle.trials.items() if trial.status == FAILED]
    completed = [t for t, trial in oracle.trials.items() if trial.status == COMPLETED]
    assert failed and completed
    joined = [h["id"] for h in oracle.history]
    assert sorted(joined) == sorted(completed)
    assert all(m["id"] in completed for m in oracle.population)
    assert not oracle.pending  # every trial handled
    for entry in oracle.history:
        assert entry["parent"] is None or entry["parent"] in completed


def test_min_objective_and_reward_fn(tmp_path):
    class Loss(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return {"loss": 1.0 + trial.hyperparameters.Choice("a", [1, 2, 3])}

    oracle = EvolutionOracle(objective="loss", max_trials=3, population_size=2, sample_size=1)
    Loss(oracle=oracle, directory=str(tmp_path / "a")).search(verbose=0)
    assert oracle.history
    for entry in oracle.history:
        assert entry["reward"] == -oracle.trials[entry["id"]].score  # lower loss is better

    oracle = EvolutionOracle(objective="loss", max_trials=3, population_size=2, sample_size=1,
                             reward_fn=lambda t: 10.0 / t.score)  # fmt: skip
    Loss(oracle=oracle, directory=str(tmp_path / "b")).search(verbose=0)
    for entry in oracle.history:
        assert entry["reward"] == pytest.approx(10.0 / oracle.trials[entry["id"]].score)


def test_a_small_space_is_exhausted_then_stopped(tmp_path):
    class TwoByTwo(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("x", [0, 1])
            hp.Boolean("y")

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            return {"score": float(v["x"] + v["y"])}

    oracle = EvolutionOracle(objective=MAX, max_trials=10, population_size=2, sample_size=2,
                             seed=1)  # fmt: skip
    Tuner(oracle=oracle, hypermodel=TwoByTwo(), directory=str(tmp_path)).search(verbose=0)
    values = {tuple(sorted(t.hyperparameters.values.items())) for t in oracle.trials.values()}
    assert len(oracle.trials) == len(values) == 4  # every configuration once, then stopped

    # Under weight sharing a repeat is a new measurement: the whole budget runs.
    oracle = EvolutionOracle(objective=MAX, max_trials=10, population_size=2, sample_size=2,
                             seed=1, rescore_repeats=True)  # fmt: skip
    tuner = Tuner(oracle=oracle, hypermodel=TwoByTwo(), directory=str(tmp_path / "rescore"))
    tuner.search(verbose=0)
    values = [tuple(sorted(t.hyperparameters.values.items())) for t in oracle.trials.values()]
    assert len(values) == 10 and len(set(values)) < 10
    assert [h["id"] for h in oracle.history] == _ids(10)  # each joined once


def test_a_budget_as_large_as_the_space_runs_every_configuration(tmp_path):
    class Small(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("x", [0, 1, 2])
            hp.Choice("y", [0, 1, 2])
            hp.Choice("z", [0, 1, 2, 3])

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            return {"score": -float(abs(v["x"] - 2) + abs(v["y"] - 1) + abs(v["z"] - 3))}

    # 36 configurations: near the end, 21 mutations and 21 random samples can all miss the
    # few left (KerasTuner's rule, and this oracle's before, then stopped the search).
    for seed in range(3):  # the seeds under which the old rule stopped early
        oracle = EvolutionOracle(objective=MAX, max_trials=36, population_size=4,
                                 sample_size=2, seed=seed)  # fmt: skip
        Tuner(oracle=oracle, hypermodel=Small(), directory=str(tmp_path / str(seed))).search(
            verbose=0
        )
        values = {tuple(sorted(t.hyperparameters.values.items()))
                  for t in oracle.trials.values()}  # fmt: skip
        assert len(oracle.trials) == len(values) == 36, seed


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"population_size": 0}, "population_size=0"),
        ({"population_size": 2.5}, "population_size=2.5"),
        ({"sample_size": True}, "sample_size=True"),
        ({"population_size": 4, "sample_size": 5}, "sample_size=5 and population_size=4"),
        ({"identity_prob": 1.0}, r"identity_prob=1\.0"),
        ({"identity_prob": -0.1}, "identity_prob=-0.1"),
        ({"reward_fn": 3}, "reward_fn=3"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_bad_arguments_raise_in_keras_wording(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EvolutionOracle(objective=MAX, max_trials=2, **kwargs)


def test_an_unsupported_space_is_refused(tmp_path):
    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("ok", [1, 2])
            hp.Float("lr", 1e-4, 1e-1)

    oracle = EvolutionOracle(objective=MAX, max_trials=2)
    with pytest.raises(ValueError, match="EvolutionOracle.*'lr'"):
        ToyTuner(oracle=oracle, hypermodel=HM(), directory=str(tmp_path))


def _saved(project):
    return json.loads((project / "oracle.json").read_text())["evolution_oracle"]


def _evolution_state(oracle):
    return json.loads(json.dumps(oracle.get_state()["evolution_oracle"]))


def test_interrupted_search_resumes_as_if_never_stopped(tmp_path):
    max_trials = 14
    log = tmp_path / "runs.txt"
    first = make_tuner(tmp_path, max_trials, overwrite=True, interrupt_at="07", log=log)
    with pytest.raises(KeyboardInterrupt):
        first.search(verbose=0)
    saved = _saved(tmp_path / "toy")
    assert "07" in saved["pending_trials"]  # drawn, running when stopped

    second = make_tuner(tmp_path, max_trials, log=log)
    assert _evolution_state(second.oracle) == saved  # population, history and RNG state
    second.search(verbose=0)
    oracle = second.oracle
    assert sorted(oracle.trials) == _ids(max_trials)
    assert second.calls == _ids(max_trials)[7:]  # the interrupted trial ran again, once
    assert sorted(h["id"] for h in oracle.history) == _ids(max_trials)

    reference = make_tuner(tmp_path / "reference", max_trials, overwrite=True)
    reference.search(verbose=0)
    for trial_id in _ids(max_trials):
        assert (
            oracle.trials[trial_id].hyperparameters.values
            == reference.oracle.trials[trial_id].hyperparameters.values
        )
    assert oracle.history == reference.oracle.history
    assert _evolution_state(oracle) == _evolution_state(reference.oracle)


def test_a_trial_ended_but_not_added_joins_on_reload(tmp_path):
    tuner = make_tuner(tmp_path, 6, overwrite=True)
    tuner.search(verbose=0)
    full = _evolution_state(tuner.oracle)
    # What a kill between KerasTuner's end of trial "5" and its joining would leave.
    path = tmp_path / "toy" / "oracle.json"
    state = json.loads(path.read_text())
    own = state["evolution_oracle"]
    last = own["history"].pop()
    assert last["id"] == "5"
    own["added"].remove("5")
    own["pending_trials"]["5"] = [last["parent"], last["mutation"]]
    dead = tuner.oracle.history[len(tuner.oracle.history) - 5]["id"]
    own["population"] = [{"id": dead, **_member_fields(tuner, dead)}] + own["population"][:-1]
    # Written as the oracle writes it (with its checksum): an edit without one reads as damage.
    atomic_write(path, lambda f: f.write(json.dumps(state)), checksum=True)

    reloaded = make_tuner(tmp_path, 6).oracle
    assert _evolution_state(reloaded) == full


def test_a_trial_written_but_never_recorded_is_drawn_again(tmp_path):
    first = make_tuner(tmp_path, 6, overwrite=True)
    first.search(verbose=0)
    # What a kill between KerasTuner's `trial.json` of trial "6" and its `oracle.json` leaves.
    orphan = first.oracle.trials["5"]
    orphan.trial_id, orphan.status = "6", "RUNNING"
    first.oracle._save_trial(orphan)

    second = make_tuner(tmp_path, 9)
    assert "6" not in second.oracle.trials
    second.search(verbose=0)
    assert second.calls == ["6", "7", "8"]
    reference = make_tuner(tmp_path / "reference", 9, overwrite=True)
    reference.search(verbose=0)
    assert _evolution_state(second.oracle) == _evolution_state(reference.oracle)


def _member_fields(tuner, trial_id):
    trial = tuner.oracle.trials[trial_id]
    return {"reward": trial.score, "values": trial.hyperparameters.values}


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
            time.sleep(0.02)
        time.sleep(0.05)  # land inside the next trial
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()


@pytest.mark.slow
def test_sigkill_mid_search_then_resume(tmp_path):
    max_trials = 14
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tmp_path / "runs.txt"
    cmd = [sys.executable, str(TOY), "--directory", str(tmp_path), "--max-trials",
           str(max_trials), "--sleep", "0.15", "--log", str(log)]  # fmt: skip
    project = tmp_path / "toy"

    for ended in (2, 8):  # killed in the random phase (P=4), then while evolving
        _run_until_killed(cmd, project, ended, env)
        saved = _saved(project)
        # Reloading (what a restart does first) gives back exactly the state on disk.
        reloaded = make_tuner(tmp_path, max_trials).oracle
        assert _evolution_state(reloaded) == saved
        assert len(reloaded.trials) < max_trials

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    final = make_tuner(tmp_path, max_trials).oracle
    assert sorted(final.trials) == _ids(max_trials)  # unique and continuous
    assert all(t.status == COMPLETED for t in final.trials.values())
    assert sorted(h["id"] for h in final.history) == _ids(max_trials)  # each joined once
    runs = log.read_text().split()
    # Only a trial cut by a kill ran again (under its own id), at most once per kill.
    assert set(runs) == set(_ids(max_trials)) and len(runs) - max_trials <= 2

    # The resumed search is the search that was never killed.
    reference = make_tuner(tmp_path / "reference", max_trials, overwrite=True)
    reference.search(verbose=0)
    for trial_id in _ids(max_trials):
        assert (
            final.trials[trial_id].hyperparameters.values
            == reference.oracle.trials[trial_id].hyperparameters.values
        )
    assert _evolution_state(final) == _evolution_state(reference.oracle)


def test_sample_candidates_and_add_rewards(tmp_path):
    hp = keras_tuner.HyperParameters()
    for name in NAMES:
        hp.Choice(name, [0, 1, 2, 3, 4])
    hp.Fixed("f", 7)

    def make():
        oracle = EvolutionOracle(objective=MAX, hyperparameters=hp.copy(), population_size=4,
                                 sample_size=2, seed=5, children_per_batch=3)  # fmt: skip
        oracle._set_project_dir(str(tmp_path), "shared")
        return oracle

    oracle = make()
    first = oracle.sample_candidates(3)
    assert [c["id"] for c in first] == ["c000001", "c000002", "c000003"]
    assert all(sorted(c["values"]) == sorted([*NAMES, "f"]) for c in first)
    assert len({json.dumps(c["values"], sort_keys=True) for c in first}) == 3
    oracle.add_rewards([c["id"] for c in first], [toy_score(c["values"]) for c in first])
    assert [m["id"] for m in oracle.population] == ["c000001", "c000002", "c000003"]
    assert [h["source"] for h in oracle.history] == ["candidate"] * 3
    with pytest.raises(ValueError, match="c000002"):  # already rewarded
        oracle.add_rewards(["c000002"], [1.0])
    with pytest.raises(ValueError, match="nope"):
        oracle.add_rewards("nope", 1.0)

    unrecorded = oracle.sample_candidates(2, record=False)
    assert [c["id"] for c in unrecorded] == ["c000004", "c000005"]
    with pytest.raises(ValueError, match="c000004"):
        oracle.add_rewards(["c000004"], [1.0])

    second = oracle.sample_candidates(4)  # one random (population 3 < 4), then...
    with pytest.raises(ValueError, match="one number per candidate"):
        oracle.add_rewards([second[0]["id"]], [1.0, 2.0])
    oracle.add_rewards([second[0]["id"]], [toy_score(second[0]["values"])])
    assert len(oracle.population) == 4
    third = oracle.sample_candidates(3)  # ...children of tournament winners
    records = oracle.recorded_candidates
    assert all(records[c["id"]]["parent"] is not None for c in third)

    # The state survives a reload: pending candidates, counter, population, RNG.
    reloaded = make()
    reloaded.reload()
    assert _evolution_state(reloaded) == _evolution_state(oracle)
    ids = [c["id"] for c in second[1:] + third]
    rewards = [float(i) for i in range(len(ids))]
    oracle.add_rewards(ids, rewards)
    reloaded.add_rewards(ids, rewards)
    assert [m["id"] for m in reloaded.population] == ids[-4:]  # aging: the oldest died
    nxt, nxt_reloaded = oracle.sample_candidates(2), reloaded.sample_candidates(2)
    assert nxt == nxt_reloaded and nxt[0]["id"] == "c000013"

    # Rewards must be finite numbers, one per id; a refused call records nothing.
    pair = [c["id"] for c in reloaded.sample_candidates(np.int64(2))]
    members = len(reloaded.history)
    for bad in ([1.0, float("nan")], [1.0, "high"], [True, 1.0]):
        with pytest.raises(ValueError, match="finite numbers"):
            reloaded.add_rewards(pair, bad)
    with pytest.raises(ValueError, match="repeated"):
        reloaded.add_rewards([pair[0], pair[0]], [1.0, 2.0])
    assert set(pair) <= set(reloaded.recorded_candidates) and len(reloaded.history) == members
    reloaded.add_rewards(pair, np.array([1.0, 2.0]))
    assert [h["id"] for h in reloaded.history[-2:]] == pair


def test_draws_from_a_callers_rng_repeat_and_change_nothing_saved(tmp_path):
    hp = keras_tuner.HyperParameters()
    for name in NAMES:
        hp.Choice(name, [0, 1, 2, 3])
    oracle = EvolutionOracle(objective=MAX, hyperparameters=hp, population_size=4,
                             sample_size=2, seed=5)  # fmt: skip
    oracle._set_project_dir(str(tmp_path), "shared")
    first = oracle.sample_candidates(3)
    oracle.add_rewards([c["id"] for c in first], [toy_score(c["values"]) for c in first])
    saved = (tmp_path / "shared" / "oracle.json").read_bytes()
    state = _evolution_state(oracle)

    # E.g. the architectures an epoch of shared weights trains on, seeded by the epoch.
    a = oracle.sample_candidates(5, record=False, rng=np.random.default_rng([1, 7, 0]))
    b = oracle.sample_candidates(5, record=False, rng=np.random.default_rng([1, 7, 0]))
    assert a == b and [c["id"] for c in a] == [None] * 5
    assert _evolution_state(oracle) == state  # its random state and ids untouched
    assert (tmp_path / "shared" / "oracle.json").read_bytes() == saved

    # Recorded draws the caller will not score are discarded (a killed estimator's).
    left = oracle.sample_candidates(2, rng=np.random.default_rng(3))
    oracle.discard_candidates([c["id"] for c in left])
    assert not oracle.recorded_candidates
    with pytest.raises(ValueError, match=r"awaiting a reward. Received: .*c000001"):
        oracle.discard_candidates(["c000001"])
    with pytest.raises(ValueError, match=r"numpy.random.Generator or None. Received: rng=7"):
        oracle.sample_candidates(1, record=False, rng=7)


class _ParameterFreeShare(PerformanceEstimator):
    """Scores a child without training it: the share of parameter-free ops."""

    def estimate(self, child, *fit_args, **fit_kwargs):
        blocks = child.architecture.normal.blocks + child.architecture.reduction.blocks
        free = sum(op in ("identity", "max_pool_3x3") for b in blocks for op in (b.op_a, b.op_b))
        return {"val_accuracy": free / (2 * len(blocks))}


def test_evolves_nasnet_cells_inside_the_nasnet_tuner(tmp_path):
    oracle = EvolutionOracle(objective="val_accuracy", max_trials=12, population_size=4,
                             sample_size=2, seed=0)  # fmt: skip
    tuner = NASNetTuner(
        num_blocks=2, ops=("identity", "conv_1x1", "max_pool_3x3", "sep_conv_3x3"),
        num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3), classes=4,
        oracle=oracle, estimator=_ParameterFreeShare(), directory=tmp_path, overwrite=True,
    )  # fmt: skip
    tuner.search(validation_data="unused by this estimator")
    assert [h["id"] for h in oracle.history] == _ids(12)
    space = _Space(oracle.hyperparameters)
    for child in oracle.history[4:]:
        _check_child(oracle.trials[child["parent"]].hyperparameters.values,
                     oracle.trials[child["id"]].hyperparameters.values, child["mutation"],
                     space)  # fmt: skip
        assert child["mutation"]["kind"] in ("input", "op")
    best = tuner.get_best_genotypes(1)[0]
    assert best == tuner.hypermodel.decode(oracle.get_best_trials(1)[0].hyperparameters)


@pytest.mark.slow
@pytest.mark.tf_only  # the oracle is NumPy; children under JAX run in the tuner's own tests
def test_runs_inside_the_nasnet_tuner(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 4, 24)
    oracle = EvolutionOracle(objective="val_accuracy", max_trials=3, population_size=2,
                             sample_size=1, seed=0)  # fmt: skip
    tuner = NASNetTuner(
        num_blocks=1, ops=("identity", "conv_1x1", "max_pool_3x3"), num_cells=1,
        penultimate_filters=24, input_shape=(8, 8, 3), classes=4,
        compile_kwargs={"run_eagerly": True}, oracle=oracle, directory=tmp_path, overwrite=True,
    )  # fmt: skip
    tuner.search(x[:16], y[:16], validation_data=(x[16:], y[16:]), epochs=1, batch_size=8,
                 verbose=0)  # fmt: skip
    assert sorted(oracle.trials) == ["0", "1", "2"]
    assert all(t.status == COMPLETED for t in oracle.trials.values())
    assert [h["id"] for h in oracle.history] == ["0", "1", "2"]
    assert [m["id"] for m in oracle.population] == ["1", "2"]
    child = oracle.history[2]
    assert child["parent"] in ("0", "1") and child["mutation"]["kind"] in ("input", "op")
    _check_child(oracle.trials[child["parent"]].hyperparameters.values,
                 oracle.trials["2"].hyperparameters.values, child["mutation"],
                 _Space(oracle.hyperparameters))  # fmt: skip
    assert len(tuner.get_best_genotypes(3)) == 3


def _space_hp():
    hp = keras_tuner.HyperParameters()
    for name in NAMES:
        hp.Choice(name, [0, 1, 2, 3, 4])
    return hp


def test_weight_sharing_batches_rescore_members_and_keep_their_ages():
    # A batch as large as the population: before, every candidate joined and the whole
    # population was replaced at each batch (no aging left).
    oracle = EvolutionOracle(objective=MAX, hyperparameters=_space_hp(), population_size=8,
                             sample_size=2, seed=3)  # fmt: skip
    assert oracle.children_per_batch == 2  # population_size // 4
    first = oracle.sample_candidates(8)  # not full yet: 8 new random members
    assert not any("rescore" in r for r in oracle.recorded_candidates.values())
    oracle.add_rewards([c["id"] for c in first], [toy_score(c["values"]) for c in first])
    assert [m["id"] for m in oracle.population] == [c["id"] for c in first]
    for step in range(5):
        before = oracle.population
        by_id = {m["id"]: m for m in before}
        batch = oracle.sample_candidates(8)
        records = oracle.recorded_candidates
        children = [c for c in batch if "rescore" not in records[c["id"]]]
        rescores = [c for c in batch if "rescore" in records[c["id"]]]
        assert len(children) == 2 and len(rescores) == 6
        assert batch == children + rescores  # the children first
        assert all(records[c["id"]]["parent"] in by_id for c in children)  # tournament children
        # Six distinct members, the least recently scored, each with its own values.
        targets = [records[c["id"]]["rescore"] for c in rescores]
        stalest = sorted(by_id, key=lambda i: by_id[i]["scored"])[:6]
        assert sorted(targets) == sorted(stalest)
        assert all(c["values"] == by_id[t]["values"] for c, t in zip(rescores, targets))
        rewards = [100.0 * (step + 1) + k for k in range(8)]
        oracle.add_rewards([c["id"] for c in batch], rewards)
        after = oracle.population
        ids = [m["id"] for m in after]
        # Members keep their places (ages): the two oldest died, the two children joined
        # at the young end.
        assert ids == [m["id"] for m in before][2:] + [c["id"] for c in children]
        reward_of = dict(zip((c["id"] for c in batch), rewards))
        for candidate, target in zip(rescores, targets):
            if target in ids:  # a re-scored member's reward is the new one
                assert after[ids.index(target)]["reward"] == reward_of[candidate["id"]]
        entries = oracle.history[-8:]
        assert [h["source"] for h in entries] == ["rescore"] * 6 + ["candidate"] * 2
        assert [h["member"] for h in entries[:6]] == targets
    # Architectures to train the shared weights on: children only, nothing recorded.
    pending, joined = oracle.recorded_candidates, len(oracle.history)
    free = oracle.sample_candidates(8, record=False)
    assert len(free) == 8 and oracle.recorded_candidates == pending
    members = [m["values"] for m in oracle.population]
    assert not any(c["values"] in members for c in free) and len(oracle.history) == joined


def test_final_candidates_are_the_population_best_first_then_children(tmp_path):
    def make():
        oracle = EvolutionOracle(objective=MAX, hyperparameters=_space_hp(), population_size=4,
                                 sample_size=2, seed=5)  # fmt: skip
        oracle._set_project_dir(str(tmp_path), "final")
        return oracle

    oracle = make()
    batch = oracle.sample_candidates(4)
    oracle.add_rewards([c["id"] for c in batch], [1.0, 4.0, 2.0, 3.0])
    state = _evolution_state(oracle)
    final = oracle.final_candidates(10)
    assert final[:4] == [batch[i]["values"] for i in (1, 3, 2, 0)]  # best first
    assert len(final) == 10
    assert len({json.dumps(v, sort_keys=True) for v in final}) == 10
    # Nothing recorded, no reward expected; the random state moved and was saved.
    assert oracle.recorded_candidates == {} and len(oracle.history) == 4
    assert _evolution_state(oracle)["rng"] != state["rng"]
    assert _saved(tmp_path / "final")["rng"] == _evolution_state(oracle)["rng"]
    # Seeded: the same search gives the same finalists; a small n cuts the population.
    again = make()
    again.add_rewards([c["id"] for c in again.sample_candidates(4)], [1.0, 4.0, 2.0, 3.0])
    assert again.final_candidates(10) == final
    assert again.final_candidates(2) == final[:2]
    with pytest.raises(ValueError, match="n=0"):
        oracle.final_candidates(0)
