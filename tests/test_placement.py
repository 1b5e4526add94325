"""Strategy selection, and data-parallel training on two devices in a fresh process
(TensorFlow: MirroredStrategy on two logical CPUs; JAX: DataParallel on two host devices)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

from nasnet_tf.placement import STRATEGIES, Placement, resolve_strategy

HELPER = pathlib.Path(__file__).with_name("_train_replicas.py")
BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def two_devices():
    """One fresh process (devices split before the backend starts) runs every two-replica
    check once."""
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(HELPER)], capture_output=True, text=True, timeout=800,
        env=env, cwd=HELPER.parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_default_is_one_replica():
    placement = resolve_strategy("default")
    assert isinstance(placement, Placement)
    assert (placement.name, placement.num_replicas) == ("default", 1)
    with placement.scope():
        pass
    placement.check_batch_size(7)


def test_auto_on_a_cpu_machine_is_the_default():
    assert resolve_strategy("auto").num_replicas == 1


@pytest.mark.parametrize("name", ["multi_worker", "MultiWorkerMirroredStrategy"])
def test_multi_worker_is_refused_with_the_reason(name):
    with pytest.raises(ValueError, match=r"Keras 3's `fit` does not run under it.*20585"):
        resolve_strategy(name)


def test_unknown_strategy():
    with pytest.raises(ValueError, match=r"must be one of .*Received: strategy='tpu'"):
        resolve_strategy("tpu")
    with pytest.raises(ValueError, match="Received: strategy=3"):
        resolve_strategy(3)
    assert set(STRATEGIES) == {"auto", "default", "mirrored", "data_parallel"}


def test_strategies_of_the_other_backend_are_refused():
    other = "data_parallel" if BACKEND == "tensorflow" else "mirrored"
    with pytest.raises(ValueError, match=f"strategy='{other}'"):
        resolve_strategy(other)


def test_batch_that_does_not_split_across_replicas():
    with pytest.raises(ValueError, match=r"divide evenly across the 4 replicas.*=10"):
        Placement("mirrored", 4).check_batch_size(10)


@pytest.mark.tf_only
def test_multi_worker_strategy_object_is_refused():
    import tensorflow as tf

    # A MultiWorkerMirroredStrategy object (its class, not an instance, which would start a
    # collective runtime) is refused by type before anything runs.
    from nasnet_tf import placement

    fake = tf.distribute.MultiWorkerMirroredStrategy.__new__(
        tf.distribute.MultiWorkerMirroredStrategy
    )
    with pytest.raises(ValueError, match="MultiWorkerMirroredStrategy is not supported"):
        placement._reject_multi_worker(fake)


@pytest.mark.slow
def test_two_replicas_step_equals_one_replica_on_the_global_batch(two_devices):
    # sync: batch norm over the global batch (the default of `train` under tf.distribute);
    # JAX's DataParallel shards one global array, so its batch norm is global anyway.
    result = two_devices["sync"]
    assert result["replicas"] == 2
    assert result["max_update"] > 1e-3  # the step moved the weights
    assert result["max_diff"] < 1e-5


@pytest.mark.slow
@pytest.mark.tf_only
def test_per_replica_batch_norm_is_not_the_global_batch(two_devices):
    # Without synchronisation each replica normalises its half batch: a different step.
    result = two_devices["per_replica"]
    assert result["max_diff"] > 1e-3


@pytest.mark.slow
def test_train_on_two_replicas_scales_the_global_batch(two_devices):
    result = two_devices["train"]
    # batch_size=8 per replica -> global batch 16 -> 180 // 16 steps
    assert result["steps"] == result["train_size"] // 16 == 11
    assert result["epochs"] == 1
    assert result["loss"] == result["loss"]  # finite, not NaN
    assert "divide evenly across the 2 replicas" in result["error"]
    assert "global_batch_size=5" in result["error"]
