"""`RewardOracle`: the base of the oracles that take rewards for architectures they did not
hand out as trials.

A weight-sharing estimator (ENAS-style: one trial trains shared weights, then scores many
architectures) asks a strategy for architectures with `sample_candidates(n)` and hands their
scores back with `add_rewards(ids, rewards)`; the final selection asks it for finalists with
`final_candidates(n)`. Estimators ask for this interface by type
(`isinstance(oracle, RewardOracle)`), never by `hasattr`. `ControllerOracle` and
`EvolutionOracle` derive from it.

The module also holds the library's one answer to KerasTuner's rule that a seed of 0 means
"no seed": `kept_seed` (an oracle's own draws keep the user's 0) and `shifted_seed` (what to
give KerasTuner's own oracles).
"""

import copy
import logging
import math

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from tuners.decisions import decision_values
from tuners.state_files import CheckedStateMixin
from tuners.trial_leases import DEFAULT_TRIAL_LEASE, TrialLeaseMixin
from tuners.values import candidate_rewards

__all__ = ["RewardOracle", "is_declared", "kept_seed", "shifted_seed"]

logger = logging.getLogger(__name__)

_ENDED = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)


def is_declared(hyperparameters, hp):
    """Whether `hyperparameters` (a `keras_tuner.HyperParameters`) declares `hp` already: a
    hyperparameter of the same name under the same conditions (KerasTuner's test)."""
    return any(
        other.name == hp.name and other.conditions == hp.conditions
        for other in hyperparameters.space
    )


def kept_seed(seed, oracle):
    """The seed of an oracle's own draws: `seed` as the user gave it, 0 included; for `None`,
    the one KerasTuner drew (`oracle.seed`).

    KerasTuner's oracles take a seed of 0, like `None`, for "no seed" and draw a random one
    into `seed` (`seed or random.randint(...)`). This function and `shifted_seed` are the
    library's one answer to that rule: its own oracles keep the user's 0 with `kept_seed`.

    Example:

    >>> import types
    >>> oracle = types.SimpleNamespace(seed=4321)  # as KerasTuner drew it
    >>> kept_seed(0, oracle), kept_seed(None, oracle)
    (0, 4321)
    """
    return seed if seed is not None else getattr(oracle, "seed", None)


def shifted_seed(seed):
    """The seed to give one of KerasTuner's own oracles (e.g. `RandomSearchOracle`) so that
    every seed is kept: `seed + 1` (KerasTuner takes 0 for "no seed", see `kept_seed`), or
    `None` for `None`.

    Example:

    >>> shifted_seed(0), shifted_seed(41), shifted_seed(None)
    (1, 42, None)
    """
    return None if seed is None else seed + 1


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive int. Received: n={n!r}")
    return int(n)


class RewardOracle(TrialLeaseMixin, CheckedStateMixin, keras_tuner.Oracle):
    """A KerasTuner `Oracle` that also takes rewards for architectures scored without trials.

    It keeps what such strategies share: the reward of a trial (its score, negated when the
    objective is minimised, or `reward_fn(trial)`), the checks of the space, the candidates
    awaiting a reward (ids `"c000001"`, ... unique across resumes), and the three calls of the
    weight-sharing protocol, each of which saves the oracle's state afterwards:
    `sample_candidates(n, record=True)`, `add_rewards(ids, rewards)` and
    `final_candidates(n)`. Its state is written whole and checksummed (see
    `tuners.state_files`), and a distributed search survives its processes (see
    `tuners.trial_leases`).

    The bases, in this order (the MRO): `TrialLeaseMixin` first decides whether a
    `create_trial`, `update_trial` or `end_trial` counts (a trial handed on, a late report, a
    worker told `IDLE`), then `CheckedStateMixin` records and saves what counts, then
    `keras_tuner.Oracle` does the rest.

    A subclass sets `_state_key` (the key of its own section of the oracle state) and
    implements `populate_space` and the hooks: `_get_own_state()` (that section, a JSON-able
    dict), `_set_own_state(own)` (restores it, and rebuilds what derives from it),
    `_draw_candidates(n, record)` (a list of `(record_entry, values)`),
    `_take_rewards(items)` (`items`: `(candidate_id, reward, record_entry)` tuples) and
    `_final_candidates(n)` (a list of values dicts); it may override `_check_hp(hp)` (by
    default a hyperparameter must be a finite decision: `tuners.decisions`) and
    `_save_companions()` (files its state names, written before `oracle.json`). The space
    is read through `_options()` and `_decisions()`; the seed of the strategy's own draws is
    `_kept_seed` (0 kept as 0: `kept_seed`).

    Args:
        objective: as for `keras_tuner.Oracle`.
        max_trials: int, the trial budget.
        hyperparameters: optional `HyperParameters` declaring (part of) the space.
        reward_fn: optional callable `trial -> float` giving the reward of a completed trial
            (higher is better).
        seed: int or None, as for `keras_tuner.Oracle`.
        allow_new_entries, tune_new_entries, max_retries_per_trial,
        max_consecutive_failed_trials: as for `keras_tuner.Oracle`.
        trial_lease: float (seconds) or None. In a distributed search, a trial whose worker
            has not reported for this long is handed to the next worker that asks, under
            its own id; its result counts once. Must exceed the longest trial (workers
            report at the start and end of a trial, and on each `update_trial`). Defaults
            to 3600 (KerasTuner's own RPC timeout); `None` keeps KerasTuner's behaviour
            (see `docs/distributed.md`).
        max_collisions: int >= 0. A draw of values already tried is drawn again, up to
            `max_collisions + 1` draws, before the nearest untried configuration is taken.
            Defaults to 20, as KerasTuner's own oracles.
        rescore_repeats: bool, hand out draws of values already tried as new trials (set by
            weight-sharing estimators: under shared weights a repeat is a new measurement).
            Defaults to False.

    Example:

    >>> import keras_tuner
    >>> from tuners.evolution import EvolutionOracle
    >>> hp = keras_tuner.HyperParameters()
    >>> _ = hp.Choice("a", [0, 1, 2])
    >>> oracle = EvolutionOracle(objective=keras_tuner.Objective("score", "max"),
    ...     hyperparameters=hp, population_size=2, sample_size=1, seed=0)
    >>> isinstance(oracle, RewardOracle)
    True
    >>> batch = oracle.sample_candidates(2)
    >>> [c["id"] for c in batch]
    ['c000001', 'c000002']
    >>> oracle.add_rewards([c["id"] for c in batch], [1.0, 2.0])
    >>> len(oracle.final_candidates(3))
    3
    """

    def __init__(
        self,
        objective=None,
        max_trials=None,
        hyperparameters=None,
        *,
        reward_fn=None,
        seed=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        trial_lease=DEFAULT_TRIAL_LEASE,
        max_collisions=20,
        rescore_repeats=False,
    ):
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self._init_trial_leases(trial_lease)
        self._init_checked_state(max_collisions)
        if reward_fn is not None and not callable(reward_fn):
            raise ValueError(
                f"`reward_fn` must be callable or None. Received: reward_fn={reward_fn!r}"
            )
        if not isinstance(rescore_repeats, bool):
            raise ValueError(
                "`rescore_repeats` must be True or False. "
                f"Received: rescore_repeats={rescore_repeats!r}"
            )
        self.reward_fn = reward_fn
        self.rescore_repeats = rescore_repeats
        self._candidates = {}  # candidate id -> the subclass's record, awaiting a reward
        self._candidate_count = 0
        self._defer_save = False
        # The seed of the strategy's own draws: the user's, 0 included (see `kept_seed`).
        self._kept_seed = kept_seed(seed, self)
        self._check_space(self.hyperparameters)

    # ----------------------------------------------------------------- the space
    def _decision_values(self, hp):
        """`tuners.decisions.decision_values(hp)`, its errors naming this oracle's class."""
        return decision_values(hp, type(self).__name__)

    def _check_hp(self, hp):
        """Raises `ValueError` for a hyperparameter the strategy cannot search: one that is not
        a finite decision (`tuners.decisions.decision_values`)."""
        self._decision_values(hp)

    def _options(self):
        """`[(hp, values or None)]` for the space, in its order (`None` for a `Fixed` one).

        Kept until the space changes (it only grows, or is replaced by a reload): the
        controller reads it for every configuration it looks at."""
        hyperparameters = self.hyperparameters
        size = len(hyperparameters.space)
        cached = getattr(self, "_options_cache", None)
        if cached is None or cached[0] is not hyperparameters or cached[1] != size:
            options = [(hp, self._decision_values(hp)) for hp in hyperparameters.space]
            self._options_cache = cached = (hyperparameters, size, options)
        return cached[2]

    def _decisions(self):
        """`[(name, values)]` of the space's decisions (the hyperparameters with two values
        or more), in its order."""
        return [
            (hp.name, values)
            for hp, values in self._options()
            if values is not None and len(values) > 1
        ]

    def _check_space(self, hyperparameters):
        for hp in hyperparameters.space:
            self._check_hp(hp)

    def update_space(self, hyperparameters):
        """Adds new hyperparameters to the space; refuses those the strategy cannot search."""
        if self.tune_new_entries:
            for hp in hyperparameters.space:
                if not is_declared(self.hyperparameters, hp):
                    self._check_hp(hp)
        super().update_space(hyperparameters)

    # ------------------------------------------------------------------- rewards
    def _reward_of(self, trial):
        """The trial's reward, or `None` when it failed or its reward is not finite."""
        if trial.status != trial_module.TrialStatus.COMPLETED:
            return None
        if self.reward_fn is not None:
            reward = float(self.reward_fn(trial))
        elif trial.score is None:
            return None
        else:
            reward = float(trial.score)
            if self.objective.direction == "min":
                reward = -reward
        if not math.isfinite(reward):
            self._non_finite_reward(trial, reward)
            return None
        return reward

    def _non_finite_reward(self, trial, reward):
        """Called when a completed trial's reward is not finite (it is then a failure)."""

    def _ended_trials(self, handled):
        """The ended (COMPLETED or FAILED) trials, in the order they ended, whose ids are not
        in `handled` (checked as each is reached, so the caller may add to it meanwhile)."""
        for trial_id in self.end_order:
            if trial_id in handled:
                continue
            trial = self.trials.get(trial_id)
            if trial is not None and trial.status in _ENDED:
                yield trial

    # ------------------------------------------------- rewards without trials
    def _draw_candidates(self, n, record, rng=None):
        raise NotImplementedError

    def _take_rewards(self, items):
        raise NotImplementedError

    def _final_candidates(self, n):
        raise NotImplementedError

    def _save_outside_trials(self):
        """Saves the state after a call outside trials (`sample_candidates`, ...)."""
        self.save()

    # ------------------------------------------------------------------ state
    def get_state(self):
        """KerasTuner's state, with the strategy's own under the key `_state_key`."""
        state = super().get_state()
        state[self._state_key] = self._get_own_state()
        return state

    def set_state(self, state):
        """Sets KerasTuner's state, then the strategy's own (when the state has one)."""
        super().set_state(state)
        own = state.get(self._state_key)
        if own is not None:
            self._set_own_state(own)

    def _get_own_state(self):
        raise NotImplementedError

    def _set_own_state(self, own):
        raise NotImplementedError

    def save(self):
        """Writes the subclass's companion files (`_save_companions`), then `oracle.json`,
        each whole and checksummed (see `tuners.state_files`); nothing while KerasTuner's own
        save inside `create_trial` / `end_trial` is deferred (the state is saved once, after)."""
        if self._defer_save:
            return
        self._save_companions()
        self._write_oracle_state(self.get_state())

    def _save_companions(self):
        """Writes the files the state names, before `oracle.json` (none by default)."""

    @property
    def recorded_candidates(self):
        """Candidates awaiting a reward: `{id: entry}`, a copy. The entry is the strategy's:
        `[decisions, sampling-time log-probability]` for `ControllerOracle`;
        `{"values", "parent", "mutation"}`, plus `"rescore"` (the member's id) for a
        re-score, for `EvolutionOracle`."""
        return copy.deepcopy(self._candidates)

    @keras_tuner.synchronized
    def sample_candidates(self, n, record=True, rng=None):
        """Draws n architectures from the strategy without creating trials.

        For weight-sharing estimators: e.g. one trial trains shared weights on architectures
        drawn with `record=False`, then scores architectures drawn with `record=True` and
        gives their scores to `add_rewards`. The oracle's state (with the random state) is
        saved afterwards, except after draws from the caller's `rng` that record nothing:
        those leave the state as it was.

        Args:
            n: int, how many architectures.
            record: bool. With `True` the oracle remembers each candidate until
                `add_rewards` names it; with `False` it does not (e.g. architectures
                sampled only to train shared weights).
            rng: optional `np.random.Generator` the strategy draws from instead of its own
                random state, which it leaves untouched. With `record=False`, such draws
                change nothing the oracle saves, so a caller that seeds `rng` from where it
                stands (e.g. the epoch of shared weights being trained) draws the same
                architectures again after a resume.

        Returns:
            A list of dicts `{"id": str, "values": {hp_name: value, ...}}` (values for every
            hyperparameter of the space, like a trial's). Ids (`"c000001"`, ...) are unique
            within the project, across resumes; draws from `rng` that record nothing have
            the id `None`.

        Example:

        ```python
        candidates = oracle.sample_candidates(8)
        scores = [evaluate(c["values"]) for c in candidates]  # higher is better
        oracle.add_rewards([c["id"] for c in candidates], scores)
        ```
        """
        n = _check_count(n)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"`rng` must be a numpy.random.Generator or None. Received: rng={rng!r}"
            )
        drawn = self._draw_candidates(n, record, rng)
        if rng is not None and not record:
            return [{"id": None, "values": values} for _, values in drawn]
        candidates = []
        for entry, values in drawn:
            self._candidate_count += 1
            candidate_id = f"c{self._candidate_count:06d}"
            if record:
                self._candidates[candidate_id] = entry
            candidates.append({"id": candidate_id, "values": values})
        self._save_outside_trials()
        return candidates

    @keras_tuner.synchronized
    def add_rewards(self, candidate_ids, rewards):
        """Feeds rewards for candidates returned by `sample_candidates(record=True)`.

        The oracle's state is saved afterwards.

        Args:
            candidate_ids: ids from `sample_candidates(..., record=True)`, each once and not
                rewarded yet (a single id may be given as a string).
            rewards: finite floats, one per id, higher is better (the caller has already
                applied the objective's direction).

        Raises:
            ValueError: for unknown, already rewarded or repeated ids, or rewards that are not
                one finite number per id; nothing is recorded then.
        """
        ids, values = candidate_rewards(candidate_ids, rewards, self._candidates)
        self._take_rewards(
            [(c, float(r), self._candidates.pop(c)) for c, r in zip(ids, values)]
        )
        self._save_outside_trials()

    @keras_tuner.synchronized
    def discard_candidates(self, candidate_ids):
        """Forgets recorded candidates that will get no reward.

        E.g. candidates an estimator drew and was killed before scoring: its rerun draws
        them again (from the same seeded `rng`) and discards the ones it left behind, so
        that they neither wait for a reward nor steer later draws. The state is saved
        afterwards.

        Args:
            candidate_ids: ids from `sample_candidates(..., record=True)` not rewarded yet.

        Raises:
            ValueError: for an id that is not awaiting a reward; nothing is discarded then.
        """
        ids = [candidate_ids] if isinstance(candidate_ids, str) else list(candidate_ids)
        unknown = [c for c in ids if c not in self._candidates]
        if unknown:
            raise ValueError(
                "`candidate_ids` must name candidates awaiting a reward. "
                f"Received: candidate_ids={unknown!r}"
            )
        for candidate_id in ids:
            del self._candidates[candidate_id]
        self._save_outside_trials()

    @keras_tuner.synchronized
    def final_candidates(self, n):
        """Architectures for the final selection: at most `n` distinct values dicts.

        Nothing is recorded and no reward is expected; the draws use the oracle's seeded
        random state, which is saved afterwards (as `sample_candidates` does), so a resumed
        search draws the same ones.

        Args:
            n: positive int, how many.

        Returns:
            A list of at most `n` dicts `{hp_name: value, ...}` (every hyperparameter of the
            space), all different.
        """
        finalists = self._final_candidates(_check_count(n))
        self._save_outside_trials()
        return finalists
