"""Subprocess helper for tests/test_placement.py: one training step on two replicas vs one.

Devices must be split before TensorFlow / JAX initialise them, hence a fresh process:
TensorFlow gets two logical CPU devices (MirroredStrategy), JAX two host devices
(keras.distribution.DataParallel). Prints one JSON line with the results.

Usage: python tests/_train_replicas.py   (prints {"sync": ..., "per_replica": ..., "train": ...})
"""

import json
import os

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "jax":
    # Two host devices; on a loaded 2-core machine one device's thread can reach a collective
    # long after the other, so give the rendezvous minutes instead of XLA's 40 s.
    os.environ["XLA_FLAGS"] = (
        "--xla_force_host_platform_device_count=2 "
        "--xla_cpu_collective_call_terminate_timeout_seconds=600 "
        "--xla_cpu_collective_timeout_seconds=600"
    )
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nasnet_tf import Block, CellGenotype, Genotype, build_nasnet  # noqa: E402
from nasnet_tf.placement import resolve_strategy  # noqa: E402
from nasnet_tf.training import LabelSmoothingCrossentropy  # noqa: E402

# TensorFlow: eager steps of this tiny model cost less than tracing them. JAX without jit runs
# every op of the step one by one across the two devices (minutes): compiled, seconds.
JIT = BACKEND == "jax"
# Two blocks with a separable conv (two batch normalizations) and a pooling: what the
# replicas must agree on, at a fraction of NASNet-A's compile time (this helper under JAX:
# 60 -> 35 s).
CELL = CellGenotype([Block(0, 1, "sep_conv_3x3", "avg_pool_3x3"),
                     Block(2, 0, "identity", "sep_conv_3x3")])
GENOTYPE = Genotype(CELL, CELL)
TINY = dict(preset="cifar", num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
            auxiliary_head=False, drop_path_keep_prob=1.0, classes=4)


def one_step(placement, weights, x, y, sync):
    with placement.scope():
        # JAX normalises over the global array anyway.
        model = build_nasnet(GENOTYPE, **TINY, sync_batch_norm=sync and BACKEND == "tensorflow")
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=LabelSmoothingCrossentropy(0.1), jit_compile=JIT)
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return model.get_weights()


def train_two_replicas():
    """`train` with the multi-replica strategy: global batch = 2 x batch_size, and a batch
    that does not split across the replicas is refused before training."""
    import tempfile

    from nasnet_tf.data import load_dataset
    from nasnet_tf.training import TrainConfig, train

    name = "mirrored" if BACKEND == "tensorflow" else "data_parallel"
    data = load_dataset("digits", validation_split=0.9, batch_size=8, seed=0)
    sizes = []

    class BatchSizes(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            sizes.append(batch)

    config = TrainConfig(epochs=1, batch_size=8, strategy=name, verbose=0, tensorboard=False,
                         jit_compile=JIT, model_kwargs=dict(num_cells=1,
                                                              penultimate_filters=24))
    with tempfile.TemporaryDirectory() as out:
        history = train(GENOTYPE, data, config, out, callbacks=[BatchSizes()])
    error = None
    try:
        bad = TrainConfig(epochs=1, batch_size=5, scale_batch_with_replicas=False,
                          strategy=name, verbose=0, tensorboard=False)
        train(GENOTYPE, data, bad)
    except ValueError as e:
        error = str(e)
    return {
        "backend": BACKEND,
        "train_size": data.train_size,
        "steps": len(sizes),
        "epochs": len(history.history["loss"]),
        "loss": history.history["loss"][-1],
        "error": error,
    }


def compare_steps(sync):
    keras.utils.set_random_seed(1)
    weights = build_nasnet(GENOTYPE, **TINY).get_weights()
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 4
    two = resolve_strategy("mirrored" if BACKEND == "tensorflow" else "data_parallel")
    one = resolve_strategy("default")
    w_two = one_step(two, weights, x, y, sync)
    w_one = one_step(one, weights, x, y, sync)
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(w_one, w_two)]
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(weights, w_one)]
    return {
        "replicas": two.num_replicas,
        "placement": two.name,
        "max_diff": max(diffs),
        "max_update": max(moved),
    }


def main():
    results = {"sync": compare_steps(sync=True)}
    if BACKEND == "tensorflow":  # JAX's DataParallel has no per-replica batch norm
        results["per_replica"] = compare_steps(sync=False)
    results["train"] = train_two_replicas()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
