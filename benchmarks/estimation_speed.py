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

`--mode build` measures the super-network alone, one child process per arm (so each peak
resident memory is its own, and a runaway arm is stopped at `--memory-cap-gb`): its build,
compile and first training step (trace/compile plus the step), what it holds (cell layers,
edge branches, variables), then its steady training step against a `build_nasnet` child's on
the same batch. Images are generated at the arm's shape (build and step cost do not depend on
their values):

| arm | space | child | images (batch 64) |
|---|---|---|---|
| `digits13` | all 13 ops, B=5, add and concat | the CLI's default, 1@48 | 8x8x3 (digits') |
| `cifar5` | the 5 ENAS ops, B=3, add | 1@96 | 32x32x3 (CIFAR-10's) |
| `cifar5_f32` | the same | 1@768 (F=32, NASNet's search children's width) | 32x32x3 |

    python benchmarks/estimation_speed.py --mode build --arms digits13 cifar5
"""

import argparse
import json
import logging
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10" / "train"
ENAS_OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
ARMS = {
    "digits13": dict(num_blocks=5, ops=None, combine_ops=None, num_cells=1,
                     penultimate_filters=48, input_shape=(8, 8, 3), classes=10),
    "cifar5": dict(num_blocks=3, ops=list(ENAS_OPS), combine_ops=["add"], num_cells=1,
                   penultimate_filters=96, input_shape=(32, 32, 3), classes=10),
    # The same space at the width of NASNet's CIFAR search children (F=32): the step ratio
    # where arithmetic, not the cost of launching small ops, makes the step.
    "cifar5_f32": dict(num_blocks=3, ops=list(ENAS_OPS), combine_ops=["add"], num_cells=1,
                       penultimate_filters=768, input_shape=(32, 32, 3), classes=10),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["search", "build"], default="search",
                   help="search: children per hour by estimator; build: the super-network's "
                   "build, first step, memory and step ratio (see the module docstring)")
    p.add_argument("--arms", nargs="+", default=list(ARMS),
                   help=f"build mode: arms to run, from {list(ARMS)}, or a small custom arm "
                   "as JSON (SuperNet arguments)")
    p.add_argument("--arm-timeout", type=int, default=900, help="build mode: seconds per arm")
    p.add_argument("--memory-cap-gb", type=float, default=8.0,
                   help="build mode: an arm's resident memory above this stops it")
    p.add_argument("--steps", type=int, default=10, help="build mode: timed steady steps")
    p.add_argument("--run-arm", help=argparse.SUPPRESS)
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
        # Estimation only: the super-network estimators' final selection (finalists trained
        # standalone after the last trial) is work the `train` arm does not do.
        final_selection=None,
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


def _peak_rss_gb():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure_arm(spec, args):
    """In this (child) process: build, compile and step one super-network; returns a dict."""
    import keras

    from nasnet_tf import Block, CellGenotype, Genotype, build_nasnet
    from nasnet_tf.supernet import SuperCell, SuperNet

    spec = dict(spec)
    out = {"backend": keras.backend.backend(), "spec": spec}
    rss_start = _peak_rss_gb()
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    net = SuperNet(**spec)
    out["build_s"] = time.perf_counter() - start
    cells = [layer for layer in net.layers if isinstance(layer, SuperCell)]
    out["cells"] = len(cells)
    out["branches"] = sum(c.traced_branches for c in cells)
    out["layers"] = sum(1 for _ in net._flatten_layers(include_self=False, recursive=True))
    out["variables"] = len(net.variables)
    out["parameters"] = int(net.count_params())
    start = time.perf_counter()
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    out["compile_s"] = time.perf_counter() - start

    rng = np.random.default_rng(0)
    n = args.batch_size
    x = rng.normal(size=(n,) + tuple(spec["input_shape"])).astype("float32")
    y = rng.integers(0, spec["classes"], n).astype("int32")
    ops_ = net.candidate_ops
    combine = net.combine_ops

    def cell(seed):
        r = np.random.default_rng(seed)
        return CellGenotype([
            Block(int(r.integers(2 + k)), int(r.integers(2 + k)), ops_[r.integers(len(ops_))],
                  ops_[r.integers(len(ops_))], combine[r.integers(len(combine))])
            for k in range(net.num_blocks)])

    genotype = Genotype(cell(1), cell(2))
    inputs = net.inputs_for(x, genotype)
    start = time.perf_counter()
    net.train_on_batch(inputs, y)
    out["first_step_s"] = time.perf_counter() - start
    out["build_and_first_step_s"] = out["build_s"] + out["compile_s"] + out["first_step_s"]
    out["peak_rss_after_first_step_gb"] = _peak_rss_gb()
    start = time.perf_counter()
    net.predict_on_batch(inputs)
    out["first_predict_s"] = time.perf_counter() - start

    child = build_nasnet(genotype, **net.child_config())
    child.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    def timed(fn):
        fn()
        fn()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    other = net.inputs_for(x, Genotype(cell(3), cell(4)))
    out["net_step_s"] = timed(lambda: net.train_on_batch(inputs, y))
    out["net_step_other_arch_s"] = timed(lambda: net.train_on_batch(other, y))
    out["child_step_s"] = timed(lambda: child.train_on_batch(x, y))
    out["step_ratio"] = out["net_step_s"] / out["child_step_s"]
    out["peak_rss_gb"] = _peak_rss_gb()
    out["rss_at_start_gb"] = rss_start
    return out


def _watch(cmd, timeout, cap_gb):
    """Runs `cmd`, stopping it past `timeout` s or `cap_gb` resident; returns (rc, out, why)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start, peak, why = time.perf_counter(), 0.0, None
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            peak = max(peak, rss / 2**20)
        except (OSError, StopIteration):
            pass
        if peak > cap_gb:
            why = f"stopped: resident memory above {cap_gb} GB"
        elif time.perf_counter() - start > timeout:
            why = f"stopped: over {timeout} s"
        if why:
            proc.kill()
            break
        time.sleep(0.25)
    proc.wait()
    reader.join(5)
    return proc.returncode, "".join(lines), why, peak, time.perf_counter() - start


def build_mode(args):
    if args.run_arm:
        result = measure_arm(json.loads(args.run_arm), args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    load = os.getloadavg()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"backend={backend} batch={args.batch_size} load average={load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f} cpus={os.cpu_count()} "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    rows = []
    for arm in args.arms:
        spec = ARMS[arm] if arm in ARMS else json.loads(arm)
        cmd = [sys.executable, __file__, "--mode", "build", "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--run-arm", json.dumps(spec)]
        rc, text, why, peak, wall = _watch(cmd, args.arm_timeout, args.memory_cap_gb)
        result = next((json.loads(line[7:]) for line in text.splitlines()
                       if line.startswith("RESULT ")), None)
        if result is None:
            print(f"{arm}: no result (rc={rc}, {why or 'failed'}, {wall:.0f} s, "
                  f"resident peak seen {peak:.2f} GB)\n{text[-2000:]}", flush=True)
            rows.append((arm, None, why or f"rc={rc}", wall, peak))
            continue
        print(f"{arm}: " + json.dumps(result), flush=True)
        rows.append((arm, result, None, wall, peak))
    print()
    print("| arm | branches | variables | build s | compile s | first step s | build + first "
          "step s | peak RSS GB | net step ms | child step ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arm, r, why, wall, peak in rows:
        if r is None:
            print(f"| {arm} | | | | | | > {wall:.0f} ({why}) | >= {peak:.1f} | | | |")
            continue
        print(f"| {arm} | {r['branches']} | {r['variables']} | {r['build_s']:.1f} | "
              f"{r['compile_s']:.1f} | {r['first_step_s']:.1f} | "
              f"{r['build_and_first_step_s']:.1f} | {r['peak_rss_gb']:.2f} | "
              f"{1000 * r['net_step_s']:.1f} | {1000 * r['child_step_s']:.1f} | "
              f"{r['step_ratio']:.2f} |")


def main(argv=None):
    args = parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    from nasnet_tf.cli.utils import prepare_backend

    prepare_backend()  # TensorFlow's start-up lines held back, as the command line does
    if args.mode == "build":
        build_mode(args)
        return
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
