"""Train-step time of one JAX process vs two on this machine (`nasnet_tf.multihost`).

Both train the same small NASNet (one block per cell, the cifar stem) on the digits with the
same global batch of 16 (`tests/_multihost_train.py`): one process computes the whole batch,
two processes (127.0.0.1, CPU, gloo collectives) 8 images each and all-reduce the gradients.
Each run is a fresh set of processes; the median step after the first (compiling) one is
taken, for process 0, and the median over the rounds reported (an odd number of rounds, so
that the median is a measured round, not the mean of two).

    python benchmarks/multihost_step.py [--steps 20] [--rounds 3] > benchmarks/multihost_step.out

Prints a table and the ratio two/one (below 1: two processes are faster per global step).
"""

import argparse
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile

HELPER = pathlib.Path(__file__).resolve().parents[1] / "tests" / "_multihost_train.py"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes, steps, directory):
    port = _free_port()
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    running = [
        subprocess.Popen(
            [sys.executable, str(HELPER), str(directory), "--processes", str(processes),
             "--process-id", str(i), "--port", str(port), "--epochs", "1", "--steps",
             str(steps), "--time-steps"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        for i in range(processes)
    ]
    try:
        outputs = [p.communicate(timeout=900)[0] for p in running]
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in running):
        raise RuntimeError(f"A benchmark process failed: {outputs}")
    return float(re.search(r"STEP_SECONDS (\S+)", outputs[0])[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rounds < 1 or args.rounds % 2 == 0:
        parser.error(f"--rounds must be an odd number >= 1 (a median of measured rounds). "
                     f"Received: {args.rounds}")
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for processes in (1, 2):  # alternating, so load changes hit both
                directory = pathlib.Path(tmp) / f"{processes}-{r}"
                times[processes].append(run(processes, args.steps, directory))
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"{'processes':>9} | {'global batch':>12} | {'step (ms)':>9} | {'images/s':>8}")
    print(f"{'-' * 9}-|-{'-' * 12}-|-{'-' * 9}-|-{'-' * 8}")
    for n, t in ((1, one), (2, two)):
        print(f"{n:>9} | {16:>12} | {t * 1000:>9.1f} | {16 / t:>8.1f}")
    print(f"ratio two/one (step time, median of {args.rounds} rounds): {two / one:.3f}; rounds: "
          f"one {[round(t * 1000, 1) for t in times[1]]} ms, "
          f"two {[round(t * 1000, 1) for t in times[2]]} ms")


if __name__ == "__main__":
    main()
