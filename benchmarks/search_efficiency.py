"""Search efficiency: the RL controller, regularized evolution and random search, at equal cost.

The three strategies (`ControllerOracle`, `EvolutionOracle`, KerasTuner's
`RandomSearchOracle`) search the same NASNet cell space with the same budget of trials, the
same seeds and the same estimator, one compiled super-network serving every search of the run:

- `--estimator shared` (default): ENAS weight sharing. A trial is one epoch of the shared
  weights (an architecture sampled from the strategy per minibatch), then
  `--candidates-per-trial` sampled architectures rewarded on one validation minibatch each,
  then the trial's own architecture scored on the whole validation split. KerasTuner's random
  search has no sampling calls: its shared weights train on uniform samples, which is random
  search with weight sharing.
- `--estimator fresh`: NASNet's protocol, each child trained from fresh weights.
Children train on images drawn from the shared CIFAR-10 folder and are scored on a validation
split carved from it. Then each strategy's best cell is trained standalone
(`nasnet_tf.build_nasnet`, same recipe and budget for all) and scored on held-out images that
no search saw (a third split of the folder).

It prints, per strategy (mean ± sd over seeds): the best and the top-5 mean validation
accuracy after k children, the mean reward of the last quarter of the children, the wall time,
and the standalone held-out accuracy of the best cell; the ratio of each to random search's; and
it draws the curves (best / top-5 mean / running mean against children and against time).

Run small first:

    python benchmarks/search_efficiency.py --trials 4 --seeds 0 --train-size 256 --val-size 128
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
STRATEGIES = ("controller", "evolution", "random")
ENAS_OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="CIFAR-10 images as <dir>/<class>/*.jpg")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--estimator", choices=("shared", "fresh", "train"), default="shared")
    p.add_argument("--candidates-per-trial", type=int, default=20,
                   help="shared: architectures rewarded after each epoch")
    p.add_argument("--trials", type=int, default=40, help="children per strategy and seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-size", type=int, default=2000, help="training images per child")
    p.add_argument("--val-size", type=int, default=1000, help="validation images (the reward)")
    p.add_argument("--test-size", type=int, default=2000,
                   help="held-out images for the standalone check (never searched on)")
    p.add_argument("--image-size", type=int, default=32, help="images are resized to this")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam learning rate of the children / the shared weights")
    p.add_argument("--epochs", type=int, default=1, help="epochs per child")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-blocks", type=int, default=3, help="B, blocks per cell")
    p.add_argument("--ops", nargs="+", default=list(ENAS_OPS))
    p.add_argument("--combine-ops", nargs="+", default=["add"])
    p.add_argument("--num-cells", type=int, default=1, help="N of the children")
    p.add_argument("--penultimate-filters", type=int, default=96, help="P of the children")
    p.add_argument("--population-size", type=int, default=10, help="evolution's P")
    p.add_argument("--sample-size", type=int, default=3, help="evolution's S")
    p.add_argument("--standalone-epochs", type=int, default=6,
                   help="epochs of the standalone training of each best cell (0: skip)")
    p.add_argument("--top", type=int, default=5, help="the top-k mean reported")
    p.add_argument("--png", default=str(ROOT / "benchmarks" / "search_efficiency.png"))
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--workdir", default=None, help="tuner directories (default: a temp dir)")
    return p.parse_args(argv)


def load_cifar_splits(data_dir, sizes, seed=1234, image_size=32):
    """Disjoint train / validation / test splits drawn by a fixed seed from the class folders."""
    from PIL import Image

    data_dir = pathlib.Path(data_dir)
    classes = sorted(d.name for d in data_dir.iterdir() if d.is_dir())
    if not classes:
        raise SystemExit(f"No class folders under {data_dir}")
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((data_dir / name).glob("*"))]
    total = sum(sizes)
    if total > len(files):
        raise SystemExit(f"Asked for {total} images; {data_dir} holds {len(files)}")
    picked = np.random.default_rng(seed).permutation(len(files))[:total]
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
    mean, std = x[: sizes[0]].mean(axis=(0, 1, 2)), x[: sizes[0]].std(axis=(0, 1, 2))
    x = (x - mean) / std
    bounds = np.cumsum([0] + list(sizes))
    return [(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])], len(classes)


def make_oracle(strategy, seed, args):
    import keras_tuner

    from tuners.evolution import EvolutionOracle
    from tuners.oracle import ControllerOracle

    common = dict(objective="val_accuracy", max_trials=args.trials, seed=seed,
                  max_consecutive_failed_trials=args.trials + 1)
    if strategy == "controller":
        return ControllerOracle(**common)
    if strategy == "evolution":
        return EvolutionOracle(**common, population_size=args.population_size,
                               sample_size=args.sample_size)
    return keras_tuner.oracles.RandomSearchOracle(**common)


def run_search(strategy, seed, data, classes, args, workdir, estimator):
    import keras

    from tuners.nas_tuner import NASNetTuner

    oracle = make_oracle(strategy, seed, args)
    tuner = NASNetTuner(
        num_blocks=args.num_blocks, ops=args.ops, combine_ops=args.combine_ops,
        num_cells=args.num_cells, penultimate_filters=args.penultimate_filters,
        input_shape=data[0][0].shape[1:], classes=classes, oracle=oracle,
        optimizer=keras.optimizers.Adam(args.learning_rate),
        estimator=estimator, directory=workdir, project_name=f"{strategy}_seed{seed}",
        overwrite=True,
    )
    ended = []
    original = tuner.on_trial_end

    def on_trial_end(trial):
        original(trial)
        ended.append((trial.trial_id, time.perf_counter()))

    tuner.on_trial_end = on_trial_end
    (x, y), (x_val, y_val) = data
    start = time.perf_counter()
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=args.epochs,
                 batch_size=args.batch_size, verbose=0)
    wall = time.perf_counter() - start
    scores, times = [], []
    for trial_id, when in ended:
        trial = oracle.trials[trial_id]
        scores.append(trial.score if trial.status == "COMPLETED" else None)
        times.append(when - start)
    best = tuner.get_best_genotypes(1)
    candidates = [[t, r] for t, r, source in getattr(estimator, "scored", [])
                  if source == "candidate"]
    history = getattr(oracle, "history", [])
    entropy = [h["entropy"] for h in history if isinstance(h, dict) and "entropy" in h]
    return {
        "strategy": strategy, "seed": seed, "scores": scores, "times": times, "wall_s": wall,
        "failed": sum(s is None for s in scores),
        "best_genotype": best[0].to_dict() if best else None,
        "entropy_first_last": [entropy[0], entropy[-1]] if entropy else None,
        "candidates": candidates,
    }


def standalone(genotype_dict, data, test, classes, args, seed):
    """Trains the cell as a standalone network with one fixed recipe; held-out accuracy."""
    import keras

    from nasnet_tf import Genotype, build_nasnet

    keras.utils.set_random_seed(seed)
    model = build_nasnet(
        Genotype.from_dict(genotype_dict), preset="cifar", num_cells=args.num_cells,
        penultimate_filters=args.penultimate_filters, input_shape=test[0].shape[1:],
        classes=classes, auxiliary_head=False, drop_path_keep_prob=1.0,
        batch_norm_momentum=0.9, seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.concatenate([data[0][0], data[1][0]])
    y = np.concatenate([data[0][1], data[1][1]])
    model.fit(x, y, epochs=args.standalone_epochs, batch_size=args.batch_size, verbose=0,
              shuffle=True)
    return float(model.evaluate(test[0], test[1], verbose=0, return_dict=True)["accuracy"])


def best_after(scores, k):
    done = [s for s in scores[:k] if s is not None]
    return max(done) if done else float("nan")


def top_mean_after(scores, k, top):
    done = sorted((s for s in scores[:k] if s is not None), reverse=True)[:top]
    return float(np.mean(done)) if done else float("nan")


def last_quarter_mean(result):
    """Mean reward of the last quarter of the sampled architectures (candidates under weight
    sharing, else the trials)."""
    values = [v for _, v in result["candidates"]] or [s for s in result["scores"]]
    tail = [v for v in values[-max(1, len(values) // 4):] if v is not None]
    return float(np.mean(tail)) if tail else float("nan")


def _ms(values):
    values = np.asarray(values, "float64")
    return float(np.nanmean(values)), float(np.nanstd(values))


def summarize(results, args):
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in results)]
    ks = sorted({max(1, args.trials // 4), max(1, args.trials // 2), args.trials})
    lines = [f"| strategy | k | best val acc | top-{args.top} mean val acc |", "|---|---|---|---|"]
    for strategy in strategies:
        runs = [r for r in results if r["strategy"] == strategy]
        for k in ks:
            b = _ms([best_after(r["scores"], k) for r in runs])
            t = _ms([top_mean_after(r["scores"], k, args.top) for r in runs])
            lines.append(f"| {strategy} | {k} | {b[0]:.4f} ± {b[1]:.4f} | "
                         f"{t[0]:.4f} ± {t[1]:.4f} |")
    metrics = {
        f"top-{args.top} mean": lambda r: top_mean_after(r["scores"], args.trials, args.top),
        "best": lambda r: best_after(r["scores"], args.trials),
        "sampled reward, last quarter": last_quarter_mean,
        "standalone held-out acc": lambda r: r.get("standalone", float("nan")),
        "wall s": lambda r: r["wall_s"],
    }
    lines += ["", "| strategy | " + " | ".join(metrics) + " |",
              "|---|" + "---|" * len(metrics)]
    means = {}
    for strategy in strategies:
        runs = [r for r in results if r["strategy"] == strategy]
        cells = []
        for name, fn in metrics.items():
            m, s = _ms([fn(r) for r in runs])
            means[strategy, name] = m
            cells.append(f"{m:.4f} ± {s:.4f}" if name != "wall s" else f"{m:.0f} ± {s:.0f}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    if "random" in strategies:
        lines += ["", "| ratio to random | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for strategy in strategies:
            ratios = [means[strategy, n] / means["random", n] if means["random", n] else
                      float("nan") for n in metrics]
            lines.append(f"| {strategy} | " + " | ".join(f"{v:.3f}" for v in ratios) + " |")
    for r in results:
        if r["entropy_first_last"]:
            lines.append(f"\ncontroller seed {r['seed']}: entropy {r['entropy_first_last'][0]:.2f}"
                         f" -> {r['entropy_first_last'][1]:.2f}")
    return "\n".join(lines)


def plot(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"controller": "tab:blue", "evolution": "tab:green", "random": "tab:orange"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ks = np.arange(1, args.trials + 1)
    for strategy in STRATEGIES:
        runs = [r for r in results if r["strategy"] == strategy and len(r["scores"])]
        if not runs:
            continue
        n = min(len(r["scores"]) for r in runs)
        for ax, fn, title in (
            (axes[0], lambda s, k: best_after(s, k), "best validation accuracy so far"),
            (axes[1], lambda s, k: top_mean_after(s, k, args.top),
             f"top-{args.top} mean so far"),
        ):
            curves = np.array([[fn(r["scores"], k) for k in ks[:n]] for r in runs])
            ax.plot(ks[:n], np.nanmean(curves, axis=0), color=colors[strategy],
                    label=f"{strategy} ({len(runs)} seeds)")
            ax.fill_between(ks[:n], np.nanmin(curves, axis=0), np.nanmax(curves, axis=0),
                            color=colors[strategy], alpha=0.12)
            ax.set_title(title)
            ax.set_xlabel("trials")
        # Mean sampled reward against time: the candidates' rewards (weight sharing) or the
        # trials' scores, as a moving average over 20 samples, one line per seed.
        for i, r in enumerate(runs):
            points = r["candidates"] or [[t, v] for t, v in zip(r["times"], r["scores"])
                                         if v is not None]
            if len(points) < 2:
                continue
            t, v = np.asarray(points, "float64").T
            w = min(20, len(v))
            smooth = np.convolve(v, np.ones(w) / w, mode="valid")
            axes[2].plot(t[w - 1:] / 60.0, smooth, color=colors[strategy], lw=1,
                         label=strategy if i == 0 else None)
    axes[2].set_title("mean sampled reward (moving average of 20)")
    axes[2].set_xlabel("minutes")
    axes[2].legend()
    axes[0].set_ylabel("val accuracy")
    axes[0].legend()
    fig.suptitle(f"NASNet cell search, B={args.num_blocks}, {len(args.ops)} ops, children "
                 f"{args.num_cells}@{args.penultimate_filters}, {args.train_size} train / "
                 f"{args.val_size} val CIFAR-10 images, {args.epochs} epoch, "
                 f"estimator {args.estimator}", fontsize=9)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(args.png))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, args.png)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    import keras

    from tuners.estimation import TrainAndEvaluate
    from tuners.weight_sharing import FreshWeights, SharedWeights

    workdir = args.workdir or tempfile.mkdtemp(prefix="search_efficiency_")
    print(f"backend={keras.backend.backend()} strategies={args.strategies} trials={args.trials} "
          f"seeds={args.seeds} train/val/test={args.train_size}/{args.val_size}/"
          f"{args.test_size} B={args.num_blocks} ops={args.ops} combine={args.combine_ops} "
          f"children={args.num_cells}@{args.penultimate_filters} epochs={args.epochs} "
          f"estimator={args.estimator} workdir={workdir}", flush=True)
    (train, val, test), classes = load_cifar_splits(
        args.data_dir, (args.train_size, args.val_size, args.test_size),
        image_size=args.image_size)
    def make_estimator(seed, supernet=None):
        if args.estimator == "shared":
            return SharedWeights(candidates_per_trial=args.candidates_per_trial, seed=seed,
                                 supernet=supernet)
        if args.estimator == "fresh":
            return FreshWeights(seed=0, supernet=supernet)
        return TrainAndEvaluate()

    # Compile the super-network once, outside the timed searches; every search reuses it.
    warm = make_estimator(0)
    warm_args = argparse.Namespace(**{**vars(args), "trials": 1})
    t = time.perf_counter()
    run_search("random", 0, (train, val), classes, warm_args, workdir, warm)
    print(f"warm-up (compilation) {time.perf_counter() - t:.0f} s", flush=True)
    results = []
    start = time.perf_counter()
    for seed in args.seeds:
        for strategy in args.strategies:
            keras.utils.set_random_seed(seed)
            estimator = make_estimator(seed, getattr(warm, "supernet", None))
            result = run_search(strategy, seed, (train, val), classes, args, workdir, estimator)
            if args.standalone_epochs and result["best_genotype"]:
                t = time.perf_counter()
                result["standalone"] = standalone(result["best_genotype"], (train, val), test,
                                                  classes, args, seed)
                result["standalone_s"] = time.perf_counter() - t
            results.append(result)
            print(f"seed {seed} {strategy}: best {best_after(result['scores'], args.trials):.4f}"
                  f" top-{args.top} {top_mean_after(result['scores'], args.trials, args.top):.4f}"
                  f" standalone {result.get('standalone', float('nan')):.4f}"
                  f" wall {result['wall_s']:.0f}s", flush=True)
            if args.json:
                _write_json(args, results)
    print()
    print(summarize(results, args))
    print(f"\nTotal wall time: {time.perf_counter() - start:.0f} s")
    plot(results, args)
    print(f"Curves: {args.png}")
    if args.json:
        _write_json(args, results)


def _write_json(args, results):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.json)), suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
