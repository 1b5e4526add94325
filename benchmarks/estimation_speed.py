"""Estimation speed: children scored per hour by each estimator, at equal data and epochs.

| | estimator |
|---|---|
| (a) | `TrainAndEvaluate`: build, trace/compile and train each child (today's default) |
| (b) | `FreshWeights`: fresh weights through one compiled super-network |
| (c) | `SharedWeights`: ENAS weight sharing (architectures scored per hour) |

The same search (KerasTuner's random search, same seed, so the same children) runs with each
estimator on the same images. It prints children per hour (for (b) both with its one
compilation counted and in steady state), the ratio to (a), and the super-network's training
step time against one child's step on the same batch: the cost of carrying every op.

    python benchmarks/estimation_speed.py --children 6      # KERAS_BACKEND=jax for JAX
"""

import argparse
import logging
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10" / "train"
ENAS_OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="CIFAR-10 images as <dir>/<class>/*.jpg (random images if absent)")
    p.add_argument("--children", type=int, default=6, help="children per estimator")
    p.add_argument("--estimators", nargs="+", default=["train", "fresh", "shared"],
                   choices=["train", "fresh", "shared"])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--val-size", type=int, default=500)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-blocks", type=int, default=3)
    p.add_argument("--ops", nargs="+", default=list(ENAS_OPS))
    p.add_argument("--combine-ops", nargs="+", default=["add"])
    p.add_argument("--num-cells", type=int, default=1)
    p.add_argument("--penultimate-filters", type=int, default=96)
    p.add_argument("--candidates-per-trial", type=int, default=20,
                   help="(c): architectures rewarded per shared-weights epoch")
    return p.parse_args(argv)


def load_data(args):
    data_dir = pathlib.Path(args.data_dir)
    n = args.train_size + args.val_size
    if data_dir.is_dir():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from cell_recipe import load_cifar_splits

        (train, val), classes = load_cifar_splits(data_dir, (args.train_size, args.val_size),
                                                  image_size=args.image_size)
        return train, val, classes, "shared CIFAR-10"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, args.image_size, args.image_size, 3)).astype("float32")
    y = rng.integers(0, 10, n).astype("int32")
    return ((x[: args.train_size], y[: args.train_size]),
            (x[args.train_size:], y[args.train_size:]), 10, "random images")


def run(kind, args, data, classes, workdir):
    import keras_tuner

    from tuners.estimation import TrainAndEvaluate
    from tuners.nas_tuner import NASNetTuner
    from tuners.weight_sharing import FreshWeights, SharedWeights

    estimator = {"train": TrainAndEvaluate, "fresh": lambda: FreshWeights(seed=0),
                 "shared": lambda: SharedWeights(
                     candidates_per_trial=args.candidates_per_trial, seed=0)}[kind]()
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective="val_accuracy", max_trials=args.children, seed=0)
    tuner = NASNetTuner(
        num_blocks=args.num_blocks, ops=args.ops, combine_ops=args.combine_ops,
        num_cells=args.num_cells, penultimate_filters=args.penultimate_filters,
        input_shape=data[0][0].shape[1:], classes=classes, oracle=oracle, estimator=estimator,
        directory=workdir, project_name=kind, overwrite=True,
    )
    ends = []
    original = tuner.on_trial_end

    def on_trial_end(trial):
        original(trial)
        ends.append(time.perf_counter())

    tuner.on_trial_end = on_trial_end
    (x, y), (vx, vy) = data
    start = time.perf_counter()
    tuner.search(x, y, validation_data=(vx, vy), epochs=args.epochs, batch_size=args.batch_size,
                 verbose=0)
    total = time.perf_counter() - start
    scored = getattr(estimator, "num_scored", len(ends))
    steady = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else float("nan")
    return {"kind": kind, "total_s": total, "children": len(ends), "scored": scored,
            "first_s": ends[0] - start if ends else float("nan"), "steady_s": steady,
            "tuner": tuner}


def step_times(args, data, classes, tuner):
    """Steady-state train step of the super-network vs the standalone child, same batch."""
    from nasnet_tf import build_nasnet
    from tuners.weight_sharing import supernet_for

    net = getattr(tuner.estimator, "supernet", None) or supernet_for(tuner.hypermodel)
    genotype = tuner.hypermodel.decode(next(iter(tuner.oracle.trials.values())).hyperparameters)
    child = build_nasnet(genotype, **net.child_config())
    child.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    (x, y), _ = data
    x, y = x[: args.batch_size], y[: args.batch_size]
    inputs = net.inputs_for(x, genotype)

    def timed(fn, n=10):
        fn()
        fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    return (timed(lambda: net.train_on_batch(inputs, y)),
            timed(lambda: child.train_on_batch(x, y)))


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    import keras

    data = load_data(args)
    train, val, classes, source = data
    workdir = tempfile.mkdtemp(prefix="estimation_speed_")
    print(f"backend={keras.backend.backend()} data={source} {args.image_size}px "
          f"train/val={args.train_size}/"
          f"{args.val_size} epochs={args.epochs} batch={args.batch_size} B={args.num_blocks} "
          f"ops={len(args.ops)} children={args.num_cells}@{args.penultimate_filters}", flush=True)
    results = {}
    for kind in args.estimators:
        keras.utils.set_random_seed(0)
        results[kind] = run(kind, args, (train, val), classes, workdir)
        r = results[kind]
        print(f"{kind}: {r['children']} trials, {r['scored']} scored in {r['total_s']:.0f} s "
              f"(first {r['first_s']:.1f} s, then {r['steady_s']:.1f} s per trial)", flush=True)
    print()
    print("| estimator | scored | total s | per hour (all) | per hour (steady) | ratio to (a) |")
    print("|---|---|---|---|---|---|")
    base = None
    for kind in args.estimators:
        r = results[kind]
        per_hour = 3600 * r["scored"] / r["total_s"]
        steady = 3600 / r["steady_s"] * (r["scored"] / max(r["children"], 1))
        if kind == "train":
            base = per_hour
        ratio = f"{per_hour / base:.2f}" if base else "-"
        print(f"| {kind} | {r['scored']} | {r['total_s']:.0f} | {per_hour:.0f} | {steady:.0f} | "
              f"{ratio} |")
    # A super-network estimator's tuner, so its compiled network is timed as the search used it.
    any_tuner = next((r["tuner"] for r in results.values()
                      if getattr(r["tuner"].estimator, "supernet", None) is not None),
                     next(iter(results.values()))["tuner"])
    net_step, child_step = step_times(args, (train, val), classes, any_tuner)
    print(f"\ntrain step, batch {args.batch_size}: super-network {1000 * net_step:.1f} ms, "
          f"child {1000 * child_step:.1f} ms, ratio {net_step / child_step:.2f}")


if __name__ == "__main__":
    main()
