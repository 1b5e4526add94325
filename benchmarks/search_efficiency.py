"""Search efficiency: the RNN controller (`ControllerOracle`) against KerasTuner's random search.

Both strategies search the NASNet cell space with the same trial budget, the same seeds and
the same children (small CIFAR-layout NASNets trained briefly on a subset of the shared
CIFAR-10 training images, scored on a validation split carved from it by seed). For each
strategy it prints the best and the top-5 mean validation accuracy after k trials (mean over
seeds), the oracle's own time per trial (sampling in `populate_space` plus `end_trial`, where
the controller learns) next to the time of a trial, and draws the curves to a PNG.

Run small first, e.g.:

    python benchmarks/search_efficiency.py --trials 4 --seeds 0 --train-size 256

This is a benchmark, not a test: with budgets this small, the controller has made only a few
updates and is not expected to beat random search (NASNet's RL advantage appeared after
thousands of children); the script reports what it measures either way.
"""

import argparse
import json
import logging
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10" / "train"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="CIFAR-10 images as <dir>/<class>/*.jpg")
    p.add_argument("--trials", type=int, default=12, help="trial budget per strategy and seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-size", type=int, default=1000, help="training images per child")
    p.add_argument("--val-size", type=int, default=500, help="validation images (the reward)")
    p.add_argument("--image-size", type=int, default=32, help="images are resized to this")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--run-eagerly", action="store_true",
                   help="train children eagerly: no graph tracing, cheaper for few steps on CPU")
    p.add_argument("--num-blocks", type=int, default=5, help="B, blocks per cell")
    p.add_argument("--num-cells", type=int, default=1, help="N of the children")
    p.add_argument("--penultimate-filters", type=int, default=48, help="P of the children")
    p.add_argument("--units", type=int, default=100, help="controller LSTM units")
    p.add_argument("--update-every", type=int, default=4,
                   help="rewards per controller update (the paper: 20)")
    p.add_argument("--algorithm", default="ppo", choices=["ppo", "reinforce"])
    p.add_argument("--learning-rate", type=float, default=3.5e-4,
                   help="controller learning rate (the paper: 3.5e-4)")
    p.add_argument("--top", type=int, default=5, help="the top-k mean reported")
    p.add_argument("--png", default=str(ROOT / "benchmarks" / "search_efficiency.png"))
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--workdir", default=None, help="tuner directories (default: a temp dir)")
    return p.parse_args(argv)


def load_cifar_subset(data_dir, train_size, val_size, image_size, seed):
    """`train_size + val_size` images drawn by `seed` from the class folders, split in two."""
    from PIL import Image

    data_dir = pathlib.Path(data_dir)
    classes = sorted(d.name for d in data_dir.iterdir() if d.is_dir())
    if not classes:
        raise SystemExit(f"No class folders under {data_dir}")
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((data_dir / name).glob("*"))]
    total = train_size + val_size
    if total > len(files):
        raise SystemExit(f"Asked for {total} images; {data_dir} holds {len(files)}")
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(files))[:total]
    x = np.empty((total, image_size, image_size, 3), "float32")
    y = np.empty((total,), "int32")
    for i, k in enumerate(picked):
        path, label = files[k]
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.BILINEAR)
            x[i] = np.asarray(im, "float32") / 255.0
        y[i] = label
    mean, std = x[:train_size].mean(axis=(0, 1, 2)), x[:train_size].std(axis=(0, 1, 2))
    x = (x - mean) / std
    return (x[:train_size], y[:train_size]), (x[train_size:], y[train_size:]), len(classes)


def timed(fn, bucket):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    return wrapper


def run_search(strategy, seed, data, classes, args, workdir):
    import keras_tuner

    from tuners.nas_tuner import NASNetTuner
    from tuners.oracle import ControllerOracle

    if strategy == "controller":
        oracle = ControllerOracle(
            objective="val_accuracy",
            max_trials=args.trials,
            seed=seed,
            units=args.units,
            algorithm=args.algorithm,
            learning_rate=args.learning_rate,
            update_every=args.update_every,
            max_consecutive_failed_trials=args.trials + 1,
        )
    else:
        oracle = keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy",
            max_trials=args.trials,
            seed=seed,
            max_consecutive_failed_trials=args.trials + 1,
        )
    oracle_times, trial_times = [], []
    oracle.populate_space = timed(oracle.populate_space, oracle_times)
    oracle.end_trial = timed(oracle.end_trial, oracle_times)
    tuner = NASNetTuner(
        num_blocks=args.num_blocks,
        num_cells=args.num_cells,
        penultimate_filters=args.penultimate_filters,
        compile_kwargs={"run_eagerly": args.run_eagerly},
        input_shape=data[0][0].shape[1:],
        classes=classes,
        oracle=oracle,
        directory=workdir,
        project_name=f"{strategy}_seed{seed}",
        overwrite=True,
    )
    tuner.run_trial = timed(tuner.run_trial, trial_times)
    (x, y), (x_val, y_val) = data
    start = time.perf_counter()
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=args.epochs,
                 batch_size=args.batch_size, verbose=0)
    wall = time.perf_counter() - start
    trials = [oracle.trials[i] for i in sorted(oracle.trials)]
    scores = [t.score if t.status == "COMPLETED" else None for t in trials]
    best = tuner.get_best_genotypes(1)
    return {
        "strategy": strategy,
        "seed": seed,
        "scores": scores,
        "failed": sum(s is None for s in scores),
        "oracle_s_per_trial": sum(oracle_times) / max(len(trials), 1),
        "trial_s_per_trial": sum(trial_times) / max(len(trial_times), 1),
        "wall_s": wall,
        "best_genotype": best[0].to_dict() if best else None,
        "controller_updates": len(getattr(oracle, "history", [])),
    }


def best_after(scores, k):
    done = [s for s in scores[:k] if s is not None]
    return max(done) if done else float("nan")


def top_mean_after(scores, k, top):
    done = sorted((s for s in scores[:k] if s is not None), reverse=True)[:top]
    return float(np.mean(done)) if done else float("nan")


def checkpoints(trials):
    ks = sorted({max(1, trials // 4), max(1, trials // 2), max(1, 3 * trials // 4), trials})
    return ks


def summarize(results, args):
    strategies = ["controller", "random"]
    ks = checkpoints(args.trials)
    lines = []
    header = (
        f"| strategy | k | best val acc (mean ± sd over seeds) | top-{args.top} mean val acc |"
    )
    lines += [header, "|---|---|---|---|"]
    for strategy in strategies:
        runs = [r for r in results if r["strategy"] == strategy]
        for k in ks:
            best = [best_after(r["scores"], k) for r in runs]
            top = [top_mean_after(r["scores"], k, args.top) for r in runs]
            lines.append(
                f"| {strategy} | {k} | {np.nanmean(best):.4f} ± {np.nanstd(best):.4f} | "
                f"{np.nanmean(top):.4f} ± {np.nanstd(top):.4f} |"
            )
    lines += ["", "| strategy | oracle s/trial | trial s/trial | oracle share | failed trials |"
              " controller updates |", "|---|---|---|---|---|---|"]
    for strategy in strategies:
        runs = [r for r in results if r["strategy"] == strategy]
        o = np.mean([r["oracle_s_per_trial"] for r in runs])
        t = np.mean([r["trial_s_per_trial"] for r in runs])
        lines.append(
            f"| {strategy} | {o:.3f} | {t:.2f} | {100 * o / (o + t):.1f}% | "
            f"{sum(r['failed'] for r in runs)} | "
            f"{sum(r['controller_updates'] for r in runs)} |"
        )
    ctl = [best_after(r["scores"], args.trials) for r in results if r["strategy"] == "controller"]
    rnd = [best_after(r["scores"], args.trials) for r in results if r["strategy"] == "random"]
    lines += [
        "",
        f"Best after {args.trials} trials, controller minus random (mean over "
        f"{len(args.seeds)} seeds): {np.nanmean(ctl) - np.nanmean(rnd):+.4f}; per seed: "
        + ", ".join(f"{c - r:+.4f}" for c, r in zip(ctl, rnd)),
    ]
    return "\n".join(lines)


def plot(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ks = np.arange(1, args.trials + 1)
    for strategy, color in (("controller", "tab:blue"), ("random", "tab:orange")):
        runs = [r for r in results if r["strategy"] == strategy]
        for ax, fn, title in (
            (axes[0], lambda s, k: best_after(s, k), "best validation accuracy so far"),
            (axes[1], lambda s, k: top_mean_after(s, k, args.top),
             f"top-{args.top} mean validation accuracy so far"),
        ):
            curves = np.array([[fn(r["scores"], k) for k in ks] for r in runs])
            mean = np.nanmean(curves, axis=0)
            ax.plot(ks, mean, color=color, label=f"{strategy} (mean of {len(runs)} seeds)")
            ax.fill_between(ks, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0),
                            color=color, alpha=0.15)
            ax.set_title(title)
            ax.set_xlabel("trials")
            ax.set_ylabel("val accuracy")
    axes[0].legend()
    fig.suptitle(
        f"NASNet cell search (B={args.num_blocks}, children {args.num_cells}@"
        f"{args.penultimate_filters}, {args.train_size} train / {args.val_size} val images, "
        f"{args.epochs} epoch)", fontsize=9)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(args.png))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, args.png)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    import keras

    workdir = args.workdir or tempfile.mkdtemp(prefix="search_efficiency_")
    print(f"backend={keras.backend.backend()} trials={args.trials} seeds={args.seeds} "
          f"train={args.train_size} val={args.val_size} B={args.num_blocks} "
          f"children={args.num_cells}@{args.penultimate_filters} epochs={args.epochs} "
          f"update_every={args.update_every} eager={args.run_eagerly} workdir={workdir}",
          flush=True)
    results = []
    start = time.perf_counter()
    for seed in args.seeds:
        train, val, classes = load_cifar_subset(
            args.data_dir, args.train_size, args.val_size, args.image_size, seed)
        for strategy in ("controller", "random"):
            keras.utils.set_random_seed(seed)  # same child initialisations for both
            result = run_search(strategy, seed, (train, val), classes, args, workdir)
            results.append(result)
            print(f"seed {seed} {strategy}: best {best_after(result['scores'], args.trials):.4f} "
                  f"wall {result['wall_s']:.0f}s scores "
                  + " ".join("fail" if s is None else f"{s:.3f}" for s in result["scores"]),
                  flush=True)
    print()
    print(summarize(results, args))
    print(f"\nTotal wall time: {time.perf_counter() - start:.0f} s")
    plot(results, args)
    print(f"Curves: {args.png}")
    if args.json:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.json)),
                                   suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
