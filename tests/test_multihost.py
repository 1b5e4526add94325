"""Multi-host training (`nasnet_tf.multihost`): settings, data shards, and two JAX processes on
127.0.0.1 that train like one, survive a killed peer and resume."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from nasnet_tf import multihost

HELPER = pathlib.Path(__file__).with_name("_multihost_train.py")
ROOT = HELPER.parents[1]


def test_settings_come_from_arguments_then_the_environment():
    assert multihost.settings(environ={}) is None
    assert multihost.settings(num_processes=1, environ={}) is None
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "4",
           "KERAS_DISTRIBUTION_PROCESS_ID": "3", "NASNET_TF_HEARTBEAT_TIMEOUT": "7"}
    group = multihost.settings(environ=env)
    assert (group.coordinator, group.num_processes, group.process_id,
            group.heartbeat_timeout) == ("10.0.0.1:1234", 4, 3, 7)
    # Arguments win over the environment.
    assert multihost.settings("[::1]:99", 2, 0, environ=env).coordinator == "[::1]:99"
    # Under Slurm, JAX detects what is not given.
    slurm = {"SLURM_JOB_ID": "1", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
             "SLURM_STEP_NODELIST": "node[1-2]"}
    group = multihost.settings(environ=slurm)
    assert (group.cluster, group.coordinator, group.process_id) == ("slurm", None, None)


@pytest.mark.parametrize("kwargs, message", [
    (dict(coordinator="10.0.0.1"), "Received: coordinator='10.0.0.1'"),
    (dict(coordinator="host:70000"), "port in 1..65535"),
    (dict(coordinator="h:1", num_processes=2, process_id=2), "Received: process_id=2"),
    (dict(num_processes=2), "Received: coordinator=None, num_processes=2, process_id=None"),
    (dict(environ={"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"}),
     "Received: KERAS_DISTRIBUTION_NUM_PROCESSES='two'"),
])
def test_settings_refuse_a_malformed_group(kwargs, message):
    kwargs.setdefault("environ", {})
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        multihost.settings(**kwargs)


def test_cli_checks_the_process_flags_without_a_backend():
    code = (
        "import sys\n"
        "from nasnet_tf.cli.main import main\n"
        "rc = main(['train', 'nasnet_a', '--coordinator', '127.0.0.1:1234',"
        " '--num-processes', '2', '--process-id', '5'])\n"
        "print(rc, sorted(m for m in ('tensorflow', 'jax', 'keras') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "KERAS_DIST"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)
    assert done.stdout.strip() == "2 []"
    assert done.stderr.strip().splitlines() == [
        "nasnet-tf train: error: `process_id` must be in [0, num_processes=2). "
        "Received: process_id=5"
    ]


def test_multi_worker_refusal_names_the_jax_path():
    from nasnet_tf.placement import resolve_strategy

    with pytest.raises(ValueError, match="--coordinator HOST:PORT --num-processes N"):
        resolve_strategy("multi_worker")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="tf.data only, the same under every backend: run once")
def test_shards_together_are_the_unsharded_batches():
    from nasnet_tf.data import load_dataset

    data = load_dataset("digits", batch_size=24, validation_split=0.1)
    shards = [data.shard(3, i) for i in range(3)]
    for whole, parts in [(data.train_epochs(1, 2, 5), [s.train_epochs(1, 2, 5) for s in shards]),
                         (data.validation_batches(True), [s.validation_batches() for s in shards])]:
        whole = list(whole)
        parts = [list(p) for p in parts]
        assert [len(p) for p in parts] == [len(whole)] * 3
        for k, (images, labels) in enumerate(whole):
            assert parts[0][k][0].shape[0] == 8
            np.testing.assert_array_equal(images, np.concatenate([p[k][0] for p in parts]))
            np.testing.assert_array_equal(labels, np.concatenate([p[k][1] for p in parts]))
    with pytest.raises(ValueError, match="Received: num_shards=5"):
        data.shard(5, 0)
    with pytest.raises(ValueError, match="Received: index=3"):
        data.shard(3, 3)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, logs, processes=1, process_id=0, port=None, *extra):
    log = logs / f"{out.name}-{processes}-{process_id}-{len(list(logs.iterdir()))}.log"
    cmd = [sys.executable, str(HELPER), str(out), "--processes", str(processes),
           "--process-id", str(process_id), "--epochs", "2", "--steps", "2",
           "--heartbeat-timeout", "10", *extra]
    if port:
        cmd += ["--port", str(port)]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    with open(log, "w") as stream:
        process = subprocess.Popen(cmd, stdout=stream, stderr=subprocess.STDOUT, env=env,
                                   cwd=ROOT)
    process.log = log
    return process


def _wait(process, timeout):
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {timeout} s: {process.log.read_text()[-2000:]}")
    return process.returncode, process.log.read_text()


def _weights(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="runs its own JAX processes whatever the suite's backend: run once")
def test_two_processes_train_like_one_survive_a_kill_and_resume(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    one, two = tmp_path / "one", tmp_path / "two"
    running = []
    try:
        running.append(single := _launch(one, logs))
        port = _free_port()
        group = [_launch(two, logs, 2, i, port, "--pause-after-epoch", "1") for i in (0, 1)]
        running += group
        deadline = time.monotonic() + 300
        while not (two / "paused").exists():
            for p in group:
                assert p.poll() is None, p.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the first epoch did not finish"
            time.sleep(0.5)
        # Process 1 is killed after epoch 1's checkpoint; process 0 is in epoch 2's first step.
        group[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        rc, log = _wait(group[0], timeout=90)
        assert rc != 0
        assert time.monotonic() - killed_at < 60  # heartbeat timeout 10 s, not a hang
        assert "another task died" in log or "unhealthy" in log, log[-2000:]
        state = json.loads((two / "checkpoints" / "state.json").read_text())
        assert state["epoch"] == 1

        port = _free_port()
        group = [_launch(two, logs, 2, i, port) for i in (0, 1)]
        running += group
        for p in group:
            rc, log = _wait(p, timeout=300)
            assert rc == 0, log[-2000:]
            assert "trained_steps=2" in log  # epoch 2 only: resumed from the checkpoint
        rc, log = _wait(single, timeout=300)
        assert rc == 0, log[-2000:]
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)

    # Process 0 wrote the run's files; both epochs are in the history.
    assert len(json.loads((two / "history.json").read_text())["loss"]) == 2
    assert (two / "model.keras").is_file()
    alone = _weights(one / "weights-1-0.npz")
    first, second = _weights(two / "weights-2-0.npz"), _weights(two / "weights-2-1.npz")
    assert len(alone) == len(first) == len(second)
    for a, b, c in zip(alone, first, second):
        np.testing.assert_array_equal(b, c)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)

    # Each process fed its own half of every global batch of epoch 2 (the resumed run), and
    # the halves together are the single process's batches: sharded, not fed twice.
    fed_alone = np.load(one / "fed-1-0.npz")
    fed = [np.load(two / f"fed-2-{i}.npz") for i in (0, 1)]
    later = fed_alone["epoch"] == 1
    for part in fed:
        assert part["labels"].shape == (2, 8)  # 2 steps of 8 of the global 16
        np.testing.assert_array_equal(part["epoch"], [1, 1])
    np.testing.assert_array_equal(
        np.concatenate([fed[0]["labels"], fed[1]["labels"]], axis=1), fed_alone["labels"][later])
    np.testing.assert_array_equal(
        np.concatenate([fed[0]["sums"], fed[1]["sums"]], axis=1), fed_alone["sums"][later])
    # The halves differ, so two processes that trained apart would have diverged: the equal
    # weights above mean the gradients were reduced across them.
    assert not np.array_equal(fed[0]["sums"], fed[1]["sums"])
