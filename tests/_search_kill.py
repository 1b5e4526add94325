"""Subprocess helper for tests/test_user_runs.py: `nasnet-tf search ARGS`, SIGKILLed mid-child.

Runs the CLI's own entry point (what the installed `nasnet-tf` binary runs) with every child's
`fit` given one extra callback that SIGKILLs the process, as a crash would, when batch
KILL_BATCH of the KILL_FIT-th child trained in this process begins.

Usage: python tests/_search_kill.py KILL_FIT KILL_BATCH search [ARGS...]
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from nasnet_tf.cli.main import main  # noqa: E402


class KillAtBatch(keras.callbacks.Callback):
    def __init__(self, batch):
        super().__init__()
        self.kill_batch = batch

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.kill_batch:
            print(f"KILLING at batch {batch}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def patch_fit(kill_fit, kill_batch):
    fit, calls = keras.Model.fit, []

    def counted_fit(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == kill_fit:
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), KillAtBatch(kill_batch)]
        return fit(self, *args, **kwargs)

    keras.Model.fit = counted_fit


if __name__ == "__main__":
    patch_fit(int(sys.argv[1]), int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
