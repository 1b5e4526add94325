"""Search events: the one interface through which a search's outputs follow its trials.

`NASTuner(..., listeners=[...])` calls each `SearchListener`, in list order, at the events of
its `search()`. `tuners.SearchRun` gives the tuner its own listeners (the per-trial table,
`estimation.json`, the HTML report, TensorBoard: `tuners.search_outputs`), then the user's.
"""

__all__ = ["SearchListener", "check_listeners"]


class SearchListener:
    """Base class: receives the events of a `NASTuner` search. Override the hooks needed;
    each does nothing by default.

    The hooks, in the order a search calls them:

    - `search_began(tuner)`: a `search()` call starts (a resumed search's too), before any
      trial.
    - `trial_began(tuner, trial)`: a trial (`keras_tuner.engine.trial.Trial`) starts.
    - `child_built(tuner, trial, model)`: the trial's child was built as a standalone Keras
      model (by estimators that build one: `TrainAndEvaluate`; the super-network estimators
      never do).
    - `trial_ended(tuner, trial)`: the trial is scored and saved (`trial.status`,
      `trial.score`), and the oracle has taken its reward.
    - `search_ended(tuner)`: after the last trial of the `search()` call and the final
      selection, when one runs (`tuner.final_ranking`); also when a time budget ended it
      (`tuner.stopped_by_time_budget`).

    Example:

    ```python
    class Scores(SearchListener):
        def __init__(self):
            self.scores = {}

        def trial_ended(self, tuner, trial):
            self.scores[trial.trial_id] = trial.score

    scores = Scores()
    tuner = NASTuner(hypermodel, max_trials=2, seed=0, listeners=[scores], directory="/tmp/nas")
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    scores.scores  # {'0': 0.25, '1': 0.5}
    ```
    """

    def search_began(self, tuner):
        """A `search()` call starts."""

    def trial_began(self, tuner, trial):
        """`trial` starts."""

    def child_built(self, tuner, trial, model):
        """The child of `trial` was built as `model` (a compiled Keras model)."""

    def trial_ended(self, tuner, trial):
        """`trial` ended: scored, saved and rewarded."""

    def search_ended(self, tuner):
        """The `search()` call ended (after the final selection, when one runs)."""


def check_listeners(listeners):
    """`listeners` as a list of `SearchListener`s (None: none); anything else is refused.

    Example:

    >>> check_listeners(None), len(check_listeners([SearchListener()]))
    ([], 1)
    """
    if listeners is None:
        return []
    if isinstance(listeners, SearchListener) or not isinstance(listeners, (list, tuple)) or not (
            all(isinstance(x, SearchListener) for x in listeners)):
        raise ValueError(
            "`listeners` must be a list of `tuners.SearchListener` instances (or None). "
            f"Received: listeners={listeners!r}"
        )
    return list(listeners)
