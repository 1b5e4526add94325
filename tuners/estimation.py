"""Performance estimation: how a NAS tuner scores one child architecture.

A tuner hands each trial's child to one `PerformanceEstimator` and reports what it returns;
nothing else in the tuner builds, trains or evaluates. `TrainAndEvaluate` is the NASNet
paper's estimator (build the child from scratch, train it briefly, read its validation
metrics). A weight-sharing estimator (ENAS-style: one super-network, no per-child
recompilation) subclasses `PerformanceEstimator`, uses `child.architecture` instead of
`child.build()`, and keeps its shared weights with `save` / `reload`.

A child that cannot be scored must not stop the search: `TrainAndEvaluate` raises
`keras_tuner.errors.FailedTrialError` when the training loss goes NaN or infinite, which
KerasTuner records as a FAILED trial (and the oracle gives it its failure reward); any other
exception while building or training makes the trial INVALID, retried up to the oracle's
`max_retries_per_trial` and then FAILED.
"""

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner
import numpy as np

from nasnet_tf.compiled_state import build_compiled_state, label_row

__all__ = ["Child", "PerformanceEstimator", "TrainAndEvaluate", "trial_seed"]


@dataclasses.dataclass
class Child:
    """One child architecture to score, as a tuner hands it to its estimator.

    Args:
        architecture: the decoded architecture (a `nasnet_tf.Genotype`, or a
            `nasnet_tf.LayerwiseGenotype`).
        hyperparameters: the trial's `keras_tuner.HyperParameters`.
        build: a callable taking no arguments that returns the child as a compiled Keras model
            (the tuner's build, with its session clearing and `max_model_size` check).
        trial_id: the trial's id.
        directory: the trial's directory (for files an estimator keeps per trial).
        callbacks: Keras callbacks the tuner needs run during training (its reporting and
            best-epoch checkpoint callbacks, then the user's).
        hypermodel: the tuner's hypermodel (estimators that build their own network read
            the space and the child layout from it; `TrainAndEvaluate` trains the child
            through its `fit(hp, model, *args, **kwargs)`).
        oracle: the tuner's oracle (weight-sharing estimators sample architectures from it
            when it is a `tuners.reward_oracle.RewardOracle`).
        report: a callable `(metrics, step)` recording intermediate metrics of the trial
            with the oracle (e.g. one call per epoch), or None.
    """

    architecture: Any
    hyperparameters: Any
    build: Callable[[], keras.Model]
    trial_id: str
    directory: str
    callbacks: list = dataclasses.field(default_factory=list)
    hypermodel: Any = None
    oracle: Any = None
    report: Callable | None = None


class PerformanceEstimator:
    """Base class: scores children. Subclasses implement `estimate`.

    The tuner calls `estimate` once per execution of a trial, with the arguments given to
    `tuner.search()`. It returns what a KerasTuner `run_trial` may return: a
    `keras.callbacks.History`, a dict of metric values (containing the objective), or a float
    (the objective's value).

    `save(directory)` / `reload(directory)` are called with the tuner's project directory when
    the tuner saves and reloads, for estimators with state shared across children (e.g. shared
    weights); the base class keeps none.
    """

    def estimate(self, child, *fit_args, **fit_kwargs):
        """Scores `child` (a `Child`); returns a History, a metrics dict or a float."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `estimate(child, *fit_args, **fit_kwargs)`."
        )

    def save(self, directory):
        """Saves state shared across children under `directory` (nothing by default)."""

    def reload(self, directory):
        """Reloads what `save` wrote under `directory` (nothing by default)."""

    def get_config(self):
        return {}


class TrainAndEvaluate(PerformanceEstimator):
    """Builds the child from scratch, trains it with `fit`, and reports its metrics.

    The child is trained through its hypermodel's public KerasTuner hook,
    `child.hypermodel.fit(hp, model, *fit_args, **fit_kwargs)` (`keras_tuner.HyperModel.fit`,
    by default `model.fit`; `model.fit` itself when the child has no hypermodel), so a
    hypermodel that overrides `fit` customises every child's training. Its result is
    reported as KerasTuner reports `fit`'s: a `History`, a metrics dict or a float.

    Training runs with `keras.callbacks.TerminateOnNaN`; a non-finite training loss makes
    the trial FAILED (`keras_tuner.errors.FailedTrialError`) instead of reporting the
    accuracy of a diverged network.

    Args:
        fit_overrides: optional dict of `fit` arguments that take precedence over those given
            to `search()` (e.g. `{"epochs": 1}` for a quick proxy).
        evaluation_data: optional data (`(x, y)` or a dataset) evaluated after training; its
            metrics are reported with a `val_` prefix, replacing those of `validation_data`.
            Use it to score on a held-out set other than the one monitored during training.
        seed: int or None. With an int, each child's weights (and its training's shuffling
            and dropout) are seeded from the seed and the trial id
            (`keras.utils.set_random_seed`), so the same search gives the same scores.

    Example:

    ```python
    estimator = TrainAndEvaluate(fit_overrides={"epochs": 1}, seed=0)
    tuner = NASTuner(NASNetHyperModel(...), estimator=estimator, ...)
    ```
    """

    def __init__(self, fit_overrides=None, evaluation_data=None, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"`seed` must be an integer >= 0 or None. Received: seed={seed!r}")
        self.seed = seed
        if fit_overrides is not None and not isinstance(fit_overrides, dict):
            raise ValueError(
                "`fit_overrides` must be a dict of `fit` arguments or None. "
                f"Received: fit_overrides={fit_overrides!r}"
            )
        self.fit_overrides = dict(fit_overrides or {})
        if "callbacks" in self.fit_overrides:
            raise ValueError(
                "`fit_overrides` must not replace `callbacks`: the tuner's own callbacks "
                "must run. Pass callbacks to `search()` instead. Received: "
                f"fit_overrides={self.fit_overrides!r}"
            )
        self.evaluation_data = evaluation_data

    def estimate(self, child, *fit_args, **fit_kwargs):
        if self.seed is not None:
            keras.utils.set_random_seed(trial_seed(self.seed, child.trial_id))
        model = child.build()
        kwargs = {**fit_kwargs, **self.fit_overrides}
        if "shuffle" not in kwargs and _is_tf_dataset(fit_args[0] if fit_args else
                                                      kwargs.get("x")):
            # A tf.data pipeline shuffles itself; `fit`'s default `shuffle=True` would only
            # warn ("will be ignored") on every child.
            kwargs["shuffle"] = False
        kwargs["callbacks"] = list(child.callbacks) + [keras.callbacks.TerminateOnNaN()]
        if self.evaluation_data is None and child.report is not None:
            # Each epoch's metrics join the trial's history (reward rules such as
            # `tuners.rewards.nas2016_reward` read the last epochs).
            kwargs["callbacks"].append(_Report(child.report))
        # Built before the first step: its tracing otherwise creates them and runs twice.
        build_compiled_state(model, label_row(
            fit_args[0] if fit_args else kwargs.get("x"),
            fit_args[1] if len(fit_args) > 1 else kwargs.get("y")))
        if child.hypermodel is not None:
            # KerasTuner's public hook: `HyperModel.fit(hp, model, *args, **kwargs)` (by
            # default `model.fit(*args, **kwargs)`); a hypermodel may override it.
            results = child.hypermodel.fit(child.hyperparameters, model, *fit_args, **kwargs)
        else:
            results = model.fit(*fit_args, **kwargs)
        history = results if isinstance(results, keras.callbacks.History) else None
        if history is not None:
            losses = history.history.get("loss", [])
            if not losses or not all(math.isfinite(float(v)) for v in losses):
                raise keras_tuner.errors.FailedTrialError(
                    f"Trial {child.trial_id}: the child's training loss is not finite "
                    f"(losses per epoch: {losses}); the child diverged. Architecture: "
                    f"{child.architecture}"
                )
        if self.evaluation_data is None:
            return results
        return self._evaluate(model, history)

    def _evaluate(self, model, history):
        data = self.evaluation_data
        if isinstance(data, (tuple, list)):
            if len(data) not in (2, 3):
                raise ValueError(
                    "`evaluation_data` must be `(x, y)`, `(x, y, sample_weight)` or a "
                    f"dataset. Received a sequence of length {len(data)}"
                )
            results = model.evaluate(*data, verbose=0, return_dict=True)
        else:
            results = model.evaluate(data, verbose=0, return_dict=True)
        metrics = {f"val_{name}": float(value) for name, value in results.items()}
        # Training metrics of the last epoch stay visible next to the held-out ones.
        for name, values in (history.history if history is not None else {}).items():
            if not name.startswith("val_") and values:
                metrics[name] = float(values[-1])
        return metrics

    def get_config(self):
        return {"fit_overrides": dict(self.fit_overrides), "seed": self.seed}


def trial_seed(seed, trial_id):
    """A child's seed, from the estimator's seed and the digits of the trial id.

    Example:

    >>> trial_seed(0, "03") == trial_seed(0, "03") != trial_seed(0, "04")
    True
    """
    digits = "".join(ch for ch in str(trial_id) if ch.isdigit()) or "0"
    return int(np.random.SeedSequence([seed, int(digits)]).generate_state(1)[0] % (2**31 - 1))


class _Report(keras.callbacks.Callback):
    """Sends each epoch's metrics to the oracle as the trial's intermediate results."""

    def __init__(self, report):
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch, logs=None):
        finite = {k: float(v) for k, v in (logs or {}).items() if math.isfinite(float(v))}
        if finite:
            self.report(finite, epoch)


def _is_tf_dataset(data):
    tf = sys.modules.get("tensorflow")  # a tf.data pipeline means TensorFlow is imported
    return tf is not None and isinstance(data, tf.data.Dataset)
