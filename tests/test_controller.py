"""The RNN controller: sampling, probabilities, learning, exact state round trip."""

import itertools

import numpy as np
import pytest

from tuners.controller import Controller

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
