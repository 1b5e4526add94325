"""The search's own state files, checked when read and recoverable when damaged.

Shared by `ControllerOracle` and `EvolutionOracle` through `CheckedStateMixin`:

- `oracle.json` (the oracle's state) and each KerasTuner `trial_*/trial.json` are written whole
  (temporary file, then `os.replace`) with a `<file>.sha256` sidecar (`nasnet_tf.io_utils`);
  so are the oracle's companion files (the controller's `controller_<version>.npz`), written
  before the `oracle.json` that names them.
- `oracle.prev.json` (with its sidecar) keeps the state saved before the current one, and the
  companion files it names are kept with it: a consistent pair to fall back to. While the
  current state names companion files, the previous state is the last one saved with OTHER
  companion files (for the controller: the previous controller version), so that a damaged
  companion file has a fallback too; without companion files it is simply the previous save.
- On reload, a state that cannot be read (empty, truncated, bad JSON, failing its checksum) or
  whose companion file cannot be read is set aside (renamed `*.corrupt`, never deleted) and
  the search resumes from `oracle.prev.json`, with ONE `logging` warning naming both. The
  trials saved after that state are drawn and run again under their own ids (their files
  stay until those runs rewrite them). With no usable previous state, `SearchStateError`
  (one line, naming the file and the way out) is raised and nothing is changed.
- A damaged `trial.json` is set aside too, with one warning; its trial is run again under
  its id when the oracle can recover its hyperparameters (checked against the values hash
  KerasTuner recorded), or dropped and drawn again when the oracle state never recorded it;
  otherwise `SearchStateError`, and nothing is changed.

Files written before checksums existed (no sidecars) still load, unchecked.

Durability. Every file above is written whole or not at all whenever the process is killed
(that needs no `fsync`). Against a power loss or an OS crash, a trial's end is the commit
point: the `oracle.json` saved by `end_trial` (and by saves outside trials: `sample_candidates`,
`add_rewards`, `final_candidates`, the tuner's own `save`) is `fsync`ed, with its sidecar, the
companion files it names that were not synced yet, and the project directory: 3 `fsync`s per
trial, 5 when the controller file changed (it and its sidecar). The other writes of a trial
(`trial.json` three times, `oracle.prev.json`, the `oracle.json` of `create_trial`) are not
synced. A file whose data a power loss did not let reach the disk is caught by its checksum
and recovered from as above (on ext4's default `data=ordered`, the commit's journal flush
carries them anyway); what the commit made durable is never lost.

The mixin also keeps the bookkeeping that KerasTuner keeps privately, so that the oracles
use only KerasTuner's public API: the hash of each trial's values (`values_hashes`, saved
in the state; the duplicate check) and `max_collisions`. What makes a distributed search
survive its processes (trial leases, results counted once, the wind-down, a restarted
chief) is `tuners.trial_leases`.
"""

import glob
import json
import logging
import os
import re

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from nasnet_tf.io_utils import (
    CorruptFileError,
    atomic_write,
    checksum_path,
    first_line,
    fsync_directory,
    fsync_file,
    read_json,
    remove_temporaries,
    set_aside,
)
from nasnet_tf.validators import positive_int
from tuners.values import values_hash

__all__ = [
    "PREV_STATE_FILE",
    "CheckedStateMixin",
    "SearchStateError",
]

logger = logging.getLogger(__name__)

PREV_STATE_FILE = "oracle.prev.json"
_TRIAL_DIR = re.compile(r"^trial_(.+)$")
_STATE_KEY = "checked_state"
_RUNNING = trial_module.TrialStatus.RUNNING


class SearchStateError(CorruptFileError):
    """A search cannot be resumed: a state file is damaged and nothing usable replaces it.

    A `ValueError` (through `nasnet_tf.io_utils.CorruptFileError`) whose message is one line
    naming the damaged file and the way out. Nothing was renamed or deleted.
    """


def json_default(value):
    """`json.dumps` `default` for NumPy scalars and arrays (oracle states hold them)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class CheckedStateMixin:
    """Checked writes and a damage-tolerant `reload` for a `keras_tuner.Oracle` subclass.

    Put it before `keras_tuner.Oracle` in the bases. The oracle's `save` calls
    `_write_oracle_state(self.get_state())` (after writing its companion files, if any, with
    `checksum=True`); `_save_trial` and `reload` replace KerasTuner's, and `create_trial` and
    `end_trial` extend them (one save each, with the trial's values hash recorded). Subclasses
    may override:

    - `_state_tmp_prefix`: the prefix of their temporary files (stray ones are removed).
    - `_companion_pattern`: a compiled regex matching their companion file names; those that
      neither `oracle.json` nor `oracle.prev.json` names are removed with their sidecars.
    - `_state_companions(state)`: the companion file names a state names.
    - `_check_companion(path, state)`: raises `CorruptFileError` when the companion file at
      `path` cannot be read (it may keep what it read for `set_state`).
    - `_recover_trial_values(trial_id)`: the hyperparameter values of a recorded trial, or
      `None` when the (already set) state cannot tell them.
    - `_resume_running_trials()`: what `reload` does with the trials that were running
      (KerasTuner's way: run them again; `tuners.trial_leases` keeps them on a chief).

    Their `__init__` calls `_init_checked_state(max_collisions)` after
    `keras_tuner.Oracle.__init__`; their `populate_space` checks draws with `is_tried`.

    Example:

    ```python
    class MyOracle(CheckedStateMixin, keras_tuner.Oracle):
        def save(self):
            self._write_oracle_state(self.get_state())
    ```
    """

    _state_tmp_prefix = ".oracle_tmp_"
    _companion_pattern = None
    # What this process knows of the files on disk (see `_write_oracle_state`).
    _sf_text = None  # the state text last saved, or loaded
    _sf_companions = ()  # the companion files it names
    _sf_synced = False  # whether `oracle.json` holds `_sf_text`
    _sf_prev_text = None  # the text in `oracle.prev.json`, when known
    _sf_prev_companions = None  # the companion files it names; None: unknown
    _sf_swept = None  # the (kept files, pruning) of the last sweep of stale files
    _sf_temps_swept = False  # whether this process removed its interrupted writes' files
    _sf_durable = False  # whether `oracle.json` was synced since it was last written
    _sf_unsynced = frozenset()  # companion files written without `fsync` since the last commit
    _lazy_save = False  # True while a save needs no `fsync` (see "Durability" above)

    # ------------------------------------------------------ own bookkeeping
    def _init_checked_state(self, max_collisions=20):
        """Checks and sets `max_collisions` (draws of tried values in a row before the space
        counts as exhausted, minus one), and empties the bookkeeping."""
        self.max_collisions = positive_int(max_collisions, "max_collisions", minimum=0)
        self._values_hashes = {}  # trial_id -> values_hash of its values (saved)
        self._defer_save = False
        self._lazy_save = False

    @property
    def values_hashes(self):
        """`{trial_id: values_hash(values)}` of every trial created (`tuners.values`)."""
        return dict(self._values_hashes)

    def tried_hashes(self):
        """The set of `values_hash`es of the values tried so far (in any trial)."""
        return set(self._values_hashes.values())

    def is_tried(self, values, tried=None):
        """Whether a trial already had these `values` (`tried`: a `tried_hashes()` to reuse)."""
        return values_hash(values) in (self.tried_hashes() if tried is None else tried)

    def get_state(self):
        state = super().get_state()
        state[_STATE_KEY] = {"values_hashes": dict(self._values_hashes)}
        return state

    def set_state(self, state):
        super().set_state(state)
        own = state.get(_STATE_KEY)
        # States saved before the oracles kept their own hashes hold KerasTuner's.
        hashes = own["values_hashes"] if own else (state.get("id_to_hash") or {})
        self._values_hashes = {k: v for k, v in hashes.items() if v is not None}

    # ----------------------------------------------------------------- trials
    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        """Creates a trial as KerasTuner does, recording the hash of its values, and saves the
        state once (not synced: see "Durability" above)."""
        # KerasTuner saves inside `create_trial`; save once, with the trial's hash recorded.
        self._defer_save = True
        try:
            trial = super().create_trial(tuner_id)
        finally:
            self._defer_save = False
        if trial.status == _RUNNING:
            self._values_hashes[trial.trial_id] = values_hash(trial.hyperparameters.values)
        # Not a commit point: a start lost to a power cut is drawn (or handed out) again.
        self._lazy_save = True
        try:
            self.save()
        finally:
            self._lazy_save = False
        return trial

    # ------------------------------------------------------------------ hooks
    def _state_companions(self, state):
        return []

    def _check_companion(self, path, state):
        pass

    def _recover_trial_values(self, trial_id):
        return None

    # ---------------------------------------------------------------- writing
    def _prev_oracle_fname(self):
        return os.path.join(self._project_dir, PREV_STATE_FILE)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        """Ends the trial as KerasTuner does, then hands the ended trials to the strategy
        (`_take_ended_trials`: a reward for the controller, a member for the population) and
        saves the state (a commit: see "Durability" above)."""
        trial_id = trial.trial_id
        # KerasTuner saves inside `end_trial`; save once, after the strategy took the trial,
        # so that no `oracle.json` shows a trial ended but not taken.
        self._defer_save = True
        try:
            super().end_trial(trial)
        finally:
            # Also when KerasTuner stops the search on too many consecutive failures.
            self._defer_save = False
            ended = self.trials.get(trial_id)
            if ended is not None:
                self._values_hashes[trial_id] = values_hash(ended.hyperparameters.values)
            self._take_ended_trials()
            self.save()

    def _take_ended_trials(self):
        """Gives every ended trial not taken yet to the strategy. Subclasses implement it."""
        raise NotImplementedError

    def _save_trial(self, trial):
        # KerasTuner writes `trial.json` in place: a kill mid-write would leave a file that
        # `reload` cannot parse. Not synced: written up to three times per trial, and a file
        # damaged by a power cut is set aside and its trial run again (see the docstring).
        text = json.dumps(trial.get_state(), default=json_default)
        self._write_state_text(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                               text, fsync=False)

    def _write_companion(self, path, write_fn, suffix):
        """Writes a companion file whole and checksummed, not synced: the next durable save of
        an `oracle.json` that names it syncs it first."""
        atomic_write(path, write_fn, binary=True, prefix=self._state_tmp_prefix, suffix=suffix,
                     checksum=True, fsync=False)
        self._sf_unsynced = self._sf_unsynced | {os.fspath(path)}

    def _commit_files(self, companions):
        """`fsync`s the companion files (of `companions`) written since the last commit."""
        for name in companions:
            path = os.path.join(self._project_dir, name)
            if path in self._sf_unsynced:
                _fsync_with_sidecar(path)
        self._sf_unsynced = frozenset()

    def _write_oracle_state(self, state):
        """Writes `state` to `oracle.json` (checksummed), first moving the state it replaces
        to `oracle.prev.json` when the rotation rule says so (see the module docstring), then
        removes companion and temporary files no state names.

        Unless `_lazy_save`, this is a commit: the companion files it names, `oracle.json`,
        its sidecar and the project directory are `fsync`ed (an unchanged state is not
        written again, only synced if it was not)."""
        text = self._state_text(state)
        durable = not self._lazy_save
        if self._sf_synced and text == self._sf_text:
            # Unchanged: rewriting would only make the previous state the same.
            if durable and not self._sf_durable:
                self._commit_files(self._sf_companions)
                _fsync_with_sidecar(self._get_oracle_fname())
                fsync_directory(self._project_dir)
                self._sf_durable = True
            return
        companions = tuple(self._state_companions(state))
        old = self._sf_text
        if old is None and self._sf_prev_companions is None:
            # The first save of a new search: an `oracle.prev.json` there was left by another.
            if not os.path.lexists(self._prev_oracle_fname()):
                self._sf_prev_companions = ()
        if old is not None and (companions != self._sf_companions or not companions):
            if old != self._sf_prev_text:
                # Not synced: a fallback for a damaged `oracle.json`, not a commit.
                self._write_state_text(self._prev_oracle_fname(), old, fsync=False)
            self._sf_prev_text, self._sf_prev_companions = old, self._sf_companions
        if durable:
            self._commit_files(companions)
        self._write_state_text(self._get_oracle_fname(), text, fsync=durable)
        if durable:
            fsync_directory(self._project_dir)
        self._sf_text, self._sf_companions, self._sf_synced = text, companions, True
        self._sf_durable = durable
        # Stale files appear only when the files to keep change, and temporary ones only
        # when a process was killed while writing: sweep then, and once per process, not on
        # every save (listing a project of many trials costs more than the save).
        swept = (self._sf_companions, self._sf_prev_companions)
        if swept != self._sf_swept:
            self._remove_temporaries()  # once per process (a new search's first save, too)
            self._remove_stale_files()
            self._sf_swept = swept

    def _state_text(self, state):
        """The JSON text of `oracle.json` for `state` (a subclass may encode parts of it
        once and reuse them: it must return exactly this)."""
        return json.dumps(state, default=json_default)

    def _write_state_text(self, path, text, fsync=True):
        atomic_write(path, lambda f: f.write(text), prefix=self._state_tmp_prefix,
                     suffix=".json", checksum=True, fsync=fsync)

    def _remove_stale_files(self):
        keep = set(self._sf_companions) | set(self._sf_prev_companions or ())
        pattern = self._companion_pattern
        # With `oracle.prev.json` of unknown content (a damaged one, or one left by an
        # earlier process that did not reload it), what it names is kept.
        prune = pattern is not None and self._sf_prev_companions is not None
        for name in os.listdir(self._project_dir):
            stale = False
            if prune:
                base = name[: -len(".sha256")] if name.endswith(".sha256") else name
                stale = bool(pattern.fullmatch(base)) and base not in keep
            # A temporary file is left behind only by a process killed while writing.
            if stale or name.startswith(self._state_tmp_prefix):
                try:
                    os.remove(os.path.join(self._project_dir, name))
                except FileNotFoundError:
                    pass

    def _remove_temporaries(self):
        """Removes the temporary files of this oracle's interrupted writes (a process killed
        while writing a state file, a `trial.json` or a sidecar) from the project and the
        trials' directories. Their prefix is this oracle's own: no other writer (a worker
        saving a checkpoint) names a file so. Once per process: at reload, else at the first
        save (listing every trial's directory of a large project is not free)."""
        if self._sf_temps_swept:
            return
        self._sf_temps_swept = True
        remove_temporaries(self._project_dir, prefix=self._state_tmp_prefix)
        for name in os.listdir(self._project_dir):
            directory = os.path.join(self._project_dir, name)
            if name.startswith("trial_") and os.path.isdir(directory):
                remove_temporaries(directory, prefix=self._state_tmp_prefix)

    # -------------------------------------------------------------- reloading
    def _read_state_file(self, path, companions=True):
        """`(text, state)` of a state file (whose companion files are readable, with
        `companions=True`); raises `_Damaged` naming the file that is not."""
        try:
            state = read_json(path)
        except CorruptFileError as e:
            raise _Damaged(path, str(e)) from None
        if not isinstance(state, dict):
            raise _Damaged(path, f"{path!r} does not hold an oracle state (a JSON object).")
        for name in self._state_companions(state) if companions else ():
            companion = os.path.join(self._project_dir, name)
            try:
                self._check_companion(companion, state)
            except CorruptFileError as e:
                raise _Damaged(companion, str(e)) from None
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text, state

    def _read_trial_files(self):
        """`({trial_id: Trial}, {trial_id: (path, reason)})` of the project's trial files."""
        trials, damaged = {}, {}
        pattern = os.path.join(glob.escape(self._project_dir), "trial_*", "trial.json")
        for path in sorted(glob.glob(pattern)):
            match = _TRIAL_DIR.match(os.path.basename(os.path.dirname(path)))
            try:
                trial = trial_module.Trial.from_state(read_json(path))
            except CorruptFileError as e:
                damaged[match.group(1)] = (path, str(e))
            except Exception as e:  # Valid JSON that is not a trial.
                damaged[match.group(1)] = (
                    path,
                    f"{path!r} does not hold a KerasTuner trial ({first_line(e)}): damaged.",
                )
            else:
                trials[trial.trial_id] = trial
        return trials, damaged

    def _unusable(self, damage, what):
        path, reason = damage[0]
        others = ", ".join(repr(p) for p, _ in damage[1:])
        others = f" (also damaged: {others})" if others else ""
        project = self._project_dir
        return SearchStateError(
            f"Cannot resume the search in {project!r}: {reason} {what}{others}. Nothing was "
            f"changed. To start the search afresh, pass `overwrite=True` (`--overwrite`) or "
            f"delete {project!r}; to resume it, restore {os.path.basename(path)!r}."
        )

    def reload(self):
        """Reloads the trials and the oracle state as KerasTuner does, but checks each file:
        see the module docstring for what happens to damaged ones."""
        current, prev = self._get_oracle_fname(), self._prev_oracle_fname()
        trials, damaged_trials = self._read_trial_files()

        loaded, damage = None, []
        for path in (current, prev):
            if path == prev and not os.path.exists(prev):
                break
            try:
                loaded = (path, *self._read_state_file(path))
                break
            except _Damaged as e:
                if e.path not in [p for p, _ in damage]:
                    damage.append((e.path, e.reason))
        if loaded is None:
            raise self._unusable(
                damage, f"No earlier consistent state ({PREV_STATE_FILE}) is usable"
            )
        path, text, state = loaded
        prev_text, prev_companions = None, None
        if path == current and os.path.exists(prev):
            try:
                prev_text, prev_state = self._read_state_file(prev, companions=False)
                prev_companions = tuple(self._state_companions(prev_state))
            except _Damaged as e:
                # Not needed now; set aside below so that it is never taken for a fallback.
                damage.append((e.path, e.reason))
        elif path == prev:
            prev_text, prev_companions = text, tuple(self._state_companions(state))

        # The trials: those the state never recorded are drawn again; damaged files of
        # recorded ones get a placeholder until their values are recovered below.
        started = set(state.get("start_order", []))
        dropped = sorted(t for t in trials if t not in started)
        self.trials.clear()
        self.trials.update({k: v for k, v in trials.items() if k in started})
        for trial_id in damaged_trials:
            if trial_id in started:
                self.trials[trial_id] = trial_module.Trial(
                    self.hyperparameters.copy(), trial_id=trial_id,
                    status=trial_module.TrialStatus.RUNNING,
                )
        try:
            self.set_state(state)
        except KeyError as e:
            raise RuntimeError(
                "Error reloading `Oracle` from existing project. If you did not mean to reload "
                "from an existing project, change the `project_name` or pass `overwrite=True` "
                f"when creating the `Tuner`. Found existing project at: {self._project_dir}"
            ) from e
        rerun = self._recover_damaged_trials(damaged_trials, started)

        # Nothing was changed on disk up to here; now set the damaged files aside, and remove
        # what interrupted writes left.
        self._remove_temporaries()
        if path == prev:
            moved = [repr(set_aside(p)) for p, _ in damage if os.path.exists(p)]
            reasons = " ".join(reason for _, reason in damage)
            moved = f" Set aside as {', '.join(moved)};" if moved else ""
            again = f"; trials {dropped} are drawn and run again" if dropped else ""
            logger.warning("%s%s the search resumes from the previous state %r%s.",
                           reasons, moved, prev, again)
        elif damage:  # only a damaged `oracle.prev.json`, not used
            p, reason = damage[0]
            logger.warning("%s Set aside as %r; the search resumes from %r, with no earlier "
                           "state to fall back to until the next save.", reason, set_aside(p),
                           current)
        for trial_id, (trial_path, reason) in sorted(damaged_trials.items()):
            target = set_aside(trial_path)
            what = (f"trial {trial_id} is run again" if trial_id in rerun
                    else f"trial {trial_id} was never recorded by the oracle state and is drawn "
                    "again")
            logger.warning("%s Set aside as %r; %s.", reason, target, what)

        self._sf_text, self._sf_companions = text, tuple(self._state_companions(state))
        self._sf_synced = path == current
        self._sf_durable = False  # unknown: the next commit syncs what it finds
        self._sf_prev_text, self._sf_prev_companions = prev_text, prev_companions
        if path == current and not os.path.exists(prev):
            self._sf_prev_companions = ()

        self._resume_running_trials()

    def _resume_running_trials(self):
        """At reload, after the state is set: the trials that were running are run again, as
        KerasTuner does (`tuners.trial_leases.TrialLeaseMixin` keeps them running instead on a
        restarted chief)."""
        for _, trial in self.ongoing_trials.items():
            self._retry_queue.append(trial.trial_id)
        self.ongoing_trials = {}

    def _recover_damaged_trials(self, damaged, started):
        """Gives each recorded trial whose file is damaged its values back and queues it to
        run again; raises `SearchStateError` (nothing changed yet) when that cannot be done
        safely. Returns the ids queued."""
        rerun = []
        for trial_id, (path, reason) in sorted(damaged.items()):
            if trial_id not in started:
                continue
            values = self._recover_trial_values(trial_id)
            trial = self.trials[trial_id]
            if values is not None:
                trial.hyperparameters = self.hyperparameters.copy()
                trial.hyperparameters.values = dict(values)
                trial.hyperparameters.ensure_active_values()
                recorded = self._values_hashes.get(trial_id)
                actual = values_hash(trial.hyperparameters.values)
                if recorded is not None and recorded != actual:
                    values = None
            if values is None:
                raise self._unusable(
                    [(path, reason)],
                    f"The oracle state does not record trial {trial_id}'s hyperparameters, so "
                    "it cannot be run again",
                )
            trial.status = trial_module.TrialStatus.RUNNING
            self.end_order = [t for t in self.end_order if t != trial_id]
            self.ongoing_trials = {
                k: v for k, v in self.ongoing_trials.items() if v.trial_id != trial_id
            }
            if trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)
            rerun.append(trial_id)
        return rerun


def _fsync_with_sidecar(path):
    for name in (path, checksum_path(path)):
        try:
            fsync_file(name)
        except FileNotFoundError:
            pass


class _Damaged(Exception):
    def __init__(self, path, reason):
        super().__init__(reason)
        self.path, self.reason = path, reason
