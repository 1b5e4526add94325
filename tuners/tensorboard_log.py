"""The controller's training curves as TensorBoard scalars, written without TensorFlow.

`ControllerScalars(project_dir).write(oracle)` appends, for every controller update not yet in
`<project_dir>/tensorboard/controller`, one event per scalar at `step = update number`:

- `reward/mean`, `reward/best`, `reward/min`, `reward/baseline`: the update's batch of rewards
  and the moving-average baseline after it;
- `controller/entropy`, `controller/loss`, `ppo/approx_kl`, and when the oracle records them
  `ppo/clip_fraction`, `ppo/steps`; `trials/failures`, the failed trials rewarded so far
  (the oracle's `num_failures`, else counted from its `failure_indices` or, for older runs,
  from the trials' statuses);
- per cell type (`normal`, `reduction`) and choice, summed over the blocks of that cell:
  `{cell}/op/{op}`, `{cell}/input/{state}` (state 0 is h_i, 1 is h_{i-1}, 2 + k block k's
  output) and `{cell}/combine/{add|concat}`: the probability of that choice along the
  controller's most likely path (`decision_probs` of the update). Runs whose updates carry no
  `decision_probs` get `{cell}/op_sampled/{op}` etc. instead: the same sums over the frequency
  of each choice among the trials of the update's batch.

Events go through TensorBoard's own `RecordWriter` and `Event` / `Summary` protos (no
TensorFlow import, so it works under any Keras backend). Each `ControllerScalars` appends to a
file of its own and, on its first write, reads the steps already in the folder, so a resumed
search (a new process) writes each update exactly once. Oracles without a controller (KerasTuner's
`RandomSearchOracle`, an evolution oracle) have nothing to write.
"""

import itertools
import json
import os
import socket
import struct
import time

import keras_tuner

from tuners.decisions import decision_values
from tuners.nasnet_space import parse_hp_name

__all__ = [
    "ControllerScalars",
    "cell_preferences",
    "controller_history",
    "controller_scalars",
    "decision_specs",
    "prob_distributions",
    "read_scalars",
    "update_batches",
    "update_distributions",
    "write_controller_scalars",
]

STATE_KEY = "controller_oracle"
DEFAULT_SUBDIR = os.path.join("tensorboard", "controller")
_KIND = {"input_a": "input", "input_b": "input", "op_a": "op", "op_b": "op", "combine": "combine"}
_FAILED = ("FAILED", "INVALID")
# (stats key, tag); the first four are always in the controller's history.
_STAT_TAGS = (
    ("reward_mean", "reward/mean"),
    ("reward_max", "reward/best"),
    ("reward_min", "reward/min"),
    ("baseline", "reward/baseline"),
    ("entropy", "controller/entropy"),
    ("loss", "controller/loss"),
    ("approx_kl", "ppo/approx_kl"),
    ("clip_fraction", "ppo/clip_fraction"),
    ("ppo_steps", "ppo/steps"),
)
_file_ids = itertools.count()


def _controller_state(state):
    own = state.get(STATE_KEY) if isinstance(state, dict) else None
    return own if isinstance(own, dict) else None


def controller_history(state):
    """The per-update stats dicts of an oracle state (`oracle.json`), `[]` when none."""
    own = _controller_state(state)
    controller = (own or {}).get("controller") or {}
    history = controller.get("history") or []
    return [h for h in history if isinstance(h, dict) and "update" in h]


def decision_specs(state):
    """The controller's decisions as `[(hp_name, values)]`, in prediction order.

    Names come from the state's `decision_names` when present, else from its `signature`
    (older oracles); the values from the space saved with the oracle.

    Args:
        state: an oracle state (`oracle.get_state()` or the parsed `oracle.json`).

    Returns:
        A list of `(name, tuple_of_values)`; `[]` for an oracle without a controller.
    """
    own = _controller_state(state)
    if own is None:
        return []
    names = own.get("decision_names")
    if not names:
        names = [entry[0] for entry in own.get("signature") or []]
    space = {}
    if state.get("hyperparameters"):
        hps = keras_tuner.HyperParameters.from_config(state["hyperparameters"])
        space = {hp.name: hp for hp in hps.space}
    specs = []
    for name in names:
        values = decision_values(space[name]) if name in space else None
        specs.append((name, tuple(values) if values is not None else ()))
    return specs


def _batch_slices(state):
    """`{update: (start, end)}` into the state's `rewards`; `{}` when they do not add up."""
    own = _controller_state(state) or {}
    rewards = own.get("rewards") or []
    history = controller_history(state)
    if not history:
        return {}
    pending = len(own.get("pending") or [])
    default = own.get("update_every") or (
        (len(rewards) - pending) // len(history) if len(rewards) > pending else 0
    )
    slices, start = {}, 0
    for stats in history:
        size = int(stats.get("batch_size") or default)
        if size < 1 or start + size > len(rewards):
            return {}
        slices[int(stats["update"])] = (start, start + size)
        start += size
    return slices


def update_batches(state):
    """The ids (trial ids, for trials) whose rewards formed each controller update,
    `{update: [id, ...]}`.

    The controller takes its rewards in arrival order, `batch_size` at a time, so update u's
    batch is the slice of `rewards` after the earlier batches. Returns `{}` when the history
    and the rewards do not add up (e.g. a space that changed mid-search).
    """
    rewards = (_controller_state(state) or {}).get("rewards") or []
    return {
        update: [str(r[0]) for r in rewards[start:end]]
        for update, (start, end) in _batch_slices(state).items()
    }


def _failures_so_far(state, statuses):
    """`{update: failed rewards up to and including its batch}`, from the state's
    `failure_indices`, else from the trials' statuses; `{}` when neither is known."""
    own = _controller_state(state) or {}
    slices = _batch_slices(state)
    indices = own.get("failure_indices")
    if indices is not None:
        return {u: sum(1 for i in indices if i < end) for u, (_, end) in slices.items()}
    if statuses is None:
        return {}
    failed = [statuses.get(str(r[0])) in _FAILED for r in own.get("rewards") or []]
    return {u: sum(failed[:end]) for u, (_, end) in slices.items()}


def _parse(name):
    parsed = parse_hp_name(name)
    if parsed is None:
        return None
    cell, block, field = parsed
    return cell, block, _KIND[field]


def cell_preferences(distributions):
    """Sums each choice's probability over the blocks of each cell type.

    Args:
        distributions: `{hp_name: {value: probability}}` for NASNet decisions (names like
            `"normal_b0_op_a"`); other names are ignored.

    Returns:
        `{cell: {kind: {value: summed probability}}}` with `cell` in `("normal", "reduction")`
        and `kind` in `("op", "input", "combine")`; choices keep their first-seen order.

    Example:

    >>> prefs = cell_preferences({"normal_b0_op_a": {"identity": 0.75, "conv_1x1": 0.25},
    ...                           "normal_b0_op_b": {"identity": 0.5, "conv_1x1": 0.5}})
    >>> prefs["normal"]["op"]
    {'identity': 1.25, 'conv_1x1': 0.75}
    """
    out = {}
    for name, dist in distributions.items():
        parsed = _parse(name)
        if parsed is None:
            continue
        cell, _, kind = parsed
        sums = out.setdefault(cell, {}).setdefault(kind, {})
        for value, p in dist.items():
            sums[value] = sums.get(value, 0.0) + float(p)
    return out


def prob_distributions(specs, probs):
    """`{hp_name: {value: probability}}` of one update's `decision_probs`, or `None` when
    they do not fit the decisions `specs` (from `decision_specs`)."""
    if not isinstance(probs, (list, tuple)) or len(probs) != len(specs):
        return None
    out = {}
    for (name, values), p in zip(specs, probs):
        if not isinstance(p, (list, tuple)) or len(p) != len(values):
            return None
        out[name] = dict(zip(values, (float(x) for x in p)))
    return out


def _sampled_distributions(specs, trial_ids, trial_decisions):
    decisions = [trial_decisions.get(t) for t in trial_ids]
    decisions = [d for d in decisions if d is not None and len(d) == len(specs)]
    if not decisions:
        return None
    out = {}
    for j, (name, values) in enumerate(specs):
        dist = dict.fromkeys(values, 0.0)
        for d in decisions:
            if 0 <= d[j] < len(values):
                dist[values[d[j]]] += 1.0 / len(decisions)
        out[name] = dist
    return out


def update_distributions(state):
    """Each update's choice distributions: `{update: (source, {hp_name: {value: p}})}`.

    `source` is `"probs"` (the update's `decision_probs`) or `"sampled"` (frequencies among
    the trials of its batch, for oracles that record no `decision_probs`). Updates with
    neither are left out.
    """
    specs = decision_specs(state)
    if not specs:
        return {}
    own = _controller_state(state)
    trial_decisions = {str(k): v for k, v in (own.get("trial_decisions") or {}).items()}
    batches = None
    out = {}
    for stats in controller_history(state):
        update = int(stats["update"])
        dists = prob_distributions(specs, stats.get("decision_probs"))
        if dists is not None:
            out[update] = ("probs", dists)
            continue
        if batches is None:
            batches = update_batches(state)
        dists = _sampled_distributions(specs, batches.get(update, []), trial_decisions)
        if dists is not None:
            out[update] = ("sampled", dists)
    return out


def controller_scalars(state, statuses=None):
    """The scalars of every controller update of an oracle state, as TensorBoard tags.

    Args:
        state: an oracle state (`oracle.get_state()` or the parsed `oracle.json`).
        statuses: optional `{trial_id: status}`, to count failed trials when the oracle
            records neither `num_failures` nor `failure_indices`.

    Returns:
        A list of `(update, {tag: float})`, by update; `[]` for an oracle without a controller.
        The tags are listed in the module docstring.
    """
    history = controller_history(state)
    if not history:
        return []
    dists = update_distributions(state)
    failures = _failures_so_far(state, statuses)
    rows = []
    for stats in history:
        update = int(stats["update"])
        scalars = {}
        for key, tag in _STAT_TAGS:
            value = stats.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars[tag] = float(value)
        if isinstance(stats.get("num_failures"), (int, float)):
            scalars["trials/failures"] = float(stats["num_failures"])
        elif update in failures:
            scalars["trials/failures"] = float(failures[update])
        if update in dists:
            source, dist = dists[update]
            suffix = "" if source == "probs" else "_sampled"
            for cell, kinds in cell_preferences(dist).items():
                for kind, sums in kinds.items():
                    for value, p in sums.items():
                        scalars[f"{cell}/{kind}{suffix}/{value}"] = p
        rows.append((update, scalars))
    return rows


# ------------------------------------------------------------------- event files
def _masked_crc(data):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    return masked_crc32c(data)


def _records(path):
    """The payloads of a TFRecord file, stopping at a truncated or corrupt record."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        end = pos + 12 + length + 4
        if header_crc != _masked_crc(header) or end > len(data):
            return
        payload = data[pos + 12 : pos + 12 + length]
        (crc,) = struct.unpack("<I", data[end - 4 : end])
        if crc != _masked_crc(payload):
            return
        yield payload
        pos = end


def _event_files(logdir):
    if not os.path.isdir(logdir):
        return []
    return sorted(
        os.path.join(logdir, n) for n in os.listdir(logdir) if ".tfevents." in n
    )


def read_scalars(logdir):
    """The scalars in a folder's event files, `{tag: [(step, value), ...]}` sorted by step.

    A light reader for checks and reports (TensorBoard's own reader gives the same values).
    """
    from tensorboard.compat.proto import event_pb2

    out = {}
    for path in _event_files(logdir):
        for payload in _records(path):
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    out.setdefault(value.tag, []).append((int(event.step), value.simple_value))
    return {tag: sorted(points) for tag, points in sorted(out.items())}


def _written_steps(logdir):
    return {step for points in read_scalars(logdir).values() for step, _ in points}


class ControllerScalars:
    """Writes a controller's per-update scalars to TensorBoard event files, each update once.

    Call `write(oracle)` whenever the oracle may have updated its controller (a tuner calls it
    at each trial end); only the updates not yet in `logdir` are written, at
    `step = update number`, so calling it again, or from a resumed search, duplicates nothing.
    See the module docstring for the tags. `tensorboard --logdir <project_dir>/tensorboard`
    shows them.

    Args:
        project_dir: the KerasTuner project folder (e.g. `tuner.project_dir`).
        subdir: the event folder inside `project_dir`. Defaults to `"tensorboard/controller"`.

    Example:

    ```python
    class Tuner(NASNetTuner):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.scalars.write(self.oracle)

    tuner = Tuner(num_blocks=1, num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
                  classes=4, max_trials=4, oracle_kwargs={"update_every": 2},
                  directory="/tmp/nas", overwrite=True)
    tuner.scalars = ControllerScalars(tuner.project_dir)
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    read_scalars(tuner.scalars.logdir)["reward/mean"]  # [(1, ...), (2, ...)]
    ```
    """

    def __init__(self, project_dir, subdir=DEFAULT_SUBDIR):
        if not isinstance(subdir, str) or not subdir or os.path.isabs(subdir):
            raise ValueError(
                "`subdir` must be a relative folder name inside the project. "
                f"Received: subdir={subdir!r}"
            )
        self.project_dir = os.fspath(project_dir)
        self.logdir = os.path.join(self.project_dir, subdir)
        self._written = None
        self._path = None

    def write(self, oracle, statuses=None):
        """Appends the updates of `oracle` not written yet.

        Args:
            oracle: a KerasTuner `Oracle` (any: only a `ControllerOracle` has updates), or an
                oracle state dict (the parsed `oracle.json`).
            statuses: with a state dict, optional `{trial_id: status}` to count failures (an
                `Oracle` gives its own).

        Returns:
            The number of updates written by this call.
        """
        if isinstance(oracle, dict):
            state = oracle
        elif isinstance(oracle, keras_tuner.Oracle):
            state = oracle.get_state()
            statuses = {str(t.trial_id): t.status for t in oracle.trials.values()}
        else:
            raise ValueError(
                "`oracle` must be a keras_tuner.Oracle or an oracle state dict. "
                f"Received: oracle={oracle!r}"
            )
        if not controller_history(state):
            return 0
        if self._written is None:
            self._written = _written_steps(self.logdir)
        rows = [(s, v) for s, v in controller_scalars(state, statuses) if s not in self._written]
        if not rows:
            return 0
        self._append(rows)
        self._written.update(step for step, _ in rows)
        return len(rows)

    def _append(self, rows):
        from tensorboard.compat.proto import event_pb2, summary_pb2

        events = []
        now = time.time()
        if self._path is None:
            os.makedirs(self.logdir, exist_ok=True)
            self._path = os.path.join(
                self.logdir,
                f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}."
                f"{next(_file_ids)}.controller",
            )
            events.append(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))
        for step, scalars in rows:
            values = [summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in scalars.items()]
            events.append(
                event_pb2.Event(wall_time=now, step=step, summary=summary_pb2.Summary(value=values))
            )
        from tensorboard.summary.writer.record_writer import RecordWriter

        with open(self._path, "ab") as f:
            writer = RecordWriter(f)
            for event in events:
                writer.write(event.SerializeToString())
            f.flush()
            os.fsync(f.fileno())


def write_controller_scalars(project_dir, subdir=DEFAULT_SUBDIR):
    """Writes the scalars of a saved search (its `oracle.json`) not yet in its event folder.

    For runs made without the tuner hook, or to refresh the curves of a search running in
    another process.

    Args:
        project_dir: the KerasTuner project folder holding `oracle.json`.
        subdir: as for `ControllerScalars`.

    Returns:
        The number of updates written.

    Raises:
        ValueError: when `project_dir` holds no readable `oracle.json`.
    """
    path = os.path.join(os.fspath(project_dir), "oracle.json")
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"`project_dir` must hold a readable KerasTuner oracle.json ({error}). "
            f"Received: project_dir={project_dir!r}"
        ) from error
    statuses = {}
    for name in sorted(os.listdir(project_dir)):
        trial_path = os.path.join(project_dir, name, "trial.json")
        if name.startswith("trial_") and os.path.isfile(trial_path):
            try:
                with open(trial_path) as f:
                    trial = json.load(f)
                statuses[str(trial["trial_id"])] = trial.get("status")
            except (OSError, ValueError, KeyError):
                continue  # A trial file being written; its failure count comes later.
    return ControllerScalars(project_dir, subdir).write(state, statuses=statuses)
