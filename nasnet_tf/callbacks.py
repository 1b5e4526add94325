"""The training callbacks: `EpochCheckpoint` (resumable, checksummed checkpoints) and
`DropPathScheduler` (ScheduledDropPath's progress from the optimizer's step count)."""

import pathlib

import keras
from keras import ops

from nasnet_tf import checkpoints, multihost, validators
from nasnet_tf.cell import set_drop_path_progress
from nasnet_tf.io_utils import atomic_save, checksum_path, write_json

__all__ = ["DropPathScheduler", "EpochCheckpoint"]


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes a resumable checkpoint at every epoch end, each file whole and checksummed.

    `output_dir/checkpoints/` holds, per kept epoch N, `epoch-NNNNN.weights.h5` (model weights
    and optimizer state) and `epoch-NNNNN.state.json` (the finished epoch count, the weights
    file and its SHA-256, the random-generator states, the metric history), each with a
    `.sha256` sidecar; `state.json` is a copy of the newest state. The weights are written
    first, the states once they are complete, then checkpoints older than the newest `keep`
    are removed. A process killed at any point leaves the previous checkpoints and maybe a
    complete new one, never a partial one; a file damaged later fails its check on resume.

    Keras' `BackupAndRestore` does the same job but writes its files in place (a kill while
    writing leaves a truncated file next to its backup) and sets the private
    `model._initial_epoch`; this callback lets `train` pass `initial_epoch` to `fit` itself.

    Args:
        output_dir: the run's directory.
        history: metric history of earlier, resumed epochs (extended here).
        config: the run's `TrainConfig` as a dict (recorded in the state).
        keep: how many of the newest checkpoints to keep (at least 1).
        write: whether this process writes the files (default: process 0 of a multi-host run,
            `nasnet_tf.multihost.is_chief()`, the only one there). Every process runs the
            callback in step; one that does not write only keeps the history. Nothing here
            enters a collective: the weights of a data-parallel model are replicated, so
            process 0 reads them from its own devices.
    """

    def __init__(self, output_dir, history=None, config=None, keep=2, write=None):
        super().__init__()
        keep = validators.positive_int(keep, "keep")
        self.directory = pathlib.Path(output_dir) / checkpoints.CHECKPOINT_DIR
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.config = config
        self.keep = keep
        self.write = multihost.is_chief() if write is None else bool(write)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.save(epoch + 1)

    def save(self, epochs_done, completed=False):
        if not self.write:
            return
        with multihost.outside_distribution():
            self._save(epochs_done, completed)

    def _save(self, epochs_done, completed):
        self.directory.mkdir(parents=True, exist_ok=True)
        name = checkpoints.weights_name(epochs_done)
        digest = atomic_save(self.directory / name, self.model.save_weights, checksum=True)
        state = {
            "epoch": epochs_done,
            "weights": name,
            "weights_sha256": digest,
            "completed": completed,
            "seed_states": [
                ops.convert_to_numpy(v).tolist() for v in checkpoints.seed_states(self.model)
            ],
            "history": self.history,
            "config": self.config,
        }
        write_json(self.directory / checkpoints.state_name(epochs_done), state, sort_keys=True,
                   checksum=True)
        write_json(self.directory / checkpoints.STATE_FILE, state, sort_keys=True, checksum=True)
        for epoch, kinds in checkpoints.epoch_files(self.directory).items():
            if epoch <= epochs_done - self.keep:
                for path in kinds.values():
                    path.unlink(missing_ok=True)
                    pathlib.Path(checksum_path(path)).unlink(missing_ok=True)


class DropPathScheduler(keras.callbacks.Callback):
    """Raises ScheduledDropPath's progress linearly from 0 to 1 over `total_steps` train steps.

    Progress is read from the optimizer's iteration count, so a resumed run continues the
    schedule where it stopped.

    Args:
        total_steps: the number of training steps of the whole run.

    Example:

    >>> scheduler = DropPathScheduler(total_steps=1000)
    """

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = validators.positive_int(total_steps, "total_steps")

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        set_drop_path_progress(self.model, min(1.0, step / self.total_steps))
