"""A user's own `model.fit` on a `build_nasnet` model: the first epoch, with and without the
compiled state built before the first step (`NASNet.fit`, `nasnet_tf.compiled_state`).

Each run is a fresh process (nothing traced or compiled before it): a CIFAR-layout NASNet-A
(1@96, 32 px, 10 classes, no auxiliary head), Adam, sparse categorical cross-entropy and
`metrics=["accuracy"]`, one epoch of 4 steps of 32 generated images. The arms:

- `keras`: `keras.Model.fit` as Keras runs it (the peer): without a `tf.distribute` strategy,
  TensorFlow creates the optimizer's and the metrics' variables while it traces the first
  step, then traces the step again;
- `nasnet`: `NASNet.fit`, which builds them first.

The arms alternate, `--rounds` times; the table shows each run and the medians.

    python benchmarks/fit_first_epoch.py --rounds 2      # KERAS_BACKEND=jax for JAX
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ARMS = ("keras", "nasnet")


def _child(arm):
    from nasnet_tf.cli.utils import prepare_backend

    prepare_backend()
    import keras
    import numpy as np

    from nasnet_tf import build_nasnet
    from nasnet_tf.model import NASNet

    if arm == "keras":
        NASNet.fit = keras.Model.fit
    model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=96,
                         input_shape=(32, 32, 3), classes=10, auxiliary_head=False)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (128, 32, 32, 3)).astype("float32")
    y = np.arange(128) % 10
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    print(json.dumps({"arm": arm, "backend": keras.backend.backend(), "first_epoch_s": first,
                      "second_epoch_s": time.perf_counter() - start}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child)
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = {arm: [] for arm in ARMS}
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    print("| round | arm | backend | first epoch s | second epoch s |")
    print("|---|---|---|---|---|")
    for r in range(args.rounds):
        for arm in ARMS:
            out = subprocess.run([sys.executable, __file__, "--child", arm], env=env,
                                 capture_output=True, text=True, check=True).stdout
            run = json.loads(out.strip().splitlines()[-1])
            runs[arm].append(run)
            print(f"| {r + 1} | {arm} | {run['backend']} | {run['first_epoch_s']:.1f} | "
                  f"{run['second_epoch_s']:.2f} |", flush=True)
    med = {arm: statistics.median(run["first_epoch_s"] for run in runs[arm]) for arm in ARMS}
    print(f"\nmedian first epoch: keras {med['keras']:.1f} s, nasnet {med['nasnet']:.1f} s; "
          f"keras / nasnet = {med['keras'] / med['nasnet']:.2f}")


if __name__ == "__main__":
    main()
