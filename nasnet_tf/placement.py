"""Choosing how training is spread over devices: `tf.distribute` under TensorFlow,
`keras.distribution.DataParallel` under JAX.

`resolve_strategy` turns a name into a `Placement`, which knows the replica count (to scale
the global batch) and gives a context in which to build, compile and fit the model.

Across hosts: under JAX, once `nasnet_tf.multihost.initialize` has joined a group of processes,
`"auto"` and `"data_parallel"` resolve to a `DataParallel` over every process's devices, and the
`Placement` carries the process count and this process's index. Under TensorFlow, one machine
only (`MultiWorkerMirroredStrategy` is refused with a pointer to the JAX path).
"""

import contextlib
import dataclasses

import keras

from nasnet_tf import multihost

__all__ = ["STRATEGIES", "Placement", "resolve_strategy"]

STRATEGIES = ("auto", "default", "mirrored", "data_parallel")
"""`"auto"`: all local accelerators when there are several (MirroredStrategy under TF,
DataParallel under JAX), else the default. `"default"`: one device. `"mirrored"`:
`tf.distribute.MirroredStrategy` (TF). `"data_parallel"`: `keras.distribution.DataParallel`
(JAX)."""

_MULTI_WORKER = (
    "MultiWorkerMirroredStrategy is not supported: Keras 3's `fit` does not run under it "
    "(keras-team/keras#20585). Train on one machine with `strategy='mirrored'` across its "
    "GPUs, or across machines under JAX (KERAS_BACKEND=jax) with `keras.distribution`: "
    "`nasnet-tf train --coordinator HOST:PORT --num-processes N --process-id I` "
    "(`nasnet_tf.multihost`, docs/distributed.md)."
)


@dataclasses.dataclass
class Placement:
    """Where a model trains.

    Attributes:
        name: `"default"`, `"mirrored"`, `"data_parallel"` or `"custom"`.
        num_replicas: data-parallel replicas (the global batch is split across them).
        strategy: the `tf.distribute.Strategy` (TensorFlow) or `None`.
        distribution: the `keras.distribution.Distribution` (JAX) or `None`.
        num_processes: processes training together (`nasnet_tf.multihost`; 1 on one host).
        process_index: this process's index among them (0 writes the run's files).
    """

    name: str
    num_replicas: int = 1
    strategy: object = None
    distribution: object = None
    num_processes: int = 1
    process_index: int = 0

    @property
    def is_chief(self):
        """Whether this process writes checkpoints and the final model (process 0)."""
        return self.process_index == 0

    @contextlib.contextmanager
    def scope(self):
        """Builds, compiles and fits inside this context. Under JAX it sets the Keras
        distribution for its duration and restores the previous one afterwards."""
        if self.strategy is not None:
            with self.strategy.scope():
                yield self
        elif self.distribution is not None:
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.distribution)
            try:
                yield self
            finally:
                keras.distribution.set_distribution(previous)
        else:
            yield self

    def check_batch_size(self, global_batch_size):
        """Raises `ValueError` unless `global_batch_size` splits evenly across replicas."""
        if global_batch_size % self.num_replicas:
            raise ValueError(
                f"The global batch size must divide evenly across the {self.num_replicas} "
                f"replicas of the {self.name!r} strategy. "
                f"Received: global_batch_size={global_batch_size}"
            )


_MIRRORED = []


def _mirrored_strategy():
    # One MirroredStrategy per process: a second one restarts the collective instance keys,
    # and its all-reduces then clash with the first one's ("Shape mismatch in the collective
    # instance ...").
    if not _MIRRORED:
        import tensorflow as tf

        _MIRRORED.append(tf.distribute.MirroredStrategy())
    return _MIRRORED[0]


def _reject_multi_worker(strategy):
    import tensorflow as tf

    multi = (tf.distribute.MultiWorkerMirroredStrategy,
             tf.distribute.experimental.MultiWorkerMirroredStrategy)
    if isinstance(strategy, multi):
        raise ValueError(f"{_MULTI_WORKER} Received: strategy={strategy!r}")


def _multi_process(strategy, processes):
    """The placement of one of `processes` JAX processes (`nasnet_tf.multihost`)."""
    index = multihost.process_index()
    if isinstance(strategy, str) and strategy in ("auto", "data_parallel"):
        distribution = multihost.data_parallel()
        replicas = len(distribution.device_mesh.devices.flatten())
        return Placement("data_parallel", replicas, distribution=distribution,
                         num_processes=processes, process_index=index)
    if isinstance(strategy, keras.distribution.DataParallel):
        if strategy.auto_shard_dataset:
            raise ValueError(
                "`train` gives each process its own share of every batch, so the "
                "DataParallel must not shard the data again: pass `auto_shard_dataset=False`. "
                f"Received: strategy={strategy!r}"
            )
        replicas = len(strategy.device_mesh.devices.flatten())
        return Placement("custom", replicas, distribution=strategy, num_processes=processes,
                         process_index=index)
    raise ValueError(
        f"Across {processes} processes `strategy` must be 'auto' or 'data_parallel' (a "
        "keras.distribution.DataParallel over every process's devices) or such a "
        f"DataParallel. Received: strategy={strategy!r}"
    )


def resolve_strategy(strategy="auto"):
    """Returns the `Placement` for a strategy name or object.

    Args:
        strategy: one of `STRATEGIES`, `"multi_worker"` (refused with an explanation), a
            `tf.distribute.Strategy` (TensorFlow backend) or a
            `keras.distribution.Distribution` (JAX backend).

    Returns:
        A `Placement`.

    Example:

    >>> placement = resolve_strategy("default")
    >>> placement.num_replicas
    1
    """
    backend = keras.backend.backend()
    processes = multihost.process_count()
    if processes > 1:
        return _multi_process(strategy, processes)
    if isinstance(strategy, str):
        if strategy in ("multi_worker", "multi_worker_mirrored", "MultiWorkerMirroredStrategy"):
            raise ValueError(f"{_MULTI_WORKER} Received: strategy={strategy!r}")
        if strategy not in STRATEGIES:
            raise ValueError(
                f"`strategy` must be one of {list(STRATEGIES)}, a tf.distribute.Strategy or a "
                f"keras.distribution.Distribution. Received: strategy={strategy!r}"
            )
        if strategy == "default":
            return Placement("default")
        if strategy == "mirrored" and backend != "tensorflow":
            raise ValueError(
                "`strategy='mirrored'` (tf.distribute) needs the TensorFlow backend; under "
                f"{backend} use 'data_parallel' or 'auto'. Received: strategy={strategy!r}"
            )
        if strategy == "data_parallel" and backend != "jax":
            raise ValueError(
                "`strategy='data_parallel'` (keras.distribution) needs the JAX backend; under "
                f"{backend} use 'mirrored' or 'auto'. Received: strategy={strategy!r}"
            )
        if backend == "tensorflow":
            import tensorflow as tf

            if strategy == "auto" and len(tf.config.list_logical_devices("GPU")) < 2:
                return Placement("default")
            mirrored = _mirrored_strategy()
            return Placement("mirrored", mirrored.num_replicas_in_sync, strategy=mirrored)
        if backend == "jax":
            devices = keras.distribution.list_devices()
            accelerators = [d for d in devices if not d.lower().startswith("cpu")]
            if strategy == "auto" and len(accelerators) < 2:
                return Placement("default")
            chosen = accelerators if strategy == "auto" else devices
            distribution = keras.distribution.DataParallel(devices=chosen)
            return Placement("data_parallel", len(chosen), distribution=distribution)
        if strategy == "auto":
            return Placement("default")
        raise ValueError(f"`strategy={strategy!r}` is not available under {backend}.")
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        if backend != "jax":
            raise ValueError(
                "A keras.distribution.Distribution needs the JAX backend. "
                f"Received: strategy={strategy!r} under {backend}"
            )
        mesh = strategy.device_mesh
        batch_axis = getattr(strategy, "batch_dim_name", mesh.axis_names[0])
        replicas = int(mesh.shape[list(mesh.axis_names).index(batch_axis)])
        return Placement("custom", replicas, distribution=strategy)
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            _reject_multi_worker(strategy)
            return Placement("custom", strategy.num_replicas_in_sync, strategy=strategy)
    raise ValueError(
        f"`strategy` must be one of {list(STRATEGIES)}, a tf.distribute.Strategy (TensorFlow) "
        f"or a keras.distribution.Distribution (JAX). Received: strategy={strategy!r}"
    )
