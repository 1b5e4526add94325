"""Rewards as the NAS papers define them, ready for `ControllerOracle(reward_fn=...)`.

A `reward_fn` is a callable `trial -> float` (higher is better). These read the history
that KerasTuner records for a trial (`trial.metrics.get_history(metric)`, ordered by step;
with several executions per trial, the mean over executions). The NAS tuners' estimators
report every epoch (`TrainAndEvaluate` without `evaluation_data`, and `FreshWeights`, through
`oracle.update_trial(trial_id, logs, step=epoch)`), so there the history holds one value per
epoch. A plain KerasTuner `Tuner` records a single observation per trial when `run_trial`
returns a `fit` history, the best epoch's, and the papers' "last 5 epochs" reduce to it.

- `nas2016_reward`: Zoph & Le (2016), the maximum validation accuracy of the last 5 epochs,
  cubed.
- `nasnet_reward`: Zoph et al. (2017), the validation accuracy at the end of training.
"""

import math

__all__ = ["nas2016_reward", "nasnet_reward"]


def _check_metric(metric):
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"`metric` must be a non-empty string. Received: metric={metric!r}")
    return metric


def _history(trial, metric):
    """The metric's per-step values of `trial`, ordered by step."""
    tracker = trial.metrics
    if not tracker.exists(metric) or not tracker.get_history(metric):
        available = sorted(name for name in tracker.metrics if tracker.get_history(name))
        raise ValueError(
            f"Trial {trial.trial_id} has no '{metric}' history to compute its reward from. "
            f"Metrics it has: {available}. Received: metric={metric!r}"
        )
    return [float(observation.mean()) for observation in tracker.get_history(metric)]


class _MetricReward:
    """A picklable `trial -> float` over the tail of one metric's history."""

    def __init__(self, name, metric, last, power):
        self.name, self.metric, self.last, self.power = name, metric, last, power

    def __call__(self, trial):
        values = _history(trial, self.metric)[-self.last :]
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan  # The oracle turns a non-finite reward into a failure.
        return max(finite) ** self.power

    def __repr__(self):
        return f"{self.name}(metric={self.metric!r}, last={self.last}, power={self.power})"


def nas2016_reward(metric="val_accuracy", last=5, power=3):
    """The reward of Zoph & Le (2016): the best `metric` of the last `last` epochs, cubed.

    "We use the maximum validation accuracy of the last 5 epochs cubed as the reward": the
    maximum tolerates a noisy final epoch, and the cube spreads out the accuracies of good
    architectures.

    Args:
        metric: str, the name of the per-epoch metric (higher is better), e.g.
            `"val_accuracy"`.
        last: int >= 1, how many of the last epochs to take the maximum over.
        power: number > 0, the exponent.

    Returns:
        A callable `trial -> float`. It raises a `ValueError` naming the metric and the ones
        the trial has when the trial has no history of `metric`.

    Example:

    ```python
    oracle = ControllerOracle(objective="val_accuracy", max_trials=100,
                              reward_fn=nas2016_reward())
    ```
    """
    metric = _check_metric(metric)
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"`last` must be an integer >= 1. Received: last={last!r}")
    if (
        isinstance(power, bool)
        or not isinstance(power, (int, float))
        or not math.isfinite(power)
        or power <= 0
    ):
        raise ValueError(f"`power` must be a positive number. Received: power={power!r}")
    return _MetricReward("nas2016_reward", metric, last, power)


def nasnet_reward(metric="val_accuracy"):
    """The reward of Zoph et al. (2017, NASNet): `metric` at the end of the child's training.

    Args:
        metric: str, the name of the per-epoch metric (higher is better).

    Returns:
        A callable `trial -> float` (see `nas2016_reward` for its errors).

    Example:

    ```python
    oracle = ControllerOracle(objective="val_accuracy", max_trials=100,
                              reward_fn=nasnet_reward())
    ```
    """
    return _MetricReward("nasnet_reward", _check_metric(metric), 1, 1)
