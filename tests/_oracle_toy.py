"""A small, deterministic KerasTuner setup for the `ControllerOracle` tests.

Importable by the tests, and runnable as a script (one search process) by the kill-and-resume
and the distributed tests:

    python tests/_oracle_toy.py --directory D --max-trials 12 [--sleep 0.2] [--log runs.txt]
        [--trial-lease S] [--block-trial ID --block-dir B] [--ready FILE] [--loaded FILE]

In distributed mode the same script is the chief or a worker, as KerasTuner's
`KERASTUNER_*` environment variables say; a worker then calls the chief through
`ReconnectingClient`, so that it rides out a chief restart. For the fault tests:
`--block-trial` makes the first run of that trial write its tuner id to `B/blocked` and wait
for `B/release` (the test kills it, or kills the chief meanwhile); `--ready` is written once
the tuner is built (before it calls the chief); `--loaded` (chief) is written after the
oracle reloaded, with `state_digest(oracle)`.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
import warnings

import keras_tuner
import numpy as np
import pytest

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasnet_tf.io_utils import atomic_write, remove_temporaries  # noqa: E402
from tuners.chief_worker import ReconnectingClient  # noqa: E402
from tuners.controller_oracle import ControllerOracle  # noqa: E402
from tuners.nas_tuner import TUNER_TMP_PREFIX  # noqa: E402
from tuners.state_files import json_default  # noqa: E402

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


class WholeTunerFile:
    """Writes KerasTuner's `tuner0.json` whole, as `NASTuner` does (a mixin for toy tuners).

    KerasTuner's `BaseTuner.save` rewrites `tuner0.json` in place: a kill during that write
    leaves it empty, and the restart fails before the oracle reloads (KerasTuner's hazard).
    The oracles' resumption is what the toy searches test, so their tuners write it whole.
    """

    def reload(self):
        remove_temporaries(self.project_dir, prefix=TUNER_TMP_PREFIX)  # as `NASTuner.reload`
        super().reload()

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        if not getattr(self, "_swept", False):  # as `NASTuner.save`
            remove_temporaries(self.project_dir, prefix=TUNER_TMP_PREFIX)
            self._swept = True
        state = json.dumps(self.get_state())
        atomic_write(self._get_tuner_fname(), lambda f: f.write(state),
                     prefix=TUNER_TMP_PREFIX, suffix=".json", fsync=False)


class ToyTuner(WholeTunerFile, keras_tuner.Tuner):
    """Scores a trial from its values; can raise, return NaN, sleep and log its runs."""

    def __init__(
        self, *args, raise_if=None, nan_if=None, sleep=0.0, log=None, block_trial=None,
        block_dir=None, **kwargs,
    ):  # fmt: skip
        self.raise_if = raise_if
        self.nan_if = nan_if
        self.sleep = sleep
        self.log = log
        self.block_trial = block_trial
        self.block_dir = block_dir
        self.calls = []
        super().__init__(*args, **kwargs)

    def _maybe_block(self, trial_id):
        if trial_id != self.block_trial:
            return
        try:  # Only the first run of the trial blocks.
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
            fd = os.open(os.path.join(self.block_dir, "blocked"), flags)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as f:
            f.write(self.tuner_id)
        deadline = time.monotonic() + 120  # The test kills or releases it long before.
        while not os.path.exists(os.path.join(self.block_dir, "release")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"trial {trial_id} was never released")
            time.sleep(0.05)

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
        self._maybe_block(trial.trial_id)
        if self.raise_if is not None and self.raise_if(values):
            raise RuntimeError(f"child failed on purpose: {values}")
        if self.nan_if is not None and self.nan_if(values):
            return {"score": math.nan}
        return {"score": toy_score(values)}


PEAK = {"x0": 3, "x1": 1, "x2": 4, "x3": 0, "x4": 5}


class PeakedHyperModel(keras_tuner.HyperModel):
    """Five 7-way Choices: 7**5 = 16,807 configurations."""

    def build(self, hp):
        for name in PEAK:
            hp.Choice(name, list(range(7)))


def peaked_score(values):
    """0 at `PEAK`, lower by the L1 distance from it: one best configuration."""
    return -float(sum(abs(values[name] - best) for name, best in PEAK.items()))


class ScoreTuner(keras_tuner.Tuner):
    """Scores each trial with `score_fn(values)` at once (no model)."""

    def __init__(self, score_fn, *args, **kwargs):
        self.score_fn = score_fn
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        return {"score": self.score_fn(trial.hyperparameters.values)}


def make_tuner(
    directory,
    max_trials,
    overwrite=False,
    seed=5,
    update_every=3,
    learning_rate=0.02,
    trial_lease=None,
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
        **({} if trial_lease is None else {"trial_lease": trial_lease}),
    )
    return ToyTuner(
        oracle=oracle,
        hypermodel=ToyHyperModel(),
        directory=str(directory),
        project_name="toy",
        overwrite=overwrite,
        **tuner_kwargs,
    )


def _array_digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _normalised(value):
    return json.loads(json.dumps(value, default=json_default))


def state_digest(oracle):
    """The controller weights and optimizer (hashed), PPO buffers, baseline, random state and
    rewards of a loaded `ControllerOracle`."""
    state = oracle.controller.get_state()
    return _normalised({
        "weights": _array_digest(state["weights"]),
        "optimizer": _array_digest(state["optimizer"]),
        "baseline": state["baseline"], "num_updates": state["num_updates"],
        "rng": state["rng"], "history": state["history"],
        "pending": oracle.pending_rewards, "rewards": oracle.rewards,
        "trial_log_probs": oracle._trial_log_probs, "ongoing": sorted(
            (k, t.trial_id) for k, t in oracle.ongoing_trials.items()),
    })  # fmt: skip


def saved_digest(project_dir):
    """`state_digest` of what `oracle.json` and its controller file say, read directly."""
    with open(os.path.join(project_dir, "oracle.json")) as f:
        state = json.load(f)
    own = state["controller_oracle"]
    with np.load(os.path.join(project_dir, own["controller_file"])) as arrays:
        weights = [arrays[f"w{i}"] for i in range(int(arrays["num_weights"]))]
        optimizer = [arrays[f"o{i}"] for i in range(int(arrays["num_optimizer"]))]
    controller = own["controller"]
    return _normalised({
        "weights": _array_digest(weights), "optimizer": _array_digest(optimizer),
        "baseline": controller["baseline"], "num_updates": controller["num_updates"],
        "rng": controller["rng"], "history": controller["history"],
        "pending": own["pending"], "rewards": own["rewards"],
        "trial_log_probs": own["trial_log_probs"],
        "ongoing": sorted(state["ongoing_trials"].items()),
    })  # fmt: skip


def _write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--max-trials", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--log", default=None)
    parser.add_argument("--trial-lease", type=float, default=None)
    parser.add_argument("--block-trial", default=None)
    parser.add_argument("--block-dir", default=None)
    parser.add_argument("--ready", default=None)
    parser.add_argument("--loaded", default=None)
    args = parser.parse_args()
    tuner = make_tuner(
        args.directory, args.max_trials, sleep=args.sleep, log=args.log,
        trial_lease=args.trial_lease, block_trial=args.block_trial, block_dir=args.block_dir,
    )  # fmt: skip
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    if "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id:
        tuner.oracle = ReconnectingClient(tuner.oracle)
    if args.loaded and tuner.oracle.controller is not None:
        _write(args.loaded, json.dumps(state_digest(tuner.oracle)))
    if args.ready:
        _write(args.ready, tuner_id)
    tuner.search(verbose=0)


if __name__ == "__main__":
    main()


@pytest.fixture(autouse=True)
def quiet_small_budgets():
    """Silences the warning that a tiny budget gives the controller too few updates, in every
    test of a module that imports it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*too few to move it off uniform")
        yield


def trial_ids(n):
    """The ids KerasTuner gives `n` trials: zero-padded to the width of `n`."""
    return [f"{i:0{len(str(n))}d}" for i in range(n)]
