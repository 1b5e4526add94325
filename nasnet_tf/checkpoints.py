"""Training checkpoints on disk: each file written whole and checksummed, checked when read.

`output_dir/checkpoints/` holds, per kept epoch N, `epoch-NNNNN.weights.h5` and
`epoch-NNNNN.state.json` (with `.sha256` sidecars), and `state.json`, a copy of the newest state.
`nasnet_tf.callbacks.EpochCheckpoint` writes them; `train` reads them back through `scan` and
`restore`, falling back past damaged ones.
"""

import dataclasses
import logging
import pathlib
import re

import numpy as np

from nasnet_tf.io_utils import CorruptFileError, check_file, first_line, read_json, set_aside

__all__ = ["CHECKPOINT_DIR", "STATE_FILE", "CheckpointError", "latest_checkpoint"]

logger = logging.getLogger("nasnet_tf.training")

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"


class CheckpointError(CorruptFileError):
    """A run cannot be resumed: no checkpoint left in its `output_dir` is usable.

    A `ValueError` (through `nasnet_tf.io_utils.CorruptFileError`) whose message is one line
    naming the newest damaged file and the way out. Nothing was renamed or deleted.
    """


_EPOCH_FILE = re.compile(r"^epoch-(\d+)\.(weights\.h5|state\.json)$")


def weights_name(epoch):
    return f"epoch-{epoch:05d}.weights.h5"


def state_name(epoch):
    return f"epoch-{epoch:05d}.state.json"


def seed_states(model):
    # Seed-generator states (drop path, dropout) are not in `save_weights`; keep them so a
    # resumed run draws the noise an uninterrupted one would.
    return [v for v in model.variables if "seed_generator_state" in v.path]


def epoch_files(directory):
    """`{epoch: {"weights": path, "state": path}}` of the checkpoint files in `directory`."""
    found = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = _EPOCH_FILE.match(path.name)
            if match:
                kind = "weights" if match[2] == "weights.h5" else "state"
                found.setdefault(int(match[1]), {})[kind] = path
    return found


def _read_state(path):
    state = read_json(path)
    if not (isinstance(state, dict) and isinstance(state.get("epoch"), int)
            and isinstance(state.get("weights"), str)):
        raise CorruptFileError(
            f"{str(path)!r} does not hold a checkpoint state (an `epoch` and a `weights` file)."
        )
    return state


@dataclasses.dataclass
class _Checkpoint:
    """A checkpoint found on disk: its state (`None` when unusable) and its damaged files, each
    `(path, reason)`; a reason of `None` marks a file set aside with a damaged one."""

    epoch: int | None
    state: dict | None = None
    state_path: pathlib.Path | None = None
    weights: pathlib.Path | None = None
    damage: list = dataclasses.field(default_factory=list)

    def reject(self, path, reason):
        """Marks the checkpoint unusable: `path` is damaged, its other files go aside with it."""
        self.damage.append((path, reason))
        for companion in (self.weights, self.state_path):
            listed = any(companion == p for p, _ in self.damage)
            if companion is not None and companion.exists() and not listed:
                self.damage.append((companion, None))
        self.state = None


def scan(directory):
    """The finished epochs' checkpoints in `directory`, newest first, each with its state read
    and its weights file checked (not loaded). A damaged `state.json` comes first, as an entry
    without a state; a weights file without a state (a kill before its state was written)
    belongs to no finished epoch and is not listed."""
    files = epoch_files(directory)
    pointer_path = directory / STATE_FILE
    pointer, found = None, []
    if pointer_path.exists():
        try:
            pointer = _read_state(pointer_path)
        except CorruptFileError as e:
            found.append(_Checkpoint(None, damage=[(pointer_path, str(e))]))
    epochs = {epoch for epoch, kinds in files.items() if "state" in kinds}
    # `state.json` is a copy of the newest state: what runs from before per-epoch states
    # have, and a spare for a damaged `epoch-N.state.json`.
    if pointer is not None and (not epochs or pointer["epoch"] in epochs):
        epochs.add(pointer["epoch"])
    for epoch in sorted(epochs, reverse=True):
        checkpoint = _Checkpoint(epoch, state_path=files.get(epoch, {}).get("state"))
        if checkpoint.state_path is not None:
            try:
                checkpoint.state = _read_state(checkpoint.state_path)
            except CorruptFileError as e:
                checkpoint.damage.append((checkpoint.state_path, str(e)))
        if checkpoint.state is None and pointer is not None and pointer["epoch"] == epoch:
            checkpoint.state = pointer
        if checkpoint.state is not None:
            checkpoint.weights = directory / pathlib.Path(checkpoint.state["weights"]).name
            try:
                check_file(checkpoint.weights,
                           expected_sha256=checkpoint.state.get("weights_sha256"))
            except CorruptFileError as e:
                checkpoint.reject(checkpoint.weights, str(e))
        found.append(checkpoint)
    return found


def _public_state(checkpoint):
    return {**checkpoint.state, "weights": str(checkpoint.weights)}


def unusable(output_dir, checkpoints):
    """The one-line `CheckpointError` for a run whose checkpoints are all damaged."""
    damage = [(path, reason) for c in checkpoints for path, reason in c.damage if reason]
    path, reason = damage[0]
    others = ", ".join(repr(p.name) for p, _ in damage[1:])
    others = f" (also damaged: {others})" if others else ""
    return CheckpointError(
        f"Cannot resume the training run in {str(output_dir)!r}: {reason} No earlier "
        f"checkpoint is usable{others}. Nothing was changed. To start afresh, pass --overwrite "
        f"or delete {str(path.parent)!r}."
    )


def latest_checkpoint(output_dir):
    """The last finished epoch's state (`dict` with `epoch`, `weights`, `history`, ...) of a
    run in `output_dir` whose files pass their checks, or `None` if it has none.

    Reads only (damaged files are left where they are; `train` sets them aside). Raises
    `CheckpointError` when the run has checkpoints but every one is damaged.
    """
    checkpoints = scan(pathlib.Path(output_dir) / CHECKPOINT_DIR)
    for checkpoint in checkpoints:
        if checkpoint.state is not None:
            return _public_state(checkpoint)
    if checkpoints:
        raise unusable(output_dir, checkpoints)
    return None


def _load(model, checkpoint):
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(checkpoint.weights)
    seeds = seed_states(model)
    saved = checkpoint.state.get("seed_states") or []
    if len(saved) == len(seeds):
        for variable, value in zip(seeds, saved):
            variable.assign(np.asarray(value, dtype=variable.dtype))


def restore(model, output_dir, checkpoints, set_aside_damaged=True):
    """Loads the newest usable checkpoint into `model` and returns its state.

    A damaged one is set aside (`*.corrupt`, with its companion files) only once an earlier one
    has loaded, with one warning naming both; with none usable, `CheckpointError` and nothing
    renamed. With `set_aside_damaged=False` (the processes of a multi-host run other than
    process 0, which share the directory) damaged files are skipped but left in place.
    """
    for index, checkpoint in enumerate(checkpoints):
        if checkpoint.state is None:
            continue
        try:
            _load(model, checkpoint)
        except Exception as e:
            checkpoint.reject(checkpoint.weights,
                              f"{str(checkpoint.weights)!r} cannot be loaded ({first_line(e)}).")
            continue
        damage = [entry for c in checkpoints[:index + 1] for entry in c.damage]
        if damage and set_aside_damaged:
            moved = ", ".join(repr(pathlib.Path(set_aside(p)).name) for p, _ in damage)
            reasons = " ".join(reason for _, reason in damage if reason)
            logger.warning("%s Set aside as %s; falling back to %r (epoch %d).", reasons, moved,
                           str(checkpoint.weights), checkpoint.epoch)
        return _public_state(checkpoint)
    raise unusable(output_dir, checkpoints)
