"""KerasTuner chief/worker search with `ControllerOracle`: a chief and two workers on 127.0.0.1.

The chief (KERASTUNER_TUNER_ID=chief) serves the oracle over gRPC and runs the controller; the
workers run the trials. Each is a separate process, bounded by a timeout (a worker whose
chief is gone would otherwise wait on its RPC for an hour).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import keras_tuner
import pytest

from tuners.oracle import ControllerOracle

pytest.importorskip("grpc")

TOY = pathlib.Path(__file__).with_name("_oracle_toy.py")
LIMIT_S = 300


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers(tmp_path):
    max_trials = 10
    port = str(_free_port())
    log = tmp_path / "runs.txt"
    cmd = [sys.executable, str(TOY), "--directory", str(tmp_path), "--max-trials",
           str(max_trials), "--sleep", "0.2", "--log", str(log)]  # fmt: skip
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=port,
        )
        out = open(tmp_path / f"{tuner_id}.log", "w")  # closed in the `finally` below
        procs[tuner_id] = (
            subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT),
            out,
        )
    deadline = time.monotonic() + LIMIT_S
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc, out in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
    for tuner_id, (proc, _) in procs.items():
        text = (tmp_path / f"{tuner_id}.log").read_text()
        assert proc.returncode == 0, f"{tuner_id} exited {proc.returncode}:\n{text[-3000:]}"

    # The trials, as the chief's oracle saved them.
    oracle = ControllerOracle(objective=keras_tuner.Objective("score", "max"), max_trials=10)
    oracle._set_project_dir(str(tmp_path), "toy")
    oracle.reload()
    ids = [f"{i:02d}" for i in range(max_trials)]
    assert sorted(oracle.trials) == ids
    assert all(
        t.status == keras_tuner.engine.trial.TrialStatus.COMPLETED for t in oracle.trials.values()
    )

    # Each trial ran once, on one of the two workers; both workers worked.
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(trial_id for _, trial_id in runs) == ids
    assert {tuner_id for tuner_id, _ in runs} == {"tuner0", "tuner1"}

    # The chief's controller received every trial's reward, once, and updated on them.
    saved = json.loads((tmp_path / "toy" / "oracle.json").read_text())["controller_oracle"]
    from_trials = [r for r in saved["rewards"] if r[2] == "trial"]
    assert sorted(r[0] for r in from_trials) == ids
    for trial_id, reward, _ in from_trials:
        assert reward == oracle.trials[trial_id].score
    assert sorted(saved["rewarded"]) == ids
    history = saved["controller"]["history"]
    assert len(history) == len(saved["rewards"]) // 3 >= 3
    assert len(saved["pending"]) == len(saved["rewards"]) % 3
    assert oracle.controller.num_updates == len(history)
