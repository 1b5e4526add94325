"""`EvolutionOracle`: regularized (aging) evolution as a KerasTuner `Oracle`.

Real et al. 2019, "Regularized Evolution for Image Classifier Architecture Search" (AmoebaNet),
Algorithm 1: a population of `population_size` architectures, first filled with uniform random
samples; then each new architecture is a one-decision mutation of the winner of a tournament
among `sample_size` members drawn at random, and each evaluated architecture joins the
population while the OLDEST member dies. Aging instead of killing the worst is the
regularization: a member survives only through descendants that keep scoring well, which
resists architectures that scored well once by luck.

Everything (population, history, pending trials and candidates, the NumPy random state) is
JSON inside `oracle.json`, written whole (temporary file, then `os.replace`) with a `.sha256`
checksum sidecar, as is each `trial.json`, so a search killed at any moment reloads a
consistent state; `oracle.prev.json` keeps the state saved before it, from which a search
whose `oracle.json` is damaged resumes, with one warning (see `tuners.state_files`).
"""

import logging

import numpy as np
from keras_tuner.engine import trial as trial_module

from nasnet_tf.validators import positive_int
from tuners.decisions import index_of, nearest_untried
from tuners.nasnet_space import parse_hp_name
from tuners.reward_oracle import RewardOracle
from tuners.values import values_hash

__all__ = ["EvolutionOracle", "mutation_kind"]

logger = logging.getLogger(__name__)

_STATE_KEY = "evolution_oracle"
_TMP_PREFIX = ".evolution_oracle_tmp_"
_FIELD_KIND = {"input_a": "input", "input_b": "input", "op_a": "op", "op_b": "op",
               "combine": "op"}  # fmt: skip
_KINDS = ("input", "op", "hyperparameter")


def mutation_kind(name):
    """The kind of mutation that changes hyperparameter `name`.

    Args:
        name: a hyperparameter name.

    Returns:
        `"input"` for a NASNet cell decision `input_a` / `input_b` (the paper's hidden state
        mutation), `"op"` for `op_a` / `op_b` / `combine` (its op mutation), and
        `"hyperparameter"` for any other name.

    Example:

    >>> mutation_kind("reduction_b1_input_b"), mutation_kind("normal_b0_combine")
    ('input', 'op')
    >>> mutation_kind("learning_rate")
    'hyperparameter'
    """
    parsed = parse_hp_name(name)
    return _FIELD_KIND[parsed[2]] if parsed else "hyperparameter"


class EvolutionOracle(RewardOracle):
    """A KerasTuner `Oracle` running regularized (aging) evolution (Real et al. 2019).

    Drop it in wherever a KerasTuner oracle goes (`keras_tuner.Tuner(oracle=...)`,
    `NASNetTuner(oracle=...)`). While the population holds fewer than `population_size`
    members, a trial is a uniform random sample of the space (in a sequential search: the
    first `population_size` trials). After that, `sample_size` members are drawn at random
    (without replacement), the one with the highest reward is the parent, and the trial is
    the parent with ONE decision changed to another valid value. When a trial ends it joins
    the population with its reward and, once the population exceeds `population_size`, the
    OLDEST member dies, however good it is.

    Mutations. On the NASNet cell space (`tuners.nasnet_space`) a mutation is, with equal
    chance, an input mutation (`input_a` / `input_b` of one block of one cell, the paper's
    hidden state mutation) or an op mutation (`op_a` / `op_b`, or `combine` when it is a
    decision), on a decision drawn uniformly among those of that kind. On any other space
    (`Choice`, `Boolean`, stepped `Int` / `Float`, as `ControllerOracle` accepts) one tunable
    hyperparameter is changed; in a NASNet space with extra hyperparameters (e.g. a learning
    rate) those are a third kind, drawn as often as each of the other two. With probability
    `identity_prob` the child is the parent unchanged (the paper's identity mutation; it
    re-evaluates the parent, which KerasTuner then runs again as a duplicate trial, hence
    the default 0).

    Repeats. With `rescore_repeats=False` (the default: a child trained from scratch would
    only score the same) a mutation that gives a configuration already tried is drawn again
    (`max_collisions + 1`, 21 draws), then a random sample is tried (21 draws); when all of
    those were tried too, the trial is an untried configuration nearest (fewest decisions
    changed) to the last random sample, drawn at random among the nearest. So a budgeted
    search stops before `max_trials` only when every configuration of the space was tried.
    With `rescore_repeats=True` (set by weight-sharing estimators: under shared weights a
    repeat is a new measurement) the first child drawn is the trial, tried or not.

    Rewards. A completed trial's reward is its score (negated when the objective is
    minimised), or `reward_fn(trial)` if given. A FAILED trial (it raised, or its objective
    was NaN, once its `max_retries_per_trial` are spent), or one whose reward is not finite,
    does NOT join the population, and the search goes on (up to KerasTuner's
    `max_consecutive_failed_trials`). `history` lists every member that ever joined.

    Defaults. The paper used P=100, S=25 for 20,000 models. For searches of 50-500 trials,
    P=100 would leave nothing but the random phase; P=20 spends the first 20 trials (4-40% of
    such a budget) on random samples, then evolves for the rest, and S=5 keeps the paper's
    selection pressure (S/P = 1/4): the winner is on average in the top ~17% of the
    population, while weaker members still get picked now and then.

    Weight sharing. An estimator that trains shared weights needs no trials per child: it
    calls `sample_candidates(n)` to draw architectures and `add_rewards(ids, rewards)` to
    hand their rewards back. Once the population is full, a batch holds at most
    `children_per_batch` new children, which join the population as trials would (the oldest
    die); its other candidates re-score living members (the least recently scored first),
    whose rewards are then replaced while their ages stay: the shared weights have changed
    since they were scored, and aging still works when a batch is as large as the population.

    Resuming. Its state is saved with the oracle, so a search killed at any moment and
    restarted with `overwrite=False` goes on with the same population and random state: the
    trial that was running is run again under its own id, a trial that had ended but not yet
    joined joins on reload, and ids continue. A damaged `oracle.json` is set aside and the
    search resumes from the state saved before it, with one warning, or stops with a one-line
    `tuners.state_files.SearchStateError` when there is none (see `tuners.state_files`).

    Args:
        objective: as for `keras_tuner.Oracle`.
        max_trials: int, the trial budget.
        hyperparameters: optional `HyperParameters` declaring (part of) the space.
        population_size: int, P, the members kept alive. Defaults to 20.
        sample_size: int, S, the members in each tournament, at most `population_size`.
            Defaults to 5.
        identity_prob: float in [0, 1), the chance that a child is its parent unchanged.
            Defaults to 0.0.
        children_per_batch: int, the most new children in one `sample_candidates(n)` batch
            once the population is full; the rest of the batch re-scores members. Defaults
            to `max(1, population_size // 4)`.
        **kwargs: the arguments of `tuners.reward_oracle.RewardOracle`: `reward_fn`
            (optional callable `trial -> float` giving the reward of a completed trial,
            higher is better), `seed` (int >= 0 or None, seeds the evolution's
            `np.random.default_rng`; 0 is kept as 0), `rescore_repeats` (bool, hand out
            children of values already tried as new trials, see "Repeats" above; defaults to
            False), `allow_new_entries`, `tune_new_entries`, `max_retries_per_trial`,
            `max_consecutive_failed_trials`, `trial_lease`, `max_collisions`.

    Example:

    ```python
    from tuners import NASNetTuner

    oracle = EvolutionOracle(objective="val_accuracy", max_trials=40, population_size=8,
                             sample_size=2, seed=0)
    tuner = NASNetTuner(oracle=oracle, num_blocks=2, num_cells=1, penultimate_filters=24,
                        input_shape=(8, 8, 3), classes=4, directory="/tmp/nas_evolution",
                        overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    print([m["id"] for m in oracle.population], oracle.history[-1]["mutation"])
    print(tuner.get_best_genotypes(1)[0])
    ```
    """

    def __init__(self, objective=None, max_trials=None, hyperparameters=None, *,
                 population_size=20, sample_size=5, identity_prob=0.0,
                 children_per_batch=None, **kwargs):
        super().__init__(
            objective=objective, max_trials=max_trials, hyperparameters=hyperparameters, **kwargs
        )
        positive_int(population_size, "population_size")
        positive_int(sample_size, "sample_size")
        if sample_size > population_size:
            raise ValueError(
                "`sample_size` must be at most `population_size` (a tournament draws its "
                f"members from the population). Received: sample_size={sample_size} and "
                f"population_size={population_size}"
            )
        if (
            isinstance(identity_prob, bool)
            or not isinstance(identity_prob, (int, float))
            or not 0.0 <= identity_prob < 1.0
        ):
            raise ValueError(
                "`identity_prob` must be a number in [0, 1). "
                f"Received: identity_prob={identity_prob!r}"
            )
        seed = self._kept_seed  # the user's (KerasTuner's draw for None: an int >= 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"`seed` must be an int >= 0 or None. Received: seed={seed!r}")
        if children_per_batch is None:
            children_per_batch = max(1, population_size // 4)
        positive_int(children_per_batch, "children_per_batch")
        self.children_per_batch = children_per_batch
        self.population_size = population_size
        self.sample_size = sample_size
        self.identity_prob = float(identity_prob)
        self._evolution_seed = seed
        self._rng = np.random.default_rng(self._evolution_seed)
        self._population = []  # [{"id", "reward", "values", "scored"}], oldest first
        self._history = []  # [{"id", "reward", "parent", "mutation", "source"}], in order
        self._pending_trials = {}  # trial_id -> [parent_id, mutation]
        self._pending_values = {}  # trial_id -> values, to run it again if its file is lost
        # `_candidates`: candidate_id -> {"values", "parent", "mutation"} (+ "rescore").
        self._added = set()  # ended trial ids already handled (joined or failed)

    # ------------------------------------------------------------- sampling
    def _random_sample(self):
        values = {}
        for hp, options in self._options():
            if options is None:
                values[hp.name] = hp.value
            elif len(options) == 1:
                values[hp.name] = options[0]
            else:
                values[hp.name] = options[int(self._rng.integers(len(options)))]
        return values

    def _complete(self, values):
        """`values` restricted to the current space, defaults filling entries added since."""
        complete = {}
        for hp, options in self._options():
            if hp.name in values:
                complete[hp.name] = values[hp.name]
            elif options is None:
                complete[hp.name] = hp.value
            else:
                complete[hp.name] = hp.default if hp.default in options else options[0]
        return complete

    def _mutate(self, parent_values):
        """(child values, mutation), or None when the space has no decision to change."""
        values = self._complete(parent_values)
        if self.identity_prob and self._rng.random() < self.identity_prob:
            return values, {"kind": "identity"}
        groups = {}
        for name, options in self._decisions():
            groups.setdefault(mutation_kind(name), []).append((name, options))
        kinds = [kind for kind in _KINDS if kind in groups]
        if not kinds:
            return None
        kind = kinds[int(self._rng.integers(len(kinds)))]
        name, options = groups[kind][int(self._rng.integers(len(groups[kind])))]
        old = values[name]
        current = index_of(options, old)
        if current is None:
            new = options[int(self._rng.integers(len(options)))]
        else:
            index = int(self._rng.integers(len(options) - 1))
            new = options[index + 1 if index >= current else index]
        values[name] = new
        return values, {"kind": kind, "name": name, "old": old, "new": new}

    def _tournament(self):
        """The best (highest reward; the first drawn among equals) of `sample_size` members
        drawn at random without replacement."""
        drawn = self._rng.choice(len(self._population), size=self.sample_size, replace=False)
        sample = [self._population[int(i)] for i in drawn]
        return max(sample, key=lambda member: member["reward"])

    def _draw(self, taken=None):
        """(values, parent_id, mutation) of the next architecture, or None.

        A child of a tournament winner once the population is full, else a random sample.
        With `taken` (a set of `values_hash`es) the architecture's hash is not in it: after
        the collision draws, an untried configuration nearest the last random sample; None
        when every configuration of the space is taken.
        """
        def is_new(values):
            return taken is None or values_hash(values) not in taken

        tries = self.max_collisions + 1
        if len(self._population) >= self.population_size:
            for _ in range(tries):
                parent = self._tournament()
                mutated = self._mutate(parent["values"])
                if mutated is None:
                    break
                values, mutation = mutated
                if mutation["kind"] == "identity" or is_new(values):
                    return values, parent["id"], mutation
        for _ in range(tries):
            values = self._random_sample()
            if is_new(values):
                return values, None, None
        values = self._nearest_new(values, is_new)
        return None if values is None else (values, None, None)

    def _nearest_new(self, start, is_new):
        """A configuration for which `is_new` holds, drawn among those nearest to `start`
        (`tuners.decisions.nearest_untried`), or None when there is none in the space."""
        base = self._complete(start)
        tunable = self._decisions()
        origin = [index_of(options, base[name]) for name, options in tunable]
        origin = [0 if d is None else d for d in origin]  # a value the space no longer has

        def values_of(decisions):
            values = dict(base)
            values.update({name: options[d] for (name, options), d in zip(tunable, decisions)})
            return values

        found = nearest_untried(
            origin, [len(options) for _, options in tunable], lambda d: is_new(values_of(d))
        )
        if not found:
            return None
        return values_of(found[int(self._rng.integers(len(found)))])

    def populate_space(self, trial_id):
        """A random sample or a mutated tournament winner (`RUNNING`), or `STOPPED` once every
        configuration of the space was tried (see "Repeats" in the class docstring)."""
        self._add_ended_trials()
        drawn = self._draw(None if self.rescore_repeats else self.tried_hashes())
        if drawn is None:
            logger.info(
                "EvolutionOracle: every configuration of the space was tried; stopping the "
                "search."
            )
            self.save()  # keep the random state `create_trial` will not save
            return {"status": trial_module.TrialStatus.STOPPED, "values": None}
        values, parent, mutation = drawn
        self._pending_trials[trial_id] = [parent, mutation]
        self._pending_values[trial_id] = dict(values)
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    # ------------------------------------------------------------ population
    def _join(self, member_id, reward, values, parent, mutation, source):
        self._population.append(
            {"id": member_id, "reward": reward, "values": dict(values),
             "scored": len(self._history)}
        )  # fmt: skip
        self._history.append(
            {"id": member_id, "reward": reward, "parent": parent, "mutation": mutation,
             "source": source}
        )  # fmt: skip
        while len(self._population) > self.population_size:
            self._population.pop(0)  # aging: the oldest dies, not the worst

    def _non_finite_reward(self, trial, reward):
        logger.warning(
            "EvolutionOracle: trial %s has reward %s; it does not join the population.",
            trial.trial_id,
            reward,
        )

    def _add_ended_trials(self):
        """Adds every ended trial not handled yet (e.g. ended just before a kill)."""
        for trial in self._ended_trials(self._added):
            trial_id = trial.trial_id
            self._added.add(trial_id)
            parent, mutation = self._pending_trials.pop(trial_id, (None, None))
            self._pending_values.pop(trial_id, None)
            reward = self._reward_of(trial)
            if reward is not None:
                self._join(
                    trial_id, reward, trial.hyperparameters.values, parent, mutation, "trial"
                )

    def _take_ended_trials(self):
        self._add_ended_trials()

    # ------------------------------------------------------- weight sharing
    def _rescore_order(self, n):
        """`n` living members to re-score: the least recently scored first, going round the
        population again when `n` exceeds it."""
        order = sorted(
            range(len(self._population)),
            key=lambda i: (self._population[i].get("scored", -1), i),
        )
        return [self._population[order[i % len(order)]] for i in range(n)]

    def _draw_candidates(self, n, record, rng=None):
        """Random samples while the population is not full; once it is, with `record=True`, at
        most `children_per_batch` mutated children of tournament winners, the other
        candidates being re-scores of living members (their values; the least recently
        scored first): `add_rewards` replaces such a member's reward and leaves its age. With
        `record=False` every candidate is a child (or random sample), as for trials. A child
        that repeats a trial, a member or a pending candidate is drawn again as in
        `populate_space`, and taken anyway when the space has nothing new (candidates are
        cheap to re-score, and there is no trial to stop). The children come first; a
        recorded candidate keeps `{"values", "parent", "mutation"}`, plus `"rescore"` (the
        member's id) for a re-score.

        Example:

        ```python
        oracle = EvolutionOracle(objective="score", population_size=8, sample_size=2)
        batch = oracle.sample_candidates(8)  # once 8 members joined: 2 children, 6 re-scores
        oracle.add_rewards([c["id"] for c in batch], [evaluate(c["values"]) for c in batch])
        ```
        """
        if not isinstance(record, bool):
            raise ValueError(f"`record` must be a bool. Received: record={record!r}")
        if rng is None:
            return self._draw_batch(n, record)
        own, self._rng = self._rng, rng  # the caller's generator, for this call only
        try:
            return self._draw_batch(n, record)
        finally:
            self._rng = own

    def _draw_batch(self, n, record):
        self._add_ended_trials()
        children = n
        if record and len(self._population) >= self.population_size:
            children = min(n, self.children_per_batch)
        taken = self.tried_hashes()
        taken.update(values_hash(m["values"]) for m in self._population)
        taken.update(values_hash(c["values"]) for c in self._candidates.values())
        batch = []
        for _ in range(children):
            drawn = self._draw(taken) or self._draw()
            taken.add(values_hash(drawn[0]))
            batch.append({"values": drawn[0], "parent": drawn[1], "mutation": drawn[2]})
        for member in self._rescore_order(n - children):
            batch.append({"values": dict(member["values"]), "parent": None, "mutation": None,
                          "rescore": member["id"]})  # fmt: skip
        return [(candidate, dict(candidate["values"])) for candidate in batch]

    def _take_rewards(self, items):
        """Children join the population (aging applies), re-scores replace their member's
        reward.

        The re-scores of a call are applied first, in order, each replacing the reward of its
        member (if still alive) and leaving its place in the population; then the children
        join at the young end, in order, and the oldest members die. `history` records both
        (source `"candidate"` or `"rescore"`). A candidate that could not be scored is best
        left unrewarded: it then never joins.
        """
        living = {m["id"]: m for m in self._population}
        for candidate_id, reward, candidate in items:
            member_id = candidate.get("rescore")
            if member_id is None:
                continue
            member = living.get(member_id)
            if member is not None:
                member["reward"], member["scored"] = reward, len(self._history)
            self._history.append(
                {"id": candidate_id, "reward": reward, "parent": None, "mutation": None,
                 "source": "rescore", "member": member_id, "alive": member is not None}
            )  # fmt: skip
        for candidate_id, reward, candidate in items:
            if candidate.get("rescore") is None:
                self._join(
                    candidate_id, reward, candidate["values"], candidate["parent"],
                    candidate["mutation"], "candidate",
                )  # fmt: skip

    def _final_candidates(self, n):
        """The population, best first, then children.

        The living members, highest reward first (the older first among equals), then
        mutated children of tournament winners (random samples while there is no member),
        until `n` distinct architectures or `max_collisions + 1` draws in a row bring
        nothing new.

        Example:

        >>> import keras_tuner
        >>> hp = keras_tuner.HyperParameters()
        >>> _ = hp.Choice("a", [0, 1, 2]), hp.Choice("b", [0, 1, 2])
        >>> oracle = EvolutionOracle(objective=keras_tuner.Objective("score", "max"),
        ...     hyperparameters=hp, population_size=2, sample_size=1, seed=0)
        >>> batch = oracle.sample_candidates(2)
        >>> oracle.add_rewards([c["id"] for c in batch], [1.0, 2.0])
        >>> finalists = oracle.final_candidates(4)
        >>> finalists[0] == batch[1]["values"], len(finalists)
        (True, 4)
        """
        self._add_ended_trials()
        chosen = {}
        ranked = sorted(enumerate(self._population), key=lambda im: (-im[1]["reward"], im[0]))
        for _, member in ranked:
            values = self._complete(member["values"])
            chosen.setdefault(values_hash(values), values)
        misses = 0
        while len(chosen) < n and misses <= self.max_collisions:
            if self._population:
                size = min(self.sample_size, len(self._population))
                drawn = self._rng.choice(len(self._population), size=size, replace=False)
                parent = max((self._population[int(i)] for i in drawn),
                             key=lambda member: member["reward"])  # fmt: skip
                mutated = self._mutate(parent["values"])
                values = self._random_sample() if mutated is None else mutated[0]
            else:
                values = self._random_sample()
            key = values_hash(values)
            misses = misses + 1 if key in chosen else 0
            chosen.setdefault(key, values)
        return list(chosen.values())[:n]

    # ------------------------------------------------------------- results
    @property
    def population(self):
        """The living members, oldest first: dicts `{"id", "reward", "values", "scored"}`;
        `scored` is the index in `history` of the entry that gave the member its current
        reward (its joining, or its last re-score)."""
        return [dict(m, values=dict(m["values"])) for m in self._population]

    @property
    def history(self):
        """Every member that ever joined, and every re-score, in order: dicts `{"id",
        "reward", "parent", "mutation", "source"}`. `parent` is None for a random sample;
        `mutation` is None then, else `{"kind": "input" | "op" | "hyperparameter", "name",
        "old", "new"}` or `{"kind": "identity"}`; `source` is `"trial"`, `"candidate"` or
        `"rescore"`. A re-score (`id`: the candidate's) also names the `"member"` it re-scored
        and whether that member was still `"alive"` (else the reward changed nothing)."""
        return [dict(h) for h in self._history]

    @property
    def pending(self):
        """Trials created but not ended yet: `{trial_id: [parent_id, mutation]}`."""
        return {k: list(v) for k, v in self._pending_trials.items()}

    # --------------------------------------------------------- persistence
    def _get_own_state(self):
        return {
            "seed": self._evolution_seed,
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            # Recorded only: a resumed search takes the arguments (as for `population_size`).
            "children_per_batch": self.children_per_batch,
            "rescore_repeats": self.rescore_repeats,
            "rng": self._rng.bit_generator.state,
            "population": self._population,
            "history": self._history,
            "pending_trials": self._pending_trials,
            "pending_values": self._pending_values,
            "pending_candidates": self._candidates,
            "added": sorted(self._added),
            "candidate_counter": self._candidate_count,
        }

    def _set_own_state(self, own):
        # `reload` (`tuners.state_files`) has dropped the trials the state never recorded (a
        # `trial.json` written just before a kill): the same random state draws them again.
        self._evolution_seed = own["seed"]
        self._rng = np.random.default_rng(self._evolution_seed)
        self._rng.bit_generator.state = own["rng"]
        self._population = [dict(m) for m in own["population"]]
        self._history = [dict(h) for h in own["history"]]
        self._pending_trials = {k: list(v) for k, v in own["pending_trials"].items()}
        self._pending_values = {k: dict(v) for k, v in own.get("pending_values", {}).items()}
        self._candidates = {k: dict(v) for k, v in own["pending_candidates"].items()}
        self._added = set(own["added"])
        self._candidate_count = int(own["candidate_counter"])
        if len(self._population) > self.population_size:
            logger.info(
                "EvolutionOracle: population_size is now %d (saved: %d); the oldest members "
                "die.",
                self.population_size,
                own["population_size"],
            )
            del self._population[: len(self._population) - self.population_size]
        self._add_ended_trials()

    def _save_outside_trials(self):
        # Only when the oracle has a project directory, i.e. is in a tuner.
        if getattr(self, "_directory", None) is not None:
            self.save()

    # The `CheckedStateMixin` hooks.
    _state_key = _STATE_KEY
    _state_tmp_prefix = _TMP_PREFIX

    def _recover_trial_values(self, trial_id):
        if trial_id in self._pending_values:
            return dict(self._pending_values[trial_id])
        for member in self._population:
            if member["id"] == trial_id:
                return dict(member["values"])
        return None
