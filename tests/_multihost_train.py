"""Subprocess helper of tests/test_multihost.py and benchmarks/multihost_step.py: one training
process of a tiny NASNet on the digits, alone or as process `--process-id` of `--processes`.

    python tests/_multihost_train.py OUTPUT_DIR [--processes N --process-id I --port P]
        [--epochs E] [--steps S] [--pause-after-epoch K]

Trains with `nasnet_tf.training.train` on a global batch of 16 (the same batches whatever
the process count), then saves the model weights to `OUTPUT_DIR/weights-N-I.npz`.
`--pause-after-epoch K` makes the last process, once epoch K's checkpoint is written, write
`OUTPUT_DIR/paused` and sleep (the test kills it there). `--time-steps` prints the median
train-step time instead (the benchmark).
"""

import argparse
import os
import pathlib
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nasnet_tf import multihost  # noqa: E402

GLOBAL_BATCH = 16


def GENOTYPE(Genotype):  # noqa: N802, N803 (imported late: after the backend is chosen)
    # A small NASNet (one block per cell) whose train step JAX compiles in seconds on a CPU.
    return Genotype(normal=[(0, 1, "conv_1x1", "identity")],
                    reduction=[(0, 1, "conv_1x1", "max_pool_3x3")])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--pause-after-epoch", type=int)
    parser.add_argument("--heartbeat-timeout", type=int, default=10)
    parser.add_argument("--time-steps", action="store_true")
    args = parser.parse_args()
    if args.processes > 1:
        multihost.initialize(f"127.0.0.1:{args.port}", args.processes, args.process_id,
                             heartbeat_timeout=args.heartbeat_timeout, initialization_timeout=60)

    import keras
    import numpy as np

    from nasnet_tf.data import load_dataset
    from nasnet_tf.genotype import Genotype
    from nasnet_tf.training import TrainConfig, train

    out = pathlib.Path(args.output_dir)
    fed = _record_fed_batches()
    data = load_dataset("digits", batch_size=GLOBAL_BATCH, validation_split=0.0)
    config = TrainConfig(
        epochs=args.epochs, steps_per_epoch=args.steps, batch_size=GLOBAL_BATCH,
        scale_batch_with_replicas=False, verbose=0, tensorboard=False, drop_path=False,
        model_kwargs=dict(num_cells=1, penultimate_filters=24, auxiliary_head=False,
                          drop_path_keep_prob=1.0),
    )

    class Pause(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            last = args.process_id == args.processes - 1
            if last and epoch + 1 == args.pause_after_epoch:
                while not (out / "checkpoints" / "state.json").exists():
                    time.sleep(0.1)  # process 0's checkpoint of this epoch
                (out / "paused").write_text(str(epoch + 1))
                time.sleep(600)

    class StepTimer(keras.callbacks.Callback):
        times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if args.time_steps:
                # Reading the loss waits for the step (JAX dispatches asynchronously).
                float(logs["loss"])
            self.times.append(time.perf_counter() - self.start)

    history = train(GENOTYPE(Genotype), data, config, out, callbacks=[Pause(), StepTimer()])
    # Steps run by this invocation: a resumed run trains only the epochs left.
    print(f"trained_steps={len(StepTimer.times)}", flush=True)
    if args.time_steps:
        steady = sorted(StepTimer.times[1:])  # the first step compiles
        print(f"STEP_SECONDS {steady[len(steady) // 2]:.6f}", flush=True)
    weights = history.model.get_weights()
    np.savez(out / f"weights-{args.processes}-{args.process_id}.npz", *weights)
    # Keras reads the first batches once to build the step, then iterates from the start:
    # the batches trained on are the last ones read.
    steps = len(StepTimer.times)
    trained, start = fed[-steps:], fed[0][0]
    np.savez(out / f"fed-{args.processes}-{args.process_id}.npz",
             epoch=start + np.arange(steps) // args.steps,
             labels=np.stack([y for _, y, _ in trained]),
             sums=np.stack([s for _, _, s in trained]))
    print(f"done {multihost.process_index()}/{multihost.process_count()} "
          f"val_loss={history.history.get('val_loss')}", flush=True)


def _record_fed_batches():
    """Records every training batch this process reads: `(first epoch of the call, labels,
    per-image pixel sums)`, as the batch leaves `ImageDataset.train_epochs` (what `train`
    fits)."""
    import numpy as np
    import tensorflow as tf

    from nasnet_tf.data import ImageDataset

    fed, original = [], ImageDataset.train_epochs

    def train_epochs(self, start_epoch=0, stop_epoch=None, steps_per_epoch=None):
        def record(x, y):
            images = x.numpy().reshape(len(x), -1)
            fed.append((start_epoch, y.numpy(), images.sum(axis=1, dtype="float64")))
            return np.int64(0)

        def tap(x, y, *rest):
            token = tf.py_function(record, [x, y], tf.int64)
            with tf.control_dependencies([token]):
                x = tf.identity(x)
            return (x, y, *rest)

        return original(self, start_epoch, stop_epoch, steps_per_epoch).map(tap)

    ImageDataset.train_epochs = train_epochs
    return fed


if __name__ == "__main__":
    main()
