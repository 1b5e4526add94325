"""A small, deterministic KerasTuner setup for the `ControllerOracle` tests.

Importable by the tests, and runnable as a script (one search process) by the kill-and-resume
and the distributed tests:

    python tests/_oracle_toy.py --directory D --max-trials 12 [--sleep 0.2] [--log runs.txt]

In distributed mode the same script is the chief or a worker, as KerasTuner's
`KERASTUNER_*` environment variables say.
"""

import argparse
import math
import os
import sys
import time

import keras_tuner

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tuners.oracle import ControllerOracle  # noqa: E402

BEST = {"a": 3, "b": True, "c": 8}


class ToyHyperModel(keras_tuner.HyperModel):
    """Declares the space: Choice, Boolean, stepped Int and Fixed (3 * 2 * 5 = 30 configs)."""

    def build(self, hp):
        hp.Choice("a", [1, 2, 3])
        hp.Boolean("b")
        hp.Int("c", 0, 8, step=2)
        hp.Fixed("f", 7)


def toy_score(values):
    return float(values["a"] + values["b"] + values["c"] / 4.0)


class ToyTuner(keras_tuner.Tuner):
    """Scores a trial from its values; can raise, return NaN, sleep and log its runs."""

    def __init__(self, *args, raise_if=None, nan_if=None, sleep=0.0, log=None, **kwargs):
        self.raise_if = raise_if
        self.nan_if = nan_if
        self.sleep = sleep
        self.log = log
        self.calls = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        self.calls.append(trial.trial_id)
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{self.tuner_id} {trial.trial_id}\n")
                f.flush()
                os.fsync(f.fileno())
        if self.sleep:
            time.sleep(self.sleep)
        if self.raise_if is not None and self.raise_if(values):
            raise RuntimeError(f"child failed on purpose: {values}")
        if self.nan_if is not None and self.nan_if(values):
            return {"score": math.nan}
        return {"score": toy_score(values)}


def make_tuner(
    directory,
    max_trials,
    overwrite=False,
    seed=5,
    update_every=3,
    learning_rate=0.02,
    **tuner_kwargs,
):
    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=max_trials,
        units=16,
        learning_rate=learning_rate,
        update_every=update_every,
        seed=seed,
        max_consecutive_failed_trials=100,
    )
    return ToyTuner(
        oracle=oracle,
        hypermodel=ToyHyperModel(),
        directory=str(directory),
        project_name="toy",
        overwrite=overwrite,
        **tuner_kwargs,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--max-trials", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--log", default=None)
    args = parser.parse_args()
    tuner = make_tuner(args.directory, args.max_trials, sleep=args.sleep, log=args.log)
    tuner.search(verbose=0)


if __name__ == "__main__":
    main()
