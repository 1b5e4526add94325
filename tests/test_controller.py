"""The RNN controller: sampling, probabilities, learning, exact state round trip."""

import itertools

import numpy as np
import pytest

from tuners.controller import CONTROLLER_SETTINGS, PRESETS, Controller
from tuners.controller_oracle import default_update_every
from tuners.decisions import decision_values
from tuners.nasnet_space import NASNetSearchSpace

CHOICES = [3, 4, 2, 5]  # 120 sequences: chance of any one of them is 1/120.


def _all_sequences(num_choices):
    return np.array(list(itertools.product(*[range(k) for k in num_choices])), dtype="int32")


def test_initial_weights_uniform_and_near_max_entropy():
    controller = Controller(CHOICES, units=16, seed=3)
    weights = controller.get_state()["weights"]
    flat = np.concatenate([w.ravel() for w in weights])
    assert flat.min() >= -0.1 and flat.max() <= 0.1
    assert flat.std() > 0.04  # spread over the range, not a constant
    # Small uniform weights give almost uniform softmaxes: entropy near sum(log k).
    max_entropy = float(np.sum(np.log(CHOICES)))
    entropy = controller.entropy(controller.sample(8))
    assert entropy.shape == (8,)
    assert np.all(entropy > 0.95 * max_entropy) and np.all(entropy <= max_entropy + 1e-5)


def test_sampling_is_seeded_and_in_range():
    a = Controller(CHOICES, units=16, seed=7)
    b = Controller(CHOICES, units=16, seed=7)
    c = Controller(CHOICES, units=16, seed=8)
    sa, sb, sc = a.sample(64), b.sample(64), c.sample(64)
    assert sa.shape == (64, 4) and sa.dtype == np.int32
    np.testing.assert_array_equal(sa, sb)
    assert not np.array_equal(sa, sc)
    assert np.all(sa >= 0) and np.all(sa < np.array(CHOICES))
    # Every choice of every decision shows up: the heads are sized per decision.
    for t, k in enumerate(CHOICES):
        assert set(np.unique(sa[:, t])) == set(range(k))


def test_probabilities_form_a_distribution_that_sampling_follows():
    controller = Controller([2, 3], units=8, seed=1, learning_rate=0.05)
    # Move away from uniform so that the check means something.
    for _ in range(5):
        controller.update([[1, 2], [0, 0], [1, 1]], [1.0, 0.0, 0.3])
    sequences = _all_sequences([2, 3])
    probs = np.exp(controller.log_prob(sequences))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
    per_decision = controller.probabilities(sequences)
    assert per_decision.shape == (6, 2)
    np.testing.assert_allclose(np.prod(per_decision, axis=1), probs, rtol=1e-5)
    assert probs.max() > 0.3  # no longer uniform (1/6)

    draws = controller.sample(4000)
    index = draws[:, 0] * 3 + draws[:, 1]
    freq = np.bincount(index, minlength=6) / len(index)
    np.testing.assert_allclose(freq, probs, atol=0.03)


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce"])
def test_controller_learns_a_rewarded_sequence(algorithm):
    target = np.array([2, 1, 0, 3])
    controller = Controller(CHOICES, units=32, algorithm=algorithm, learning_rate=0.02, seed=0)
    chance = 1.0 / np.prod(CHOICES)
    p0 = float(np.prod(controller.probabilities(target)))
    assert p0 < 3 * chance
    for _ in range(40):
        decisions = controller.sample(16)
        rewards = (decisions == target).mean(axis=1)  # fraction of decisions right
        stats = controller.update(decisions, rewards)
    p = float(np.prod(controller.probabilities(target)))
    assert p > 0.5, (algorithm, p0, p)
    assert np.array_equal(controller.greedy(), target)
    assert stats["update"] == 40 and len(controller.history) == 40
    # The baseline followed the rewards up; entropy fell as the policy sharpened.
    assert controller.baseline > 0.6
    assert controller.history[-1]["entropy"] < 0.5 * controller.history[0]["entropy"]


def test_baseline_is_an_ema_of_rewards():
    controller = Controller([2, 2], units=8, baseline_decay=0.5, algorithm="reinforce", seed=0)
    controller.update([[0, 0], [1, 1]], [1.0, 3.0])  # starts at the first batch's mean, 2
    assert controller.baseline == pytest.approx((2 * 0.5 + 1 * 0.5) * 0.5 + 3 * 0.5)
    before = controller.baseline
    stats = controller.update([[0, 1], [1, 0]], [10.0, 0.0])
    assert stats["advantage_mean"] == pytest.approx(5.0 - before)
    assert controller.baseline == pytest.approx((0.5 * before + 5.0) * 0.5)


def test_state_round_trip_resumes_exactly():
    a = Controller(CHOICES, units=16, learning_rate=0.01, seed=11)
    for _ in range(3):
        d = a.sample(8)
        a.update(d, d.sum(axis=1) / 10.0)
    state = a.get_state()
    b = Controller(CHOICES, units=16, learning_rate=0.01, seed=99)
    b.set_state(state)
    sb = b.get_state()
    for x, y in zip(state["weights"] + state["optimizer"], sb["weights"] + sb["optimizer"]):
        np.testing.assert_array_equal(x, y)
    assert sb["rng"] == state["rng"] and sb["baseline"] == state["baseline"]
    assert sb["num_updates"] == 3 and sb["history"] == state["history"]
    # Same draws and the same next update as the original.
    da, db = a.sample(8), b.sample(8)
    np.testing.assert_array_equal(da, db)
    a.update(da, da[:, 0] * 1.0)
    b.update(db, db[:, 0] * 1.0)
    for x, y in zip(a.get_state()["weights"], b.get_state()["weights"]):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_set_state_refuses_another_shape():
    state = Controller([2, 3], units=8, seed=0).get_state()
    with pytest.raises(ValueError, match="num_choices"):
        Controller([2, 4], units=8, seed=0).set_state(state)
    with pytest.raises(ValueError, match="units=16"):
        Controller([2, 3], units=16, seed=0).set_state(state)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_choices": []}, "num_choices"),
        ({"num_choices": [2, 0]}, "num_choices"),
        ({"num_choices": "abc"}, "num_choices"),
        ({"num_choices": [2], "algorithm": "a2c"}, "algorithm='a2c'"),
        ({"num_choices": [2], "units": 0}, "units=0"),
        ({"num_choices": [2], "learning_rate": -1.0}, "learning_rate=-1.0"),
        ({"num_choices": [2], "baseline_decay": 1.0}, "baseline_decay=1.0"),
        ({"num_choices": [2], "entropy_weight": -0.1}, "entropy_weight=-0.1"),
        ({"num_choices": [2], "ppo_epochs": 0}, "ppo_epochs=0"),
        ({"num_choices": [2], "seed": 1.5}, "seed=1.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match="Received") as info:
        Controller(**kwargs)
    assert match in str(info.value)


def test_bad_decisions_and_rewards():
    controller = Controller([2, 3], units=8, seed=0)
    with pytest.raises(ValueError, match=r"decisions\[0, 1\]=3"):
        controller.log_prob([[0, 3]])
    with pytest.raises(ValueError, match="shape"):
        controller.log_prob([[0, 1, 1]])
    with pytest.raises(ValueError, match="finite"):
        controller.update([[0, 1], [1, 1]], [1.0, float("nan")])
    with pytest.raises(ValueError, match="finite"):
        controller.update([[0, 1], [1, 1]], [1.0])


# --------------------------------------------------------------- presets, PPO, synthetic NAS
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_explicit_arguments_override_it(name):
    controller = Controller([2, 3], units=8, seed=0, preset=name)
    for key in CONTROLLER_SETTINGS:
        assert getattr(controller, key) == PRESETS[name][key], key
    assert controller.get_config()["preset"] == name
    override = Controller([2, 3], units=8, seed=0, preset=name, learning_rate=0.123, max_kl=0)
    assert override.learning_rate == 0.123 and override.max_kl == 0.0
    assert override.entropy_weight == PRESETS[name]["entropy_weight"]
    rebuilt = Controller(**override.get_config())
    assert rebuilt.get_config() == override.get_config()


def test_nasnet_preset_is_the_papers_and_unknown_presets_are_refused():
    paper = PRESETS["nasnet"]
    assert (paper["learning_rate"], paper["entropy_weight"]) == (3.5e-4, 1e-5)
    assert (paper["baseline_decay"], paper["update_every"], paper["algorithm"]) == (0.95, 20, "ppo")
    known = r"Accepted: \['default', 'nasnet'\]. Received: preset='x'"
    with pytest.raises(ValueError, match=known):
        Controller([2], preset="x")


def test_sample_returns_the_sampling_time_log_prob():
    controller = Controller(CHOICES, units=8, seed=2)
    decisions, log_probs = controller.sample(16, return_log_prob=True)
    assert log_probs.shape == (16,)
    np.testing.assert_allclose(log_probs, controller.log_prob(decisions), atol=1e-4)
    with pytest.raises(ValueError, match="old_log_probs"):
        controller.update(decisions, np.ones(16), old_log_probs=np.ones(16))


@pytest.mark.slow  # ~15 s under TensorFlow, ~30-45 s under JAX (compiles)
def test_stale_sample_is_trained_with_its_sampling_time_log_prob():
    kwargs = dict(units=8, seed=4, learning_rate=0.05, ppo_epochs=1, entropy_weight=0.0)
    a, b = Controller([3, 3], **kwargs), Controller([3, 3], **kwargs)
    stale, stale_lp = a.sample(2, return_log_prob=True)
    b.sample(2)  # same random state as `a`
    # An update between the draw and the stale sample's own update moves the policy.
    for c in (a, b):
        c.update([[0, 0], [1, 1], [2, 2]], [1.0, 0.0, 0.0])
    current = a.log_prob(stale)
    assert np.max(np.abs(current - stale_lp)) > 0.2  # ratio outside 1 +- 0.2
    rewards = np.array([1.0, 0.0])
    baseline = a.baseline
    advantage = rewards - baseline
    advantage = advantage / advantage.std()
    ratio = np.exp(current - stale_lp)
    expected = -np.minimum(ratio * advantage, np.clip(ratio, 0.8, 1.2) * advantage).mean()
    with_lp = a.update(stale, rewards, old_log_probs=stale_lp)
    without = b.update(stale, rewards)  # old behaviour: the current policy's log-probs
    assert with_lp["loss"] == pytest.approx(expected, rel=1e-4)
    assert with_lp["clip_fraction"] == pytest.approx(np.mean(np.abs(ratio - 1) > 0.2))
    assert with_lp["clip_fraction"] > 0 and without["clip_fraction"] == 0.0
    assert without["loss"] == pytest.approx(-advantage.mean(), abs=1e-5)
    assert with_lp["stale_kl"] > 0.01 and without["stale_kl"] == pytest.approx(0.0, abs=1e-6)


def test_kl_early_stop_and_update_stats():
    d = np.array([[0, 1, 0, 4], [2, 3, 1, 0], [1, 0, 0, 2], [2, 2, 1, 1]])
    rewards = [1.0, 0.0, 0.5, 0.2]
    stop = Controller(CHOICES, units=8, seed=0, learning_rate=0.05, ppo_epochs=6, max_kl=1e-9)
    free = Controller(CHOICES, units=8, seed=0, learning_rate=0.05, ppo_epochs=6, max_kl=0)
    s_stop, s_free = stop.update(d, rewards), free.update(d, rewards)
    assert s_stop["ppo_steps"] == 1 and s_free["ppo_steps"] == 6
    assert 0 < s_stop["approx_kl"] < s_free["approx_kl"]
    probs = s_free["decision_probs"]
    assert [len(p) for p in probs] == CHOICES
    for p in probs:
        assert sum(p) == pytest.approx(1.0, abs=1e-3) and all(round(x, 4) == x for x in p)
    greedy_p = free.probabilities(free.greedy())[0, 0]
    np.testing.assert_allclose(np.max(probs[0]), greedy_p, atol=1e-4)
    keys = {"update", "reward_mean", "reward_max", "reward_min", "baseline", "entropy",
            "approx_kl", "loss", "clip_fraction", "ppo_steps", "decision_probs"}  # fmt: skip
    assert keys <= set(s_free)


def nasnet_num_choices():
    hp = NASNetSearchSpace(num_blocks=5).hyperparameters()
    return [k for k in (len(decision_values(h) or ()) for h in hp.space) if k > 1]


def _synthetic_nasnet_run(preset, update_every, budget=200, seed=0):
    """Mean noise-free reward of the last 50 of `budget` samples: the fraction of the 50
    NASNet B=5 decisions matching a hidden target, observed with N(0, 0.05) noise. Also the
    policy's mean per-decision probability of the target's choices, before and after."""
    num_choices = nasnet_num_choices()
    rng = np.random.default_rng([seed, 7])
    target = np.array([rng.integers(k) for k in num_choices])
    controller = Controller(num_choices, seed=seed, preset=preset)
    before = float(controller.probabilities(target[None]).mean())
    true = []
    while len(true) < budget:
        decisions, log_probs = controller.sample(update_every, return_log_prob=True)
        match = (decisions == target).mean(axis=1)
        true.extend(match)
        controller.update(decisions, match + 0.05 * rng.standard_normal(len(match)), log_probs)
    chance = float(np.mean([1.0 / k for k in num_choices]))
    after = float(controller.probabilities(target[None]).mean())
    return float(np.mean(true[-50:])), chance, (before, after)


@pytest.mark.slow  # ~15 s under TensorFlow, ~30-45 s under JAX (compiles)
def test_default_preset_learns_the_nasnet_space_within_200_rewards_and_nasnet_is_slower():
    default, chance, _ = _synthetic_nasnet_run("default", default_update_every(200))
    paper, _, (before, after) = _synthetic_nasnet_run("nasnet", PRESETS["nasnet"]["update_every"])
    assert chance == pytest.approx(0.247, abs=1e-3)
    assert default > 1.3 * chance, (default, chance)
    # At 200 rewards the paper's preset gets 10 updates (of Adam at 3.5e-4; it was made for
    # 20,000 rewards), the default 40: that the default gets further here is why it exists.
    assert default > paper + 0.05, (default, paper, chance)
    # Not asserted: that the paper's preset stays near chance (it does at this budget, and
    # that says nothing of its settings). Asserted instead: its updates go the right way. Its
    # probability of the target's choices rises (~+0.008 in 10 updates, over seeds 0-2; a
    # policy that does not learn stays put, one that learns backwards falls as much).
    assert after > before + 0.003, (before, after)


def _steps(controller, rounds=2):
    """Draws, updates, draws again; returns everything it saw."""
    seen = []
    for _ in range(rounds):
        decisions, log_probs = controller.sample(6, return_log_prob=True)
        controller.update(decisions, decisions.sum(axis=1) / 10.0, log_probs)
        seen.append((decisions, controller.log_prob(decisions), controller.greedy()))
    return seen


def _assert_same(a, b):
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


def test_one_compiled_network_serves_every_controller_of_the_same_settings():
    alone = [_steps(Controller(CHOICES, units=8, learning_rate=0.05, seed=s)) for s in (4, 5)]
    a = Controller(CHOICES, units=8, learning_rate=0.05, seed=4)
    b = Controller(CHOICES, units=8, learning_rate=0.05, seed=5)
    assert a._network is b._network  # compiled once in the process
    # Used in turns, each controller sees exactly what it saw alone: its weights and its
    # optimizer state move in and out of the shared network.
    seen_a, seen_b = [], []
    for _ in range(2):
        seen_a += _steps(a, rounds=1)
        seen_b += _steps(b, rounds=1)
    _assert_same(seen_a, alone[0])
    _assert_same(seen_b, alone[1])
    state_a = a.get_state()
    b.sample(2)  # b takes the network; a's state is kept aside, whole
    for x, y in zip(state_a["weights"] + state_a["optimizer"], a.arrays()[0] + a.arrays()[1]):
        np.testing.assert_array_equal(x, y)
    other = Controller(CHOICES, units=8, learning_rate=0.01, seed=4)  # other settings
    assert other._network is not a._network


def test_arrays_and_a_state_without_them():
    controller = Controller(CHOICES, units=8, seed=2)
    weights, optimizer = controller.arrays()
    state = controller.get_state(include_arrays=False)
    assert "weights" not in state and "optimizer" not in state
    assert set(state) == {"config", "baseline", "num_updates", "rng", "history"}
    full = controller.get_state()
    for x, y in zip(weights + optimizer, full["weights"] + full["optimizer"]):
        assert isinstance(x, np.ndarray)
        np.testing.assert_array_equal(x, y)
    weights[0][...] = 5.0  # copies: the controller is untouched
    assert controller.get_state()["weights"][0].max() <= 0.1


@pytest.mark.parametrize("n", [1, 2, 5, 9, 33])
def test_batches_of_any_size_give_the_unpadded_results(n):
    controller = Controller(CHOICES, units=8, seed=6)
    twin = Controller(CHOICES, units=8, seed=6)
    decisions, log_probs = controller.sample(n, return_log_prob=True)
    assert decisions.shape == (n, 4) and log_probs.shape == (n,)
    np.testing.assert_allclose(controller.log_prob(decisions), log_probs, rtol=1e-5)
    # Row by row (batches of one) gives the same numbers as the padded batch.
    rows = np.concatenate([twin.sample(1) for _ in range(n)])
    np.testing.assert_array_equal(rows, decisions)
