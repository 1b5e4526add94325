"""Controller settings on a synthetic noisy reward over the full NASNet B=5 space.

The reward of an architecture is the fraction of its 50 decisions that match a hidden target
architecture (drawn once per seed), plus Gaussian noise (sd 0.05, about 2.5 decisions' worth):
a stand-in for child accuracy in which every decision matters a little and one reward says
little. Uniform random sampling scores `mean(1 / num_choices)` = 0.247 on average; the target
scores 1.

Each setting runs `Controller.sample` / `Controller.update` directly (no KerasTuner) with the
given number of rewards per update, for several seeds; the table gives the mean noise-free
reward of the last 50 samples before each budget (100, 200, 500 rewards), and its ratio to the
papers' preset ("nasnet") and to uniform random sampling, measured in the same run.

    python benchmarks/controller_sweep.py > benchmarks/controller_sweep.out  # RESULTS.md's table
    python benchmarks/controller_sweep.py --seeds 0 1 --budgets 100 200 --only default nasnet
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tuners.controller import Controller  # noqa: E402
from tuners.controller_oracle import default_update_every  # noqa: E402
from tuners.decisions import decision_values  # noqa: E402
from tuners.nasnet_space import NASNetSearchSpace  # noqa: E402

NOISE = 0.05
WINDOW = 50


def nasnet_num_choices(num_blocks=5):
    """The number of choices of each decision of the NASNet space, in prediction order."""
    hp = NASNetSearchSpace(num_blocks=num_blocks).hyperparameters()
    sizes = [len(decision_values(h) or ()) for h in hp.space]
    return [k for k in sizes if k > 1]


# name -> (Controller arguments, rewards per update; None = ControllerOracle's rule).
SETTINGS = {
    "nasnet": ({"preset": "nasnet"}, 20),
    "default": ({}, None),
    "default ue=10": ({}, 10),
    "default lr=3e-3": ({"learning_rate": 3e-3}, None),
    "default no-norm": ({"normalize_advantages": False}, None),
    "default no-tanh": ({"logit_clip": 0.0}, None),
    # Not in the default run (slower): --only "nasnet ue=4" "default ue=3" ...
    "nasnet ue=4": ({"preset": "nasnet"}, 4),
    "default ue=3": ({}, 3),
    "default ue=20": ({}, 20),
    "default ent=0": ({"entropy_weight": 0.0}, None),
    "default no-kl-stop": ({"max_kl": 0.0}, None),
}
DEFAULT_RUN = list(SETTINGS)[:6]


def run(num_choices, kwargs, update_every, budgets, seed, units):
    """Mean noise-free reward of the last `WINDOW` samples before each of `budgets` rewards,
    in one run of `max(budgets)` rewards."""
    rng = np.random.default_rng([seed, 7])
    target = np.array([rng.integers(k) for k in num_choices])
    controller = Controller(num_choices, units=units, seed=seed, **kwargs)
    true_rewards = []
    while len(true_rewards) < max(budgets):
        decisions, log_probs = controller.sample(update_every, return_log_prob=True)
        true = (decisions == target).mean(axis=1)
        noisy = true + NOISE * rng.standard_normal(update_every)
        true_rewards.extend(true.tolist())
        controller.update(decisions, noisy, log_probs)
    return {b: float(np.mean(true_rewards[b - WINDOW : b])) for b in budgets}


def uniform_random(num_choices, seed):
    rng = np.random.default_rng([seed, 7])
    target = np.array([rng.integers(k) for k in num_choices])
    draws = np.stack([rng.integers(k, size=WINDOW) for k in num_choices], axis=1)
    return float((draws == target).mean())


def run_setting(num_choices, kwargs, update_every, budgets, seed, units):
    if update_every is not None:  # One run serves every budget.
        return run(num_choices, kwargs, update_every, budgets, seed, units)
    # The oracle's rule gives each budget its own cadence: one run per budget.
    return {
        b: run(num_choices, kwargs, default_update_every(b), [b], seed, units)[b]
        for b in budgets
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--only", nargs="+", default=None, help="setting names to run")
    args = parser.parse_args()
    num_choices = nasnet_num_choices()
    names = args.only or DEFAULT_RUN
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"Unknown settings {unknown}. Accepted: {list(SETTINGS)}")
    if "nasnet" not in names:
        names = ["nasnet"] + names
    print(
        f"{len(num_choices)} decisions, backend {keras.backend.backend()}, units {args.units}, "
        f"seeds {args.seeds}, noise sd {NOISE}, mean of the last {WINDOW} samples"
    )
    results = {"uniform random": {}}
    start = time.time()
    for budget in args.budgets:  # Uniform sampling does not learn: the same at every budget.
        results["uniform random"][budget] = [uniform_random(num_choices, s) for s in args.seeds]
    for name in names:
        kwargs, update_every = SETTINGS[name]
        t0 = time.time()
        runs = [
            run_setting(num_choices, kwargs, update_every, args.budgets, s, args.units)
            for s in args.seeds
        ]
        results[name] = {b: [r[b] for r in runs] for b in args.budgets}
        print(f"  {name}: {time.time() - t0:.0f} s", flush=True)
    header = "| setting | " + " | ".join(
        f"{b}: reward (sd) | vs nasnet | vs random" for b in args.budgets
    )
    print()
    print(header + " |")
    print("|---|" + "---|---|---|" * len(args.budgets))
    for name, by_budget in results.items():
        cells = []
        for budget in args.budgets:
            values = np.asarray(by_budget[budget])
            paper = np.mean(results["nasnet"][budget])
            chance = np.mean(results["uniform random"][budget])
            cells.append(
                f"{values.mean():.3f} ({values.std():.3f}) | {values.mean() / paper:.2f} | "
                f"{values.mean() / chance:.2f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
