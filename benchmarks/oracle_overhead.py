"""Oracle overhead: what each of our oracles adds per trial, against KerasTuner's random search.

Every arm runs the same toy `keras_tuner.Tuner` (its `run_trial` scores the values at once,
no model), the same deterministic reward, the same space (six 5-way Choices and a Boolean:
31,250 configurations) and the same number of trials, in a fresh directory, one after the
other in one process. So the time per trial is the oracle's own work (drawing, rewarding,
learning, saving its state) plus KerasTuner's bookkeeping, which every arm shares.

Columns:

- `first s`: the search's start to the second trial's start (for the controller: building
  the policy and compiling its sampling; compiled networks are reused by later controllers
  of the same shape in the process, so the arm's controller is built once beforehand, with
  its sampling and scoring compiled at every batch size, unless `--cold`).
- `ms/trial`: wall time, the mean over the other trials; `ratio`: over random search's.
- `cpu ms/trial`, `cpu ratio`: the same in this process's CPU time, which other jobs on the
  machine disturb far less than wall time (waiting for the disk is not counted).
- `fsync/trial`, `fsync ms`: the `os.fsync` calls per trial and the wall time they took. Every
  state file is written whole (`nasnet_tf.io_utils.atomic_write`), but only a trial's end is
  synced: `oracle.json`, its sidecar, the controller file when it changed, the project
  directory (see "Durability" in `tuners.state_files`); KerasTuner's own writes are not.
- `learn ms`: wall time per trial in `Controller.update` (for the controller: its updates on
  the trials' rewards and on the rewards of draws that repeat tried configurations).
- `warnings`: warnings raised in the search that KerasTuner's own code did not raise.
- `optimum at`: the first trial that scored the optimum (the search's quality on this reward;
  `nan`: not found). It depends on `--seed`: compare a change over a few seeds.

With `--rounds R` the arms run R times, interleaved, and each column is the median.
The `controller_mc0` arm is the controller with `max_collisions=0`: no repeat draws, so it
shows the controller's cost without learning from repeats.

    python benchmarks/oracle_overhead.py --trials 200    # KERAS_BACKEND=jax for JAX
"""

import argparse
import logging
import math
import os
import pathlib
import sys
import tempfile
import time
import warnings

import keras_tuner
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuners import controller as controller_module  # noqa: E402
from tuners.controller_oracle import ControllerOracle  # noqa: E402
from tuners.evolution import EvolutionOracle  # noqa: E402

TARGET = {"a": 3, "b": 1, "c": 4, "d": 0, "e": 2, "f": 1}
OBJECTIVE = keras_tuner.Objective("score", "max")
ARMS = ("random", "controller", "controller_mc0", "evolution")
OPTIMUM = 1.0  # the reward of TARGET with g=True
BIGGEST_BATCH = 1024  # `tuners.controller`'s largest compiled batch


class Space(keras_tuner.HyperModel):
    """Six 5-way Choices (5**6 = 15,625) and a Boolean: 31,250 configurations."""

    def build(self, hp):
        for name in TARGET:
            hp.Choice(name, [0, 1, 2, 3, 4])
        hp.Boolean("g")


def reward(values):
    return -float(sum(abs(values[k] - v) for k, v in TARGET.items())) + float(values["g"])


class Toy(keras_tuner.Tuner):
    def __init__(self, *args, **kwargs):
        self.starts = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        self.starts.append((time.perf_counter(), time.process_time()))
        return {"score": reward(trial.hyperparameters.values)}


class Clock:
    """Counts the calls of a function and the time spent in them, while installed."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name
        self.original = getattr(owner, name)
        self.calls, self.seconds = 0, 0.0

    def __enter__(self):
        original = self.original

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - start

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.original)


def make_oracle(name, trials, seed, **kwargs):
    if name == "random":
        return keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=trials, seed=seed)
    if name == "controller":
        return ControllerOracle(OBJECTIVE, max_trials=trials, seed=seed, **kwargs)
    if name == "controller_mc0":  # no repeat draws: a collision goes to the nearest untried
        return ControllerOracle(OBJECTIVE, max_trials=trials, seed=seed, max_collisions=0,
                                **kwargs)  # fmt: skip
    if name == "evolution":
        return EvolutionOracle(OBJECTIVE, max_trials=trials, seed=seed)
    raise ValueError(f"Unknown oracle. Accepted: {ARMS}. Received: {name}")


def warm_up(name, trials, root):
    """Compiles the arm's controller network (shared by the controllers of the same settings
    in a process) in a throwaway search of 2 trials and one update, and its sampling and
    scoring at every padded batch size (the search's repeat draws and its scoring of the
    untried configurations nearest the policy's mode use several; each new one compiles
    again, about a second under JAX)."""
    if not name.startswith("controller"):
        return
    update_every = make_oracle(name, trials, seed=0).update_every
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "too few updates in max_trials=2"
        oracle = make_oracle(name, 2, seed=0, update_every=update_every)
    Toy(oracle=oracle, hypermodel=Space(), directory=os.path.join(root, "warm_" + name),
        overwrite=True).search(verbose=0)
    controller = oracle.controller
    decisions, log_probs = controller.sample(update_every, return_log_prob=True)
    controller.update(decisions, np.arange(update_every, dtype="float64"), log_probs)
    sizes = {controller_module._batch_bucket(n) for n in range(1, BIGGEST_BATCH + 1)}
    for n in sorted(sizes):
        controller.log_prob(controller.sample(n))


def run_arm(name, trials, seed, root):
    oracle = make_oracle(name, trials, seed)
    tuner = Toy(oracle=oracle, hypermodel=Space(), directory=os.path.join(root, name),
                project_name="p", overwrite=True)
    package = os.path.dirname(keras_tuner.__file__)
    with warnings.catch_warnings(record=True) as caught, Clock(os, "fsync") as fsync, Clock(
        controller_module.Controller, "update"
    ) as learn:
        warnings.simplefilter("always")
        start = time.perf_counter()
        tuner.search(verbose=0)
        end, cpu_end = time.perf_counter(), time.process_time()
    n = len(tuner.starts)
    if n < 2:
        raise RuntimeError(f"The {name} search ran {n} trial(s); the benchmark needs 2.")
    second, cpu_second = tuner.starts[1]
    return {
        "oracle": name,
        "trials": len(oracle.trials),
        "total_s": end - start,
        "first_s": second - start,
        "ms_per_trial": 1000.0 * (end - second) / (n - 1),
        "cpu_ms_per_trial": 1000.0 * (cpu_end - cpu_second) / (n - 1),
        "fsync_per_trial": fsync.calls / max(1, n),
        "fsync_ms": 1000.0 * fsync.seconds / max(1, n),
        "learn_ms": 1000.0 * learn.seconds / max(1, n),
        "warnings": sum(not w.filename.startswith(package) for w in caught),
        "optimum_at": first_optimum(oracle),
    }


def first_optimum(oracle):
    """The number of the first trial (1-based, in trial order) that scored the optimum, or
    NaN when none did: how fast the search found it."""
    for number, trial_id in enumerate(sorted(oracle.trials), start=1):
        if (oracle.trials[trial_id].score or -math.inf) >= OPTIMUM:
            return number
    return math.nan


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="interleaved repeats; medians shown")
    p.add_argument("--oracles", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--cold", action="store_true",
                   help="no warm-up: the first trial builds and compiles the controller")
    args = p.parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import keras

    runs = {name: [] for name in args.oracles}
    with tempfile.TemporaryDirectory() as root:
        if not args.cold:
            for name in args.oracles:
                warm_up(name, args.trials, root)
        for _ in range(args.rounds):
            for name in args.oracles:
                runs[name].append(run_arm(name, args.trials, args.seed, root))
    rows = {
        name: {key: (float(np.median([r[key] for r in rs])) if key != "oracle" else name)
               for key in rs[0]}
        for name, rs in runs.items()
    }  # fmt: skip
    base = rows.get("random")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"backend: {keras.backend.backend()}, keras {keras.__version__}, keras-tuner "
          f"{keras_tuner.__version__}, {args.trials} trials, seed {args.seed}, "
          f"{args.rounds} round(s), {'cold' if args.cold else 'warm'} start, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    header = ("oracle", "trials", "total s", "first s", "ms/trial", "ratio", "cpu ms/trial",
              "cpu ratio", "fsync/trial", "fsync ms", "learn ms", "warnings", "optimum at")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows.values():
        ratio = r["ms_per_trial"] / base["ms_per_trial"] if base else float("nan")
        cpu_ratio = r["cpu_ms_per_trial"] / base["cpu_ms_per_trial"] if base else float("nan")
        print(f"| {r['oracle']} | {r['trials']:.0f} | {r['total_s']:.2f} | {r['first_s']:.2f} | "
              f"{r['ms_per_trial']:.1f} | {ratio:.2f} | {r['cpu_ms_per_trial']:.1f} | "
              f"{cpu_ratio:.2f} | {r['fsync_per_trial']:.1f} | {r['fsync_ms']:.1f} | "
              f"{r['learn_ms']:.1f} | {r['warnings']:.0f} | {r['optimum_at']:.0f} |")


if __name__ == "__main__":
    main()
