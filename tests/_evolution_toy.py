"""A small, deterministic KerasTuner setup for the `EvolutionOracle` tests.

Importable by the tests, and runnable as a script (one search process) by the kill-and-resume
test:

    python tests/_evolution_toy.py --directory D --max-trials 14 [--sleep 0.2] [--log runs.txt]
"""

import argparse
import os
import sys
import time

import keras_tuner

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _oracle_toy import WholeTunerFile  # noqa: E402

from tuners.evolution import EvolutionOracle  # noqa: E402

TARGET = {"a": 3, "b": 1, "c": 4, "d": 0}
NAMES = tuple(TARGET)


class ToyHyperModel(keras_tuner.HyperModel):
    """Four 5-way Choices (625 configurations) and a Fixed entry."""

    def build(self, hp):
        for name in NAMES:
            hp.Choice(name, [0, 1, 2, 3, 4])
        hp.Fixed("f", 7)


def toy_score(values):
    """Higher is better; 0 at `TARGET`, down to -16 (smooth, so mutations can climb it)."""
    return -float(sum(abs(values[name] - TARGET[name]) for name in NAMES))


class ToyTuner(WholeTunerFile, keras_tuner.Tuner):
    """Scores a trial from its values; can raise, interrupt, sleep and log its runs."""

    def __init__(self, *args, raise_if=None, interrupt_at=None, sleep=0.0, log=None, **kwargs):
        self.raise_if = raise_if
        self.interrupt_at = interrupt_at
        self.sleep = sleep
        self.log = log
        self.calls = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        self.calls.append(trial.trial_id)
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{trial.trial_id}\n")
                f.flush()
                os.fsync(f.fileno())
        if self.sleep:
            time.sleep(self.sleep)
        if trial.trial_id == self.interrupt_at:
            raise KeyboardInterrupt  # stops the search mid-trial, as a kill would
        if self.raise_if is not None and self.raise_if(values):
            raise RuntimeError(f"child failed on purpose: {values}")
        return {"score": toy_score(values)}


def make_tuner(
    directory,
    max_trials,
    overwrite=False,
    seed=7,
    population_size=4,
    sample_size=2,
    **tuner_kwargs,
):
    oracle = EvolutionOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=max_trials,
        population_size=population_size,
        sample_size=sample_size,
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
