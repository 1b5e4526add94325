"""Trial leases: a distributed search (KerasTuner's chief and workers) that survives its
processes.

Shared by `ControllerOracle` and `EvolutionOracle` through `TrialLeaseMixin` (see
`docs/distributed.md`):

- Trial leases. A trial whose worker has not reported (`create_trial`, `update_trial`,
  `end_trial`) for `trial_lease` seconds is handed, under its own id and with its own
  hyperparameters, to the next worker that asks for a trial. A worker restarted under its
  old `KERASTUNER_TUNER_ID` gets its trial back, as in KerasTuner.
- Counted once. The first `end_trial` of a trial ends it; a later `end_trial` or
  `update_trial` of an ended trial (a worker whose trial was handed on, or an RPC sent
  again after a chief restart) is ignored, with one warning.
- Winding down. Once the budget is spent, a worker asking for a trial while other workers
  still run one is told `IDLE` (it asks again shortly) instead of `STOPPED`: one of those
  trials may still come back to it. A worker silent for `min(trial_lease, 30)` seconds with
  no trial is dropped from `tuner_ids`, so the chief can exit.
- A restarted chief keeps the trials that were running as running, with a fresh lease: a
  worker that ran one across the restart reports it as usual (KerasTuner would queue it to
  run again at once, so it would run twice).

What a lease knows (when each trial and each worker was last heard from) lives in the chief's
memory only: a restarted chief starts every lease afresh.
"""

import logging
import os
import time

import keras_tuner
from keras_tuner.engine import trial as trial_module

from nasnet_tf.validators import positive_float

__all__ = ["DEFAULT_TRIAL_LEASE", "TrialLeaseMixin"]

logger = logging.getLogger(__name__)

DEFAULT_TRIAL_LEASE = 3600.0  # seconds; KerasTuner's own RPC timeout (`oracle_client.TIMEOUT`)
_IDLE_WAIT_S = 0.2  # how long an `IDLE` answer waits: paces the workers polling for the end
_STOP_GRACE_S = 30.0  # a worker silent this long with no trial is taken for gone
_RUNNING = trial_module.TrialStatus.RUNNING
_STOPPED = trial_module.TrialStatus.STOPPED
_IDLE = trial_module.TrialStatus.IDLE


class TrialLeaseMixin:
    """Trial leases, results counted once and a clean wind-down for a `keras_tuner.Oracle`.

    Put it before `tuners.state_files.CheckedStateMixin` (and `keras_tuner.Oracle`) in the
    bases: its `create_trial`, `update_trial` and `end_trial` decide whether KerasTuner's
    should run at all (a trial handed on, a late report, a worker told `IDLE`), then call
    `super()`, so that `CheckedStateMixin` records and saves only the calls that count. It
    overrides `CheckedStateMixin`'s `_resume_running_trials` hook for a restarted chief.

    The oracle's `__init__` calls `_init_trial_leases(trial_lease)` after
    `keras_tuner.Oracle.__init__`.

    Example:

    ```python
    class MyOracle(TrialLeaseMixin, CheckedStateMixin, keras_tuner.Oracle):
        def __init__(self, trial_lease=DEFAULT_TRIAL_LEASE, **kwargs):
            super().__init__(**kwargs)
            self._init_trial_leases(trial_lease)
            self._init_checked_state()
    ```
    """

    def _init_trial_leases(self, trial_lease=DEFAULT_TRIAL_LEASE):
        """Checks and sets `trial_lease` (seconds, or `None`: never hand a trial on), and
        empties what the leases know."""
        self.trial_lease = (
            None if trial_lease is None else positive_float(trial_lease, "trial_lease")
        )
        self._lease_seen = {}  # trial_id -> time.monotonic() of its last report (not saved)
        self._tuner_seen = {}  # tuner_id -> time.monotonic() of its last call
        self._idling = set()  # tuner ids told IDLE while the search winds down
        self._space_exhausted = False

    def _is_chief(self):
        # KerasTuner's own test (`keras_tuner.src.distribute.utils.is_chief_oracle`).
        return "KERASTUNER_ORACLE_IP" in os.environ and "chief" in os.environ.get(
            "KERASTUNER_TUNER_ID", ""
        )

    def _owner_of(self, trial_id):
        for tuner_id, trial in self.ongoing_trials.items():
            if trial.trial_id == trial_id:
                return tuner_id
        return None

    def _heard_from(self, trial_id, now):
        owner = self._owner_of(trial_id)
        if owner is not None:
            self._lease_seen[trial_id] = now
            self._tuner_seen[owner] = now

    def _stop_grace(self):
        return min(self.trial_lease, _STOP_GRACE_S)

    def _reclaim(self, asker, now):
        """Hands on the trials whose lease ran out; drops workers that went silent."""
        if self.trial_lease is None:
            return
        for owner, trial in list(self.ongoing_trials.items()):
            if owner == asker:
                continue
            seen = self._lease_seen.setdefault(trial.trial_id, now)
            if now - seen <= self.trial_lease:
                continue
            del self.ongoing_trials[owner]
            self._lease_seen.pop(trial.trial_id, None)
            self.tuner_ids.discard(owner)
            if trial.trial_id not in self._retry_queue:
                self._retry_queue.append(trial.trial_id)
            logger.warning(
                "Trial %s: worker %r has not reported for %.0f s (`trial_lease`); the trial "
                "goes to the next worker that asks, under the same id. A report from %r for "
                "it is taken only until the trial ends.",
                trial.trial_id, owner, now - seen, owner,
            )  # fmt: skip
        owners = set(self.ongoing_trials)
        for other in list(self.tuner_ids):
            seen = self._tuner_seen.get(other, now)
            if other != asker and other not in owners and now - seen > self._stop_grace():
                self.tuner_ids.discard(other)
                self._idling.discard(other)

    def _others_may_need(self, asker, now):
        """Whether a worker asking once the budget is spent should wait (`IDLE`)."""
        if self.trial_lease is None:
            return False  # KerasTuner's behaviour: `STOPPED`.
        if any(owner != asker for owner in self.ongoing_trials):
            return True  # Their trial may still come back to it.
        # A worker between trials asks for its next one at once; one silent for longer is
        # dropped by `_reclaim`. Workers already waiting are not waited for.
        for other in self.tuner_ids - {asker} - self._idling:
            if now - self._tuner_seen.get(other, now) <= self._stop_grace():
                return True
        return False

    def _idle(self, tuner_id):
        self._idling.add(tuner_id)
        self.tuner_ids.add(tuner_id)
        time.sleep(_IDLE_WAIT_S)  # A worker told IDLE asks again at once.
        return trial_module.Trial(self.hyperparameters.copy(), trial_id="idle", status=_IDLE)

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        """Creates a trial as KerasTuner does, first handing on the trials whose worker went
        silent for `trial_lease` seconds, and answers `IDLE` rather than `STOPPED` while the
        search winds down and another worker's trial may still come back."""
        now = time.monotonic()
        self._tuner_seen[tuner_id] = now
        self._idling.discard(tuner_id)
        self._reclaim(tuner_id, now)
        if tuner_id in self.ongoing_trials:  # A worker restarted under its id: its trial.
            trial = self.ongoing_trials[tuner_id]
            self._lease_seen[trial.trial_id] = now
            return trial
        spent = bool(self.max_trials) and len(self.trials) >= self.max_trials
        if (spent or self._space_exhausted) and not self._retry_queue:
            if self._others_may_need(tuner_id, now):
                return self._idle(tuner_id)
            if self._space_exhausted:  # Drawing again would only feed more repeats.
                self.tuner_ids.discard(tuner_id)
                return trial_module.Trial(
                    self.hyperparameters.copy(), trial_id="stopped", status=_STOPPED
                )
        trial = super().create_trial(tuner_id)
        if trial.status == _RUNNING:
            self._lease_seen[trial.trial_id] = time.monotonic()  # from when it is handed out
        elif trial.status == _STOPPED and not spent:
            self._space_exhausted = True
            if self._others_may_need(tuner_id, now):
                trial = self._idle(tuner_id)
        return trial

    def _ended(self, trial_id):
        return trial_id in self.end_order and self._owner_of(trial_id) is None

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        """Records a trial's metrics as KerasTuner does (renewing its lease); a report for a
        trial that has ended already is ignored, with a warning."""
        if self._ended(trial_id):
            logger.warning(
                "Trial %s has ended already; a late `update_trial` for it (from a worker "
                "whose trial was handed on, or sent again) is ignored.", trial_id,
            )  # fmt: skip
            return self.trials[trial_id]
        trial = super().update_trial(trial_id, metrics, step=step)
        self._heard_from(trial_id, time.monotonic())
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial):
        """Ends the trial as `super()` does, once: a later `end_trial` of the same trial (a
        worker whose trial was handed on, or an RPC sent again after a chief restart) is
        ignored, with a warning. A trial handed on but not yet taken by another worker is
        ended by its first worker's report."""
        trial_id = trial.trial_id
        if self._ended(trial_id):
            logger.warning(
                "Trial %s has ended already; a late `end_trial` for it (from a worker whose "
                "trial was handed on, or sent again) is ignored: its result counts once.",
                trial_id,
            )
            return
        if self._owner_of(trial_id) is None and trial_id in self._retry_queue:
            self._retry_queue.remove(trial_id)  # Handed on, but nobody took it yet.
        try:
            super().end_trial(trial)
        finally:
            self._lease_seen.pop(trial_id, None)

    def _resume_running_trials(self):
        """At reload: a restarted chief keeps its running trials (see the module docstring);
        otherwise they are run again, as KerasTuner does."""
        if not (self._is_chief() and self.trial_lease is not None):
            super()._resume_running_trials()
            return
        # The workers may still run their trials (they wait for the chief to come back);
        # each has `trial_lease` seconds from now to report.
        now = time.monotonic()
        for tuner_id, trial in self.ongoing_trials.items():
            self._lease_seen[trial.trial_id] = now
            self._tuner_seen[tuner_id] = now
            self.tuner_ids.add(tuner_id)
