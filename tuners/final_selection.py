"""The final pick of a search whose scores are estimates: re-rank, then train the best few.

Under weight sharing every trial's score is an estimate made with the weights of its own
epoch, so the best *trial* is mostly one of the last, and a reward measured on one
minibatch is noisy. `FinalSelection` ends such a search as NAS papers do (ENAS samples from
the final policy and keeps the best on a validation batch; DARTS and the one-shot papers
retrain the finalists):

1. propose: `num_samples` architectures from the final policy or population
   (`oracle.final_candidates` of a `RewardOracle`, else uniform draws), plus the `top_k`
   best trials and rewarded candidates seen;
2. re-rank: score every proposal with the *final* shared weights, all on the same validation
   batches (`SharedWeights.score_architectures`): the weight-sharing estimate;
3. train the best `num_standalone` standalone (built and trained from scratch, the tuner's
   hypermodel, on the search's training data) for `standalone_epochs` each and score them on
   its validation data: the standalone score. The best standalone score wins. With `halving`,
   by successive halving instead (as KerasTuner's `Hyperband`): all of them for a short
   training, then the best `1 / halving` of them again for `halving` times as long, until the
   last rung, of `standalone_epochs`; the best score of the last rung wins.

The defaults (9 finalists, 1 epoch each) come from `benchmarks/selection_policy.py`, which
replays policies on scores measured against the cell benchmark: for the same 9 child-epochs,
9 candidates trained 1 epoch picked cells at the 70th to 78th percentile of the benchmark, 3
trained 3 epochs (the previous default) at the 64th to 76th, and successive halving (9 x 1,
then 3 x 3: twice the cost) at the 63rd to 67th. A pick from more candidates gains more than
a more precise score of fewer (`benchmarks/RESULTS.md`).

With fresh weights (`FreshWeights`) or children trained outright, step 2 is skipped: the
trials' scores rank the proposals (the best trials). Each phase is written to
`final_selection.json` in the project directory as it ends, so a search killed inside the
selection resumes it without redoing finished parts.
"""

import json
import math
import os
import types

import keras_tuner
import numpy as np

from nasnet_tf.io_utils import write_json
from tuners.estimation import Child, TrainAndEvaluate, trial_seed
from tuners.reward_oracle import RewardOracle
from tuners.weight_sharing import SharedWeights, read_json_or_none

__all__ = ["FinalSelection"]

FILE_NAME = "final_selection.json"


def _key(values):
    return json.dumps(values, sort_keys=True)


class FinalSelection:
    """Ends a weight-sharing search with a re-ranking and a standalone check of the best few.

    `NASTuner.search` runs it after the last trial when its estimator is a
    `SharedWeights` or a `FreshWeights` (pass `final_selection=None` to skip it, or an
    instance to change the settings); `tuner.final_ranking` and `get_best_genotypes()` then
    give its ranking.

    Args:
        num_samples: architectures proposed by the final policy or population.
        top_k: the best trials and the best rewarded candidates added to them.
        num_standalone: how many of the best (by weight-sharing estimate) are trained
            standalone (in the first rung, with `halving`).
        standalone_epochs: epochs of each standalone training (of the last rung's, with
            `halving`; a rung before it trains `halving` times fewer, at least 1).
        halving: None (default): one rung, every finalist trained `standalone_epochs`. Or
            the successive-halving factor (an integer >= 2): each rung keeps the best
            `ceil(n / halving)` of the previous one, until one candidate is left (the last
            rung has at least 2).
        validation_batches: validation minibatches for the re-ranking (None: all of them).
        seed: int >= 0, seeds the standalone trainings.

    Example:

    ```python
    tuner = NASTuner(space, estimator=SharedWeights(), max_trials=30,
                     final_selection=FinalSelection(num_samples=100, num_standalone=3))
    tuner.search(x, y, validation_data=(x_val, y_val), batch_size=64)
    print(tuner.final_ranking[0])  # {"genotype", "standalone_val_accuracy", ...}
    ```
    """

    def __init__(self, num_samples=100, top_k=10, num_standalone=9, standalone_epochs=1,
                 halving=None, validation_batches=None, seed=0):
        for value, name, low in ((num_samples, "num_samples", 0), (top_k, "top_k", 0),
                                 (num_standalone, "num_standalone", 0),
                                 (standalone_epochs, "standalone_epochs", 1), (seed, "seed", 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
        if validation_batches is not None and (
            isinstance(validation_batches, bool) or not isinstance(validation_batches, int)
            or validation_batches < 1
        ):
            raise ValueError("`validation_batches` must be an integer >= 1 or None. "
                             f"Received: validation_batches={validation_batches!r}")
        if halving is not None and (
            isinstance(halving, bool) or not isinstance(halving, int) or halving < 2
        ):
            raise ValueError("`halving` must be an integer >= 2 or None. "
                             f"Received: halving={halving!r}")
        if num_samples + top_k == 0:
            raise ValueError("`num_samples` and `top_k` cannot both be 0: nothing to select.")
        self.num_samples = num_samples
        self.top_k = top_k
        self.num_standalone = num_standalone
        self.standalone_epochs = standalone_epochs
        self.halving = halving
        self.validation_batches = validation_batches
        self.seed = seed

    def get_config(self):
        return {"num_samples": self.num_samples, "top_k": self.top_k,
                "num_standalone": self.num_standalone,
                "standalone_epochs": self.standalone_epochs, "halving": self.halving,
                "validation_batches": self.validation_batches, "seed": self.seed}

    def rungs(self):
        """The standalone phase's rungs: `[(candidates, epochs), ...]`, first rung first.

        Example:

        >>> FinalSelection(num_standalone=9, standalone_epochs=3, halving=3).rungs()
        [(9, 1), (3, 3)]
        >>> FinalSelection(num_standalone=3, standalone_epochs=3, halving=None).rungs()
        [(3, 3)]
        """
        sizes = [self.num_standalone]
        if self.halving is not None:
            while sizes[-1] > 1 and math.ceil(sizes[-1] / self.halving) > 1:
                sizes.append(math.ceil(sizes[-1] / self.halving))
        last = len(sizes) - 1
        return [(n, max(1, round(self.standalone_epochs / self.halving ** (last - r))))
                if self.halving is not None else (n, self.standalone_epochs)
                for r, n in enumerate(sizes)]

    # -- the steps -----------------------------------------------------------------------------
    def _proposals(self, tuner, estimator):
        oracle = tuner.oracle
        completed = [t for t in oracle.trials.values()
                     if t.status == "COMPLETED" and t.score is not None]
        direction = -1.0 if oracle.objective.direction == "max" else 1.0
        completed.sort(key=lambda t: direction * t.score)
        proposals = []
        shared = isinstance(estimator, SharedWeights)
        if shared and self.num_samples:
            if isinstance(oracle, RewardOracle):
                proposals += [dict(v) for v in oracle.final_candidates(self.num_samples)]
            else:
                proposals += [c["values"] for c in estimator._uniform(
                    types.SimpleNamespace(hypermodel=tuner.hypermodel), self.num_samples)]
        proposals += [dict(t.hyperparameters.values) for t in completed[: self.top_k]]
        if shared:
            ranked = sorted(estimator.candidates, key=lambda c: -c[1])
            proposals += [dict(c[0]) for c in ranked[: self.top_k]]
        unique, seen = [], set()
        for values in proposals:
            if _key(values) not in seen:
                seen.add(_key(values))
                unique.append(values)
        trial_scores = {}
        for t in completed:
            trial_scores.setdefault(_key(t.hyperparameters.values), float(t.score))
        return unique, trial_scores

    def run(self, tuner, *fit_args, **fit_kwargs):
        """Runs (or resumes) the selection of `tuner`'s finished search; returns the ranking.

        Args:
            tuner: the `NASTuner` whose search ended.
            *fit_args, **fit_kwargs: the `search()` arguments (training data,
                `validation_data`, `batch_size`, ...).

        Returns:
            A list of dicts, best first: `values`, `genotype` (its dict), `estimate` (the
            weight-sharing or trial score, with `estimate_kind` saying which),
            `standalone_val_accuracy` (the score of its longest standalone training, None
            for those not trained), `standalone_epochs` (that training's epochs),
            `standalone_scores` (`{epochs: score}` of every rung it reached) and `score`
            (the standalone score where there is one, else the estimate). Those of the last
            rung come first.
        """
        estimator = tuner.estimator
        if isinstance(estimator, SharedWeights):
            estimator.prepare(tuner.hypermodel)  # a resumed process may have run no trial
        path = os.path.join(tuner.project_dir, FILE_NAME)
        completed = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
        stamp = {"completed_trials": completed, "config": self.get_config()}
        state = read_json_or_none(path)
        if state is None or state.get("stamp") != stamp:
            state = {"stamp": stamp}
        save = lambda: write_json(path, state)  # noqa: E731
        shared = isinstance(estimator, SharedWeights)
        if "proposals" not in state:
            proposals, trial_scores = self._proposals(tuner, estimator)
            state.update(proposals=proposals, trial_scores=trial_scores)
            save()
        proposals = state["proposals"]
        decode = tuner.hypermodel.decode
        if "estimates" not in state:
            if shared:
                validation = fit_kwargs.get("validation_data")
                train = (fit_args[0], fit_args[1]) if len(fit_args) > 1 else (
                    fit_args[0] if fit_args else fit_kwargs.get("x"))
                if isinstance(train, tuple) and train[1] is None:
                    train = train[0]
                scores = estimator.score_architectures(
                    [decode(v) for v in proposals], validation,
                    batch_size=fit_kwargs.get("batch_size"),
                    num_batches=self.validation_batches, recalibration_data=train)
                state["estimates"] = [s["val_accuracy"] for s in scores]
                state["estimate_kind"] = "weight-sharing val_accuracy (final weights)"
            else:
                state["estimates"] = [state["trial_scores"].get(_key(v), math.nan)
                                      for v in proposals]
                state["estimate_kind"] = f"trial {tuner.oracle.objective.name}"
            save()
        estimates = state["estimates"]
        order = sorted(range(len(proposals)),
                       key=lambda i: (-_finite(estimates[i]), i))
        # Successive halving: {str(proposal index): {str(epochs): standalone score}}.
        standalone = state.setdefault("standalone", {})
        rank_of = {i: rank for rank, i in enumerate(order)}
        finalists, previous = order[: self.num_standalone], None
        for size, epochs in self.rungs():
            if previous is not None:
                finalists = sorted(finalists, key=lambda i: (
                    -_finite(standalone[str(i)][str(previous)]), rank_of[i]))[:size]
            for i in finalists:
                scores = standalone.setdefault(str(i), {})
                if str(epochs) not in scores:
                    scores[str(epochs)] = self._train_standalone(
                        tuner, proposals[i], rank_of[i], epochs, fit_args, fit_kwargs)
                    save()
            previous = epochs
        ranking = []
        for i in order:
            scores = {int(e): v for e, v in standalone.get(str(i), {}).items()}
            longest = max(scores, default=None)
            alone = None if longest is None else scores[longest]
            ranking.append({
                "values": proposals[i], "genotype": decode(proposals[i]).to_dict(),
                "estimate": estimates[i], "estimate_kind": state["estimate_kind"],
                "standalone_val_accuracy": alone,
                "standalone_epochs": longest,
                "standalone_scores": {str(e): scores[e] for e in sorted(scores)},
                "score": alone if alone is not None else estimates[i],
            })
        # The furthest rung first (its score is the longest training's), then by score.
        ranking.sort(key=lambda r: (r["standalone_val_accuracy"] is None,
                                    -(r["standalone_epochs"] or 0), -_finite(r["score"])))
        state["ranking"] = ranking
        save()
        return ranking

    def _train_standalone(self, tuner, values, rank, epochs, fit_args, fit_kwargs):
        hypermodel = tuner.hypermodel
        hp = keras_tuner.HyperParameters()
        hypermodel.declare_hyperparameters(hp)
        hp.values.update(values)
        child = Child(
            architecture=hypermodel.decode(values), hyperparameters=hp,
            build=lambda: hypermodel.build(hp), trial_id=f"final{rank}",
            directory=os.path.join(tuner.project_dir, f"final_{rank}_{epochs}epochs"),
            hypermodel=hypermodel)
        kwargs = dict(fit_kwargs, verbose=0)
        trainer = TrainAndEvaluate(fit_overrides={"epochs": epochs},
                                   seed=trial_seed(self.seed, rank))
        history = trainer.estimate(child, *fit_args, **kwargs)
        values_seen = history.history.get("val_accuracy") if hasattr(history, "history") else None
        if not values_seen:
            raise ValueError("The standalone training reported no `val_accuracy`: pass "
                             "`validation_data=` to `search()`.")
        return float(values_seen[-1])


def _finite(value):
    return value if value is not None and np.isfinite(value) else -math.inf


