"""`ControllerOracle`: the RNN controller as a KerasTuner `Oracle`.

Any KerasTuner space made of `Choice`, `Boolean`, `Fixed`, stepped `Int` (linear `Int` always
has a step) and stepped `Float` is one sequence of categorical decisions: one per tunable
hyperparameter, in the order of the space. `populate_space` samples that sequence from a
`Controller` (storing its sampling-time log-probability); `end_trial` turns the trial's
objective into a reward (failed trials get the failure reward) and, every `update_every`
rewards, updates the controller. `sample_candidates` / `add_rewards` feed rewards for
architectures scored without trials (weight sharing) into the same batches.

The controller's weights and optimizer variables go to `controller_<version>.npz` beside
`oracle.json`; everything else (baseline, random state, pending rewards, the trial ->
decisions and log-probability maps, recorded candidates, the update history,
`decision_names`) goes into `oracle.json` itself, which names the `.npz` it goes with.
Both are written whole (temporary file, then `os.replace`) with a `.sha256` checksum
sidecar, the `.npz` first (and synced first at a commit: see "Durability" in
`tuners.state_files`), as is each trial's `trial.json`; the `.npz` an `oracle.json` names
is kept until a newer `oracle.json` has replaced it, so a search killed at any moment reloads a
consistent state. `oracle.prev.json` keeps the last state saved with the previous controller
file (which is kept too): when `oracle.json` or its `.npz` is damaged, the search resumes from
that pair with one warning (see `tuners.state_files`).
"""

import inspect
import json
import logging
import math
import os
import re
import warnings

import numpy as np
from keras_tuner.engine import trial as trial_module

from nasnet_tf.io_utils import CorruptFileError, check_file, first_line
from tuners.controller import (
    CONTROLLER_SETTINGS,
    PRESETS,
    Controller,
    config_from_saved,
    validate_settings,
)
from tuners.decisions import nearest_untried, space_size
from tuners.reward_oracle import RewardOracle
from tuners.state_files import json_default
from tuners.values import values_hash

logger = logging.getLogger(__name__)

_STATE_KEY = "controller_oracle"
_TMP_PREFIX = ".controller_oracle_tmp_"
_CONTROLLER_FILE = re.compile(r"controller_\d{6,}\.npz")
_SPLICE_MARK = "\u0000controller_oracle:%s\u0000"  # stands for a list in the state text
# The arguments `**kwargs` passes to `RewardOracle`; the others are `Controller` arguments.
_BASE_ARGS = frozenset(inspect.signature(RewardOracle).parameters)


def default_update_every(max_trials):
    """Rewards per controller update when `update_every` is not given.

    `max_trials // 40`, clipped to [4, 20] (4 when `max_trials` is `None`): small budgets get
    batches of 4 (25 updates in 100 trials; fewer than 4 rewards make the per-batch advantage
    scaling too noisy), large ones grow towards NASNet's 20. On synthetic rewards over the
    NASNet space, the number of updates matters most at these budgets (see
    `benchmarks/RESULTS_controller.md`).

    Example:

    >>> [default_update_every(n) for n in (20, 100, 200, 500, 1000, None)]
    [4, 4, 5, 12, 20, 4]
    """
    if max_trials is None:
        return 4
    return int(min(20, max(4, max_trials // 40)))


class _EncodedList:
    """The JSON text of a list that only grows, each entry encoded once (as `json.dumps` of
    the whole list would, with `json_default`). An entry must not change once it was encoded:
    so it is with `rewards` and the controller's `history` (see `_state_text`)."""

    def __init__(self):
        self._source, self._parts = None, []

    def text(self, items):
        if items is not self._source or len(items) < len(self._parts):
            self._source, self._parts = items, []
        self._parts.extend(json.dumps(item, default=json_default)
                           for item in items[len(self._parts) :])  # fmt: skip
        return "[" + ", ".join(self._parts) + "]"


class ControllerOracle(RewardOracle):
    """A KerasTuner `Oracle` whose trials are sampled by an RNN controller trained by RL.

    Drop it in wherever a KerasTuner oracle goes (e.g. `keras_tuner.Tuner(oracle=...)`). Each
    tunable hyperparameter of the space (`Choice`, `Boolean`, stepped `Int` / `Float`) is one
    categorical decision of the controller, in the order of the space; `Fixed` ones and those
    with a single value are not decisions. A space it cannot model is refused with a
    `ValueError` when it is declared (a `Float` without `step`, a log-sampled `Int` without
    `step`, conditional scopes).

    The reward of a completed trial is its score (negated when the objective is minimised),
    or `reward_fn(trial)` if given (see `tuners.rewards` for the papers' rewards). A trial
    that fails (raises, or whose objective is NaN, once its `max_retries_per_trial` are spent)
    gets the failure reward and the search goes on, up to KerasTuner's
    `max_consecutive_failed_trials`. By default (`failure_reward=None`) the failure reward
    is the worst reward of a non-failed trial seen so far minus one standard deviation of
    those rewards (minus `0.1 * |worst|`, or 0.1 if that is 0, while they are all equal): it
    is below every real result whatever the objective's direction and scale, yet not so
    far below that one failure swamps a batch's advantages. Failures that come before any
    real reward are held back until the first real reward sets the scale (a search in which
    everything fails gives the controller nothing to learn from anyway).

    The controller is updated each time `update_every` rewards have arrived; `history` lists
    the per-update statistics (reward, baseline, entropy, KL, `decision_probs`, ...). Each
    sample's log-probability is stored when it is drawn, so a trial sampled before an
    update (a trial in flight, another worker's) is trained off-policy, as PPO expects.

    The training settings come from `preset` (`tuners.controller.PRESETS`): `"default"`,
    tuned to learn within tens to hundreds of rewards, or `"nasnet"`, the papers' settings
    (Adam 3.5e-4, entropy 1e-5, EMA baseline 0.95, batches of 20), which need about a
    thousand rewards to move off uniform over the NASNet space. Arguments given explicitly
    override the preset. Without `update_every` (and under `"default"`), the batch size is
    `default_update_every(max_trials)`; a cadence that gives fewer than 5 updates in
    `max_trials` warns.

    Repeats. When the controller samples a set of values that was already tried, it is not
    run again (`rescore_repeats=False`, the default: a trained-from-scratch child would only
    score the same): if that trial has ended, its reward is fed to the controller again (the
    policy gradient stays unbiased), and another sample is drawn, up to `max_collisions + 1`
    (21) draws. When all of them were tried, the trial is the most probable untried
    configuration nearest the policy's mode: starting from the greedy decisions, the
    configurations one decision away (then two, ...) are scored by the controller in one
    batched call and the most probable untried one is taken, with the current policy's
    log-probability as its sampling-time one. So a converged controller never ends a
    budgeted search early; the search stops before `max_trials` only when every
    configuration of the space was tried (counted exactly, without listing a large space).
    With `rescore_repeats=True` (set by weight-sharing estimators: under shared weights, a
    repeat is a new measurement, not a collision) every draw is a trial, tried or not, and
    the search runs its whole budget.

    Weight-sharing estimators (ENAS-style: one trial trains shared weights, then scores many
    architectures) feed rewards without creating trials through `sample_candidates(n)` and
    `add_rewards(ids, rewards)`; those rewards join the same batches as the trials'.

    Its state is saved with the oracle (see the module docstring), so a search killed at any
    moment and restarted with `overwrite=False` goes on with the same controller, random
    state, pending rewards and recorded candidates; the trial that was running is run again
    under its own id. A damaged state file is set aside and the search resumes from the
    previous consistent state, with one warning, or stops with a one-line
    `tuners.state_files.SearchStateError` when there is none (see `tuners.state_files`).

    Args:
        objective: as for `keras_tuner.Oracle`.
        max_trials: int, the trial budget.
        hyperparameters: optional `HyperParameters` declaring (part of) the space.
        preset: `"default"` or `"nasnet"`, the controller's training settings.
        units: int, LSTM units of the controller. Defaults to 100.
        algorithm: `"ppo"` or `"reinforce"`; defaults to the preset's.
        learning_rate, entropy_weight, baseline_decay: controller training settings;
            default to the preset's.
        update_every: int, rewards per controller update; defaults to the preset's (NASNet:
            20) or, under `"default"`, to `default_update_every(max_trials)`.
        failure_reward: float, the reward of a failed or invalid trial, or `None` (default)
            for "the worst real reward so far minus a margin" (see above).
        **kwargs: the arguments of `tuners.reward_oracle.RewardOracle`: `reward_fn`
            (optional callable `trial -> float` giving the reward of a completed trial),
            `seed` (int or None, seeds the controller: its weights and its draws),
            `rescore_repeats` (bool, hand out draws of values already tried as new trials, see
            "Repeats" above; defaults to False), `allow_new_entries`, `tune_new_entries`,
            `max_retries_per_trial`, `max_consecutive_failed_trials`, `trial_lease`,
            `max_collisions`; and further `Controller` arguments (`embedding_dim`,
            `clip_epsilon`, `ppo_epochs`, `normalize_advantages`, `logit_clip`, `temperature`,
            `max_kl`).

    Example:

    ```python
    import keras_tuner

    class Toy(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            return {"score": float(hp.Choice("a", [1, 2, 3]) + hp.Int("b", 0, 4, step=2))}

    oracle = ControllerOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=6, units=8,
        update_every=2, seed=0)
    tuner = Toy(oracle=oracle, directory="/tmp/toy", overwrite=True)
    tuner.search(verbose=0)
    print(oracle.history[-1]["reward_mean"], tuner.get_best_hyperparameters()[0].values)
    ```
    """

    def __init__(self, objective=None, max_trials=None, hyperparameters=None, *,
                 preset="default", units=100, algorithm=None, learning_rate=None,
                 entropy_weight=None, baseline_decay=None, update_every=None,
                 failure_reward=None, **kwargs):
        controller_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in _BASE_ARGS}
        super().__init__(
            objective=objective, max_trials=max_trials, hyperparameters=hyperparameters, **kwargs
        )
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ValueError(
                f"Unknown preset. Accepted: {sorted(PRESETS)}. Received: preset={preset!r}"
            )
        if update_every is None:
            update_every = PRESETS[preset]["update_every"]
            derived = update_every is None
        else:
            derived = False
        if derived:
            update_every = default_update_every(max_trials)
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(
                f"`update_every` must be a positive int. Received: update_every={update_every!r}"
            )
        if failure_reward is not None and (
            isinstance(failure_reward, bool)
            or not isinstance(failure_reward, (int, float))
            or not math.isfinite(failure_reward)
        ):
            raise ValueError(
                "`failure_reward` must be a finite number or None. "
                f"Received: failure_reward={failure_reward!r}"
            )
        extra = {"embedding_dim", "clip_epsilon", "ppo_epochs"} | set(CONTROLLER_SETTINGS)
        extra -= {"algorithm", "learning_rate", "entropy_weight", "baseline_decay"}
        unknown = set(controller_kwargs) - extra
        if unknown:
            raise ValueError(
                "Unrecognized arguments for ControllerOracle: "
                f"{sorted(unknown)}. Accepted extra controller arguments: {sorted(extra)}."
            )
        self.update_every = update_every
        self.failure_reward = None if failure_reward is None else float(failure_reward)
        self._controller_kwargs = dict(
            preset=preset,
            units=units,
            algorithm=algorithm,
            learning_rate=learning_rate,
            entropy_weight=entropy_weight,
            baseline_decay=baseline_decay,
            **controller_kwargs,
        )
        # Fail on bad controller settings now, not at the first trial.
        validate_settings(**self._controller_kwargs, seed=self._kept_seed)
        if not derived and self.max_trials and self.max_trials / update_every < 5:
            warnings.warn(
                f"ControllerOracle: update_every={update_every} gives the controller "
                f"{self.max_trials // update_every} update(s) in max_trials={self.max_trials}: "
                "too few to move it off uniform, so the search is random search. Leave "
                "`update_every` unset to derive it from the budget, or give at least 5 "
                "updates' worth of trials.",
                stacklevel=2,
            )
        self._controller_seed = self._kept_seed
        self.controller = None
        self._specs = []  # [(name, values)] of the decisions, in the space's order.
        self._signature = None
        self._controller_version = 0
        self._saved_controller_version = None
        self._trial_decisions = {}  # trial_id -> list of decision indices
        self._trial_log_probs = {}  # trial_id -> log-probability when it was sampled
        self._pending = []  # [[id, decisions, reward, log_prob]] not yet used in an update
        self._rewards = []  # [[id, reward, source]] every reward received, in order
        self._failure_indices = []  # indices into `_rewards` of the failure rewards
        self._deferred = []  # [[id, decisions, source, log_prob]] failures before any reward
        self._rewarded = set()  # trial ids whose reward was received
        # `_candidates`: candidate id -> [decisions, log_prob], awaiting a reward.
        self._loaded_arrays = {}  # path -> (weights, optimizer) read by `_check_companion`
        # The state's two lists that grow with the search, encoded once per entry: see
        # `_state_text`.
        self._encoded = {"rewards": _EncodedList(), "history": _EncodedList()}

    # ----------------------------------------------------------------- the space
    def _ensure_controller(self):
        """Builds (or, if the space changed, rebuilds) the controller for the current space."""
        specs = self._decisions()
        signature = [[name, len(values)] for name, values in specs]
        if self.controller is not None and signature == self._signature:
            self._specs = specs
            return
        if self.controller is not None:
            logger.warning(
                "The search space changed after the controller was built; starting a new "
                "controller for it (%d pending rewards and %d recorded candidates dropped).",
                len(self._pending),
                len(self._candidates),
            )
            self._pending = []
            self._candidates = {}
        self._specs = specs
        self._signature = signature
        if specs:
            self.controller = Controller(
                [len(values) for _, values in specs],
                **self._controller_kwargs,
                seed=self._controller_seed,
            )
        else:
            self.controller = None
        self._controller_version += 1

    @property
    def decision_names(self):
        """The hyperparameter names of the controller's decisions, in prediction order."""
        return [name for name, _ in self._specs]

    # -------------------------------------------------------------- the search
    def _values_for(self, decisions):
        chosen = {name: values[d] for (name, values), d in zip(self._specs, decisions)}
        values = {}
        for hp, options in self._options():
            if hp.name in chosen:
                values[hp.name] = chosen[hp.name]
            else:
                values[hp.name] = hp.value if options is None else options[0]
        return values

    def _ended_trials_by_hash(self):
        """`{values_hash: trial}` of the ended, rewarded trials (the first of each hash)."""
        ended = {}
        for trial_id, trial_hash in self._values_hashes.items():
            if trial_hash in ended or trial_id not in self._rewarded:
                continue
            trial = self.trials.get(trial_id)
            if trial is not None and trial.status in (
                trial_module.TrialStatus.COMPLETED,
                trial_module.TrialStatus.FAILED,
            ):
                ended[trial_hash] = trial
        return ended

    def _draw(self, n, rng=None):
        """`n` decision lists and their sampling-time log-probabilities (drawn from `rng`
        when given, else from the controller's random state)."""
        decisions, log_probs = self.controller.sample(n, return_log_prob=True, rng=rng)
        return [[int(d) for d in row] for row in decisions], [float(lp) for lp in log_probs]

    def _running(self, trial_id, decisions, log_prob, values=None):
        self._trial_decisions[trial_id] = list(decisions)
        self._trial_log_probs[trial_id] = log_prob
        if values is None:
            values = self._values_for(decisions)
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def _nearest_untried(self, tried):
        """`(decisions, log_prob)` of the most probable untried configuration nearest the
        greedy decisions (see "Repeats"), or `None` when every configuration was tried."""
        num_choices = [len(values) for _, values in self._specs]

        def is_untried(decisions):
            return not self.is_tried(self._values_for(decisions), tried)

        # A ring is built only when the one inside it was all tried, so this costs about the
        # tried configurations near the mode; it covers the whole space (and answers None)
        # only when every configuration was tried, i.e. in a space no larger than the trials.
        found = nearest_untried(self.controller.greedy(), num_choices, is_untried)
        if not found:
            return None
        log_probs = self.controller.log_prob(np.asarray(found, dtype="int32"))
        best = int(np.argmax(log_probs))
        return [int(d) for d in found[best]], float(log_probs[best])

    def populate_space(self, trial_id):
        """Samples the trial's values from the controller (`RUNNING`), or `STOPPED` once every
        configuration of the space was tried (see "Repeats" in the class docstring)."""
        self._ensure_controller()
        if self.controller is None:
            # Nothing to decide: run the one configuration (once, unless repeats are rescored).
            values = self._values_for([])
            if not self.rescore_repeats and self.is_tried(values):
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            self._trial_decisions[trial_id] = []
            return {"status": trial_module.TrialStatus.RUNNING, "values": values}
        (decisions,), (log_prob,) = self._draw(1)
        if self.rescore_repeats:
            return self._running(trial_id, decisions, log_prob)
        tried = self.tried_hashes()
        ended = None
        more = ([], [])
        for attempt in range(self.max_collisions + 1):
            if attempt:
                if attempt == 1:  # A collision: the further draws in one batched call.
                    more = self._draw(self.max_collisions)
                decisions, log_prob = more[0][attempt - 1], more[1][attempt - 1]
            values = self._values_for(decisions)
            if not self.is_tried(values, tried):
                return self._running(trial_id, decisions, log_prob, values)
            if ended is None:
                ended = self._ended_trials_by_hash()
            earlier = ended.get(values_hash(values))
            if earlier is not None:
                # Evaluated already: reward the draw from that result instead of retraining.
                self._receive_reward(
                    earlier.trial_id, decisions, self._reward_of(earlier), "repeat", log_prob
                )
        nearest = self._nearest_untried(tried)
        if nearest is not None:
            return self._running(trial_id, *nearest)
        logger.info(
            "ControllerOracle: all %d configurations of the space were tried; stopping the "
            "search.", space_size(len(options) for _, options in self._specs),
        )  # fmt: skip
        self.save()  # `create_trial` saves only running trials; keep the rewards just received.
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}

    def _failure_value(self):
        """The reward of a failure now, or `None` while no real reward sets the scale."""
        if self.failure_reward is not None:
            return self.failure_reward
        failures = set(self._failure_indices)
        real = [r[1] for i, r in enumerate(self._rewards) if i not in failures]
        if not real:
            return None
        worst = min(real)
        margin = float(np.std(real))
        if not margin > 0:
            margin = 0.1 * abs(worst) if worst != 0 else 0.1
        return float(worst - margin)

    @property
    def num_failures(self):
        """How many failed trials (or repeat draws of them) were rewarded so far."""
        return len(self._failure_indices)

    def _receive_reward(self, reward_id, decisions, reward, source, log_prob=None):
        """Takes one reward (`None`: a failure) into `rewards` and the pending batch."""
        failed = reward is None
        if failed:
            reward = self._failure_value()
            if reward is None:
                self._deferred.append([reward_id, list(decisions), source, log_prob])
                return
        self._rewards.append([reward_id, float(reward), source])
        if failed:
            self._failure_indices.append(len(self._rewards) - 1)
        self._queue(reward_id, decisions, reward, log_prob)
        if not failed and self._deferred:
            deferred, self._deferred = self._deferred, []
            for held_id, held_decisions, held_source, held_log_prob in deferred:
                self._receive_reward(held_id, held_decisions, None, held_source, held_log_prob)

    def _queue(self, reward_id, decisions, reward, log_prob):
        if self._signature is None or len(decisions) != len(self._signature):
            return  # Sampled for an earlier space (see `_ensure_controller`).
        if self.controller is None:
            return
        self._pending.append([reward_id, list(decisions), float(reward), log_prob])
        while len(self._pending) >= self.update_every:
            batch, self._pending = (
                self._pending[: self.update_every],
                self._pending[self.update_every :],
            )
            old_log_probs = [math.nan if b[3] is None else b[3] for b in batch]
            stats = self.controller.update(
                [b[1] for b in batch], [b[2] for b in batch], old_log_probs=old_log_probs
            )
            stats["num_failures"] = self.num_failures
            self._controller_version += 1

    def _reward_ended_trials(self):
        """Rewards every ended trial not rewarded yet (e.g. ended just before a kill)."""
        for trial in self._ended_trials(self._rewarded):
            trial_id = trial.trial_id
            if trial_id not in self._trial_decisions:
                continue
            self._rewarded.add(trial_id)
            self._receive_reward(
                trial_id,
                self._trial_decisions[trial_id],
                self._reward_of(trial),
                "trial",
                self._trial_log_probs.get(trial_id),
            )

    def _take_ended_trials(self):
        self._reward_ended_trials()

    # ------------------------------------------------- rewards without trials
    def _draw_candidates(self, n, record, rng=None):
        """Draws from the controller; a recorded candidate keeps `[decisions, sampling-time
        log-probability]`, and its reward joins the same pending batch as the trials' (source
        `"candidate"` in `rewards`)."""
        self._ensure_controller()
        drawn = ([([], None)] * n if self.controller is None
                 else list(zip(*self._draw(n, rng))))
        return [([list(d), log_prob], self._values_for(d)) for d, log_prob in drawn]

    def _take_rewards(self, items):
        for candidate_id, reward, (decisions, log_prob) in items:
            self._receive_reward(candidate_id, decisions, reward, "candidate", log_prob)

    def _final_candidates(self, n):
        """Up to `n` distinct draws from the policy: `n` sequences drawn from the current
        controller in one batched call, their values in the order drawn, repeats removed (so
        a converged policy gives fewer than `n`)."""
        self._ensure_controller()
        drawn = [[]] if self.controller is None else self.controller.sample(n).tolist()
        unique = {}
        for decisions in drawn:
            values = self._values_for([int(d) for d in decisions])
            unique.setdefault(values_hash(values), values)
        return list(unique.values())

    # ---------------------------------------------------------------- results
    @property
    def history(self):
        """Per-update controller statistics (dicts with reward, baseline, entropy, loss...)."""
        return [] if self.controller is None else list(self.controller.history)

    @property
    def rewards(self):
        """Every reward the controller received, in order: `[id, reward, source]`, source
        `"trial"`, `"repeat"` (a draw of an ended trial's values) or `"candidate"`."""
        return [list(r) for r in self._rewards]

    @property
    def pending_rewards(self):
        """Rewards received since the last controller update:
        `[id, decisions, reward, sampling-time log-probability]`."""
        return [list(p) for p in self._pending]

    @property
    def trial_decisions(self):
        """The controller's decisions of each trial: `{trial_id: [int, ...]}`."""
        return {k: list(v) for k, v in self._trial_decisions.items()}

    # ------------------------------------------------------------ persistence
    def _controller_fname(self, version):
        return os.path.join(self._project_dir, f"controller_{version:06d}.npz")

    def _get_own_state(self):
        controller_state = None
        if self.controller is not None:
            # The arrays go to the controller file, written by `save` only when they changed.
            controller_state = self.controller.get_state(include_arrays=False)
        return {
            "signature": self._signature,
            "decision_names": self.decision_names,
            "update_every": self.update_every,
            "controller_seed": self._controller_seed,
            "controller_version": self._controller_version,
            "controller_file": (
                None
                if self.controller is None
                else f"controller_{self._controller_version:06d}.npz"
            ),
            "controller": controller_state,
            "trial_decisions": self._trial_decisions,
            "trial_log_probs": self._trial_log_probs,
            "pending": self._pending,
            "rewards": self._rewards,
            "failure_indices": self._failure_indices,
            "deferred_failures": self._deferred,
            "rewarded": sorted(self._rewarded),
            "candidates": self._candidates,
            "candidate_count": self._candidate_count,
            "rescore_repeats": self.rescore_repeats,  # recorded only: a resume takes the argument
        }

    def _set_own_state(self, own):
        self._controller_seed = own["controller_seed"]
        self._trial_decisions = {k: list(v) for k, v in own["trial_decisions"].items()}
        self._trial_log_probs = dict(own.get("trial_log_probs", {}))
        # States saved before log-probabilities were stored have 3-item pending entries.
        self._pending = [(list(p) + [None])[:4] for p in own["pending"]]
        self._rewards = [list(r) for r in own["rewards"]]
        self._failure_indices = list(own.get("failure_indices", []))
        self._deferred = [list(d) for d in own.get("deferred_failures", [])]
        self._rewarded = set(own["rewarded"])
        self._candidates = {k: list(v) for k, v in own.get("candidates", {}).items()}
        self._candidate_count = int(own.get("candidate_count", 0))
        self._signature = own["signature"]
        self._controller_version = own["controller_version"]
        self.controller = None
        self._specs = self._decisions()
        if own["controller"] is not None:
            self.controller = Controller(**config_from_saved(own["controller"]["config"]))
            path = os.path.join(self._project_dir, own["controller_file"])
            weights, optimizer = self._loaded_arrays.pop(path, None) or _read_controller(path)
            self.controller.set_state(dict(own["controller"], weights=weights, optimizer=optimizer))
            self._saved_controller_version = self._controller_version
        self._loaded_arrays = {}
        self._reward_ended_trials()

    def _save_companions(self):
        """Writes the controller arrays, when they changed since the last save (`save`, see
        `RewardOracle.save`, then writes `oracle.json`, which names them)."""
        if (
            self.controller is not None
            and self._saved_controller_version != self._controller_version
        ):
            weights, optimizer = self.controller.arrays()
            arrays = {f"w{i}": w for i, w in enumerate(weights)}
            arrays.update({f"o{i}": o for i, o in enumerate(optimizer)})
            arrays["num_weights"] = np.array(len(weights))
            arrays["num_optimizer"] = np.array(len(optimizer))
            self._write_companion(
                self._controller_fname(self._controller_version),
                lambda f: np.savez(f, **arrays),
                suffix=".npz",
            )
        self._saved_controller_version = self._controller_version

    # The `CheckedStateMixin` hooks.
    def _state_text(self, state):
        """`json.dumps(state)`, with `rewards` and the controller's `history` (most of the
        text after a few hundred trials, and only ever appended to) not encoded again at every
        save: their entries' text is kept from the saves before and spliced in."""
        own = state.get(_STATE_KEY)
        splices = []
        if own is not None and own.get("rewards") is self._rewards:
            splices.append((own, "rewards", self._rewards))
            controller = own.get("controller")
            if controller is not None and self.controller is not None:
                splices.append((controller, "history", self.controller.history))
        kept = [holder[key] for holder, key, _ in splices]
        for holder, key, _ in splices:
            holder[key] = _SPLICE_MARK % key
        try:
            text = super()._state_text(state)
        finally:
            for (holder, key, _), value in zip(splices, kept):
                holder[key] = value
        for _, key, items in splices:
            text = text.replace(json.dumps(_SPLICE_MARK % key), self._encoded[key].text(items), 1)
        return text

    _state_key = _STATE_KEY
    _state_tmp_prefix = _TMP_PREFIX
    _companion_pattern = _CONTROLLER_FILE

    def _state_companions(self, state):
        own = state.get(_STATE_KEY) or {}
        name = own.get("controller_file") if own.get("controller") is not None else None
        return [name] if isinstance(name, str) else []

    def _check_companion(self, path, state):
        self._loaded_arrays = {path: _read_controller(path)}

    def _recover_trial_values(self, trial_id):
        decisions = self._trial_decisions.get(trial_id)
        if decisions is None or len(decisions) != len(self._specs):
            return None
        if any(not 0 <= d < len(values) for (_, values), d in zip(self._specs, decisions)):
            return None
        return self._values_for(decisions)


def _read_controller(path):
    """`(weights, optimizer)` arrays of a controller file; `CorruptFileError` (one line, naming
    the file) when it is missing, fails its checksum or cannot be read whole."""
    check_file(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            n_weights = int(arrays["num_weights"])
            n_opt = int(arrays["num_optimizer"])
            weights = [arrays[f"w{i}"] for i in range(n_weights)]
            optimizer = [arrays[f"o{i}"] for i in range(n_opt)]
    except Exception as e:  # BadZipFile, EOFError, zlib.error, KeyError, ValueError, ...
        raise CorruptFileError(
            f"{path!r} cannot be read as a controller file ({first_line(e)}): truncated or "
            "damaged."
        ) from None
    return weights, optimizer


