"""Subprocess helper for tests/test_training.py's kill-and-resume check.

Trains a tiny NASNet (drop path on, CIFAR-style augmentation) on the digits for 2 epochs of 3
steps into OUTPUT_DIR, under the backend KERAS_BACKEND names (the test passes its own). With
KILL_EPOCH / KILL_BATCH it SIGKILLs itself when that batch starts, as a crash would. On
completion it writes OUTPUT_DIR/final_weights.npz and prints a JSON line; the library's log
lines (e.g. the epoch it resumes from) go to stderr.

Usage: python tests/_train_resume.py OUTPUT_DIR [KILL_EPOCH KILL_BATCH]
"""

import json
import logging
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()

from nasnet_tf.data import load_dataset  # noqa: E402
from nasnet_tf.training import TrainConfig, train  # noqa: E402

# Small: under JAX each process compiles the model afresh, which dominates on a CPU.
EPOCHS, STEPS = 2, 3


class KillAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)


class CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def main():
    output_dir = sys.argv[1]
    # The library's user-facing lines (resuming, damaged checkpoints) go to stderr.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    callbacks = [CountSteps()]
    if len(sys.argv) == 4:
        callbacks.append(KillAt(int(sys.argv[2]), int(sys.argv[3])))
    data = load_dataset("digits", batch_size=16, seed=3, cutout=2)
    config = TrainConfig(
        epochs=EPOCHS, batch_size=16, steps_per_epoch=STEPS, learning_rate=0.05, jit_compile=False,
        verbose=0, tensorboard=False, seed=7,
        model_kwargs=dict(num_cells=1, penultimate_filters=24, auxiliary_head=False,
                          drop_path_keep_prob=0.7, dense_dropout_keep_prob=0.8),
    )
    history = train(None, data, config, output_dir, callbacks=callbacks)
    weights = history.model.get_weights()
    np.savez(os.path.join(output_dir, "final_weights.npz"), *weights)
    print(json.dumps({
        "epochs": len(history.history["loss"]),
        "loss": history.history["loss"],
        "steps_this_process": callbacks[0].steps,
        "iterations": int(keras.ops.convert_to_numpy(history.model.optimizer.iterations)),
    }))


if __name__ == "__main__":
    main()
