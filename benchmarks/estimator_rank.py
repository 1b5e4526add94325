"""How well each estimator ranks architectures: rank correlation against the cell benchmark.

Every estimator scores the same architectures (the cell benchmark's draw, `cell_bench.py`),
training on the benchmark's `train` split and scoring on its `search_val` split (never the
benchmark's `heldout` images). Each score is then compared with the mean held-out accuracy of
the architecture trained standalone (`benchmarks/cell_bench.json`): Kendall tau, Spearman rho
and the overlap of the top 5, with each estimator's CPU seconds.

Estimators:
- `params`: the child's parameter count (a zero-cost baseline, as NAS-Bench papers report).
- `train1`, `train3`: the child built and trained from scratch for 1 or 3 epochs (the
  benchmark's short recipe, shortened, with the hypermodel's batch-norm momentum of 0.9 as the
  search's `train` estimator uses it), scored on `search_val`.
- `fresh`: `FreshWeights`, one epoch per child through one compiled super-network.
- `naswot`, `jacov` (arm `zerocost`): zero-cost proxies of the untrained child, averaged over
  3 initialisations and 128-image batches of `train`: NASWOT (Mellor et al. 2021, the log
  determinant of the kernel of the ReLU on/off codes) and the Jacobian covariance score of its
  first version (TensorFlow only).
- `shared-S-moving`, `shared-S-batch`, `shared-S-recalibrate`: `SharedWeights` after S epochs
  of shared training on uniformly sampled architectures (random search with weight sharing,
  every architecture trained equally often), every architecture then scored on all of
  `search_val` with the pooled moving statistics, with batch statistics, or with statistics
  recalibrated on 4 training batches. The shared training's CPU seconds are counted once per
  S, and each architecture's scoring on top. `--shared-filters N` trains a super-network of
  another width (records `shared-wN-S-...`), still judged against the recipe's children;
  `--shared-modes` picks the statistics.

Results go to `benchmarks/estimator_rank.json` (one record per estimator and architecture:
`estimator`, `genotype`, `score`, `cpu_seconds`), rewritten whole after each arm; a killed run
resumes (finished arms are skipped, the shared weights' search resumes from its state).

    python benchmarks/estimator_rank.py                       # every arm
    python benchmarks/estimator_rank.py --arms shared train1  # some
    python benchmarks/estimator_rank.py --report benchmarks/estimator_rank*.json  # tables only

The ground truth is the long recipe's benchmark (`cell_bench_long.json`, 3 seeds); the tables
are printed against the short recipe's too.
"""

import argparse
import json
import pathlib
import resource
import time

import numpy as np
from cell_recipe import (
    DEFAULT_DATA,
    RECIPE,
    SPACE,
    _key,
    bench_splits,
    device,
    draw_genotypes,
    load_bench,
    quiet,
    rank_stats,
    train_standalone,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "estimator_rank.json"
WORK = ROOT / ".estimator_rank_work"
ARMS = ("params", "zerocost", "shared", "train1", "fresh", "train3")
MODES = ("moving", "batch", "recalibrate")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--archs", type=int, default=30, help="architectures of the benchmark draw")
    p.add_argument("--shared-epochs", type=int, nargs="+", default=[5, 10],
                   help="S: score the shared weights after these many epochs")
    p.add_argument("--shared-optimizer", choices=("sgd", "adam"), default="sgd",
                   help="the shared weights' optimizer (SharedWeights' `optimizer`)")
    p.add_argument("--shared-filters", type=int, default=RECIPE["penultimate_filters"],
                   help="the super-network's penultimate filters (its width; the ground truth's "
                        "children stay at the recipe's); other than the recipe's, the records "
                        "are named shared-wN-...")
    p.add_argument("--shared-modes", nargs="+", choices=MODES, default=list(MODES),
                   help="the batch-norm statistics each architecture is scored with")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="the image folder, or an .npz file of cell_recipe.export_splits")
    p.add_argument("--bench", nargs="+", default=[str(ROOT / "benchmarks" / name) for name in
                                                  ("cell_bench_long.json", "cell_bench.json")],
                   help="the cell benchmark(s) to rank against (a missing file is skipped)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--workdir", default=str(WORK))
    p.add_argument("--report", nargs="+", default=None, metavar="JSON",
                   help="run nothing: print the tables of these result files' records together")
    p.add_argument("--only-benched", action="store_true",
                   help="score only the architectures the first --bench file has complete")
    p.add_argument("--try-small", type=int, default=None, metavar="N",
                   help="a quick try of the machinery: N images per split")
    return p.parse_args(argv)


def cpu():
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def hypermodel(classes, filters=None):
    import keras

    from tuners import NASNetHyperModel

    return NASNetHyperModel(
        num_blocks=SPACE["num_blocks"], ops=SPACE["ops"], combine_ops=SPACE["combine_ops"],
        num_cells=RECIPE["num_cells"],
        penultimate_filters=filters or RECIPE["penultimate_filters"],
        input_shape=(32, 32, 3), classes=classes,
        optimizer=keras.optimizers.Adam(RECIPE["learning_rate"]),
        batch_norm_momentum=0.9)  # the hypermodel default, as a search uses it


def arm_train(epochs, genotypes, splits, classes):
    records = []
    for genotype in genotypes:
        start = cpu()
        # As the search's `train` estimator trains a child: the hypermodel's batch-norm
        # momentum (0.9), whose statistics settle within one epoch (0.99's do not).
        accuracy, _ = train_standalone(genotype, splits["train"], splits["search_val"], classes,
                                       seed=0, epochs=epochs,
                                       recipe=dict(RECIPE, batch_norm_momentum=0.9))
        records.append({"estimator": f"train{epochs}", "genotype": genotype.to_dict(),
                        "score": accuracy, "cpu_seconds": round(cpu() - start, 2)})
        print(f"  train{epochs}: {accuracy:.4f} ({records[-1]['cpu_seconds']:.0f} CPU s)",
              flush=True)
    return records


def arm_params(genotypes, classes):
    from nasnet_tf import build_nasnet

    records = []
    for genotype in genotypes:
        start = cpu()
        model = build_nasnet(
            genotype, preset="cifar", num_cells=RECIPE["num_cells"],
            penultimate_filters=RECIPE["penultimate_filters"],
            stem_multiplier=RECIPE["stem_multiplier"], input_shape=(32, 32, 3), classes=classes,
            auxiliary_head=False, drop_path_keep_prob=1.0)
        records.append({"estimator": "params", "genotype": genotype.to_dict(),
                        "score": float(model.count_params()),
                        "cpu_seconds": round(cpu() - start, 2)})
    return records


def _child(genotype, classes, seed):
    import keras

    from nasnet_tf import build_nasnet

    keras.utils.set_random_seed(seed)
    return build_nasnet(
        genotype, preset="cifar", num_cells=RECIPE["num_cells"],
        penultimate_filters=RECIPE["penultimate_filters"],
        stem_multiplier=RECIPE["stem_multiplier"], input_shape=(32, 32, 3), classes=classes,
        auxiliary_head=False, drop_path_keep_prob=1.0)


def naswot(model, x):
    """NASWOT's score: log|K|, K[i, j] the number of ReLUs on which images i and j agree."""
    import keras

    relus = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.ReLU)]
    codes, originals = [], {}
    for layer in relus:
        originals[layer] = layer.call

        def record(inputs, layer=layer):
            codes.append(inputs)
            return originals[layer](inputs)

        layer.call = record
    try:
        model(x, training=True)
    finally:
        for layer in relus:
            layer.call = originals[layer]
    kernel = np.zeros((len(x), len(x)))
    for code in codes:
        c = (keras.ops.convert_to_numpy(code).reshape(len(x), -1) > 0).astype("float64")
        kernel += c @ c.T + (1 - c) @ (1 - c).T
    return float(np.linalg.slogdet(kernel)[1])


def jacob_cov(model, x):
    """The Jacobian covariance score (Mellor et al., first version); TensorFlow only."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(tf.math.log(model(x, training=True) + 1e-9))
    jacobian = tape.gradient(out, x).numpy().reshape(len(x), -1)
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobian))
    return float(-np.sum(np.log(eigenvalues + 1e-5) + 1.0 / (eigenvalues + 1e-5)))


def arm_zero_cost(genotypes, splits, classes):
    import keras

    x = splits["train"][0]
    records = []
    for genotype in genotypes:
        start = cpu()
        scores = {"naswot": [], "jacov": []}
        for seed in range(3):
            model = _child(genotype, classes, seed)
            batch = x[seed * 128: (seed + 1) * 128].astype("float32")
            scores["naswot"].append(naswot(model, batch))
            if keras.backend.backend() == "tensorflow":
                scores["jacov"].append(jacob_cov(model, batch[:64]))
        seconds = round((cpu() - start) / len([v for v in scores.values() if v]), 2)
        for name, values in scores.items():
            if values:
                records.append({"estimator": name, "genotype": genotype.to_dict(),
                                "score": float(np.mean(values)), "cpu_seconds": seconds})
        print(f"  zero-cost: {({k: round(float(np.mean(v)), 2) for k, v in scores.items() if v})}"
              f" ({seconds:.1f} CPU s each)", flush=True)
    return records


def arm_fresh(genotypes, splits, classes, workdir):
    from tuners.estimation import Child
    from tuners.weight_sharing import FreshWeights

    model = hypermodel(classes)
    estimator = FreshWeights(seed=0)
    (x, y), val = splits["train"], splits["search_val"]
    records = []
    for i, genotype in enumerate(genotypes):
        start = cpu()
        child = Child(genotype, None, None, str(i), str(workdir / "fresh" / f"trial_{i}"),
                      hypermodel=model)
        logs = estimator.estimate(child, x, y, validation_data=val, epochs=1,
                                  batch_size=RECIPE["batch_size"])
        records.append({"estimator": "fresh", "genotype": genotype.to_dict(),
                        "score": float(logs["val_accuracy"]),
                        "cpu_seconds": round(cpu() - start, 2)})
        print(f"  fresh: {logs['val_accuracy']:.4f} ({records[-1]['cpu_seconds']:.0f} CPU s)",
              flush=True)
    return records


def arm_shared(genotypes, splits, classes, workdir, epochs_list, done, write, optimizer,
               filters=None, modes=MODES):
    import keras_tuner

    from tuners import NASTuner, SharedWeights

    (x, y), val = splits["train"], splits["search_val"]
    model = hypermodel(classes, filters)
    supernet, spent = None, 0.0
    width = "" if filters in (None, RECIPE["penultimate_filters"]) else f"w{filters}-"
    state_file = workdir / f"shared_{width}{optimizer}_cpu.json"
    wall = 0.0
    if state_file.exists():
        state = json.loads(state_file.read_text())
        spent, wall = state["cpu_seconds"], state.get("wall_seconds", 0.0)
    records = []
    for epochs in sorted(epochs_list):
        tag = width + ("" if optimizer == "sgd" else f"{optimizer}-")
        names = [f"shared-{tag}{epochs}-{m}" for m in modes]
        if all(n in done for n in names):
            continue
        estimator = SharedWeights(candidates_per_trial=0, seed=0, supernet=supernet,
                                  optimizer=optimizer)
        tuner = NASTuner(model, keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy", max_trials=epochs, seed=1),
            estimator=estimator, final_selection=None, directory=str(workdir),
            project_name=f"shared-{width}{optimizer}", overwrite=False)
        start, t = cpu(), time.perf_counter()
        tuner.search(x, y, validation_data=val, batch_size=RECIPE["batch_size"], verbose=0)
        spent += cpu() - start
        wall += time.perf_counter() - t
        state_file.write_text(json.dumps({"cpu_seconds": spent, "wall_seconds": wall}))
        supernet = estimator.supernet
        print(f"  shared weights: {estimator.epochs_done} epochs, {spent:.0f} CPU s, "
              f"{wall:.0f} s wall", flush=True)
        for mode, name in zip(modes, names):
            estimator.statistics = mode
            # One call for all: the same validation batches, one snapshot of the statistics;
            # each architecture is charged an equal share of the call's CPU seconds.
            start, t = cpu(), time.perf_counter()
            scores = estimator.score_architectures(
                genotypes, val, batch_size=RECIPE["batch_size"], recalibration_data=(x, y))
            share = (cpu() - start) / len(genotypes)
            arm = [{"estimator": name, "genotype": genotype.to_dict(),
                    "score": score["val_accuracy"], "cpu_seconds": round(share, 3),
                    "shared_training_cpu_seconds": round(spent, 1),
                    "shared_training_wall_seconds": round(wall, 1)}
                   for genotype, score in zip(genotypes, scores)]
            print(f"  {name}: scored {len(arm)} in {time.perf_counter() - t:.0f} s wall",
                  flush=True)
            records += arm
            write(arm)
    return records


def table(records, truth):
    by_estimator = {}
    for r in records:
        by_estimator.setdefault(r["estimator"], []).append(r)
    lines = ["| estimator | archs | Kendall tau | Spearman rho | top-5 overlap | CPU s per arch"
             " | CPU s total |", "|---|---|---|---|---|---|---|"]
    for name, rows in by_estimator.items():
        rows = [r for r in rows if _key(r["genotype"]) in truth]
        if len(rows) < 3:
            continue
        stats = rank_stats([r["score"] for r in rows], [truth[_key(r["genotype"])] for r in rows])
        shared = max((r.get("shared_training_cpu_seconds", 0.0) for r in rows), default=0.0)
        total = shared + sum(r["cpu_seconds"] for r in rows)
        lines.append(f"| {name} | {len(rows)} | {stats['kendall_tau']:.3f} | "
                     f"{stats['spearman_rho']:.3f} | {stats['top5_overlap']} | "
                     f"{total / len(rows):.1f} | {total:.0f} |")
    return "\n".join(lines)


def report(files, benches):
    """The tables of several result files' records, against each benchmark."""
    records = []
    for name in files:
        records += json.loads(pathlib.Path(name).read_text())["records"]
    for bench in benches:
        if pathlib.Path(bench).exists():
            _, truth = load_bench(bench)
            print(f"\nAgainst {pathlib.Path(bench).name} ({len(truth)} architectures with every "
                  "seed):")
            print(table(records, truth))


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        return report(args.report, args.bench)
    quiet()
    out = pathlib.Path(args.out)
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    from nasnet_tf.io_utils import atomic_write

    data = json.loads(out.read_text()) if out.exists() else {"records": []}
    data.update(space=SPACE, recipe=RECIPE, split="train -> search_val (see cell_recipe.SPLIT)")
    data.setdefault("device", device())
    if args.try_small:
        data["try_small"] = args.try_small

    def write(new):
        data["records"] += new
        text = json.dumps(data, indent=1) + "\n"
        atomic_write(out, lambda f: f.write(text), suffix=".json")

    done = {r["estimator"] for r in data["records"]}
    genotypes = draw_genotypes(args.archs, 0)
    if args.only_benched:
        _, benched = load_bench(args.bench[0])
        genotypes = [g for g in genotypes if _key(g.to_dict()) in benched]
    splits, classes = bench_splits(args.data_dir, limit=args.try_small)
    for arm in args.arms:
        t = time.perf_counter()
        print(f"arm {arm}", flush=True)
        if arm == "shared":
            arm_shared(genotypes, splits, classes, workdir, args.shared_epochs, done, write,
                       args.shared_optimizer, args.shared_filters, args.shared_modes)
        elif (arm if arm != "zerocost" else "naswot") not in done:
            if arm == "params":
                records = arm_params(genotypes, classes)
            elif arm == "zerocost":
                records = arm_zero_cost(genotypes, splits, classes)
            elif arm == "fresh":
                records = arm_fresh(genotypes, splits, classes, workdir)
            else:
                records = arm_train(int(arm[-1]), genotypes, splits, classes)
            write(records)
        print(f"arm {arm}: {time.perf_counter() - t:.0f} s wall", flush=True)
    report([out], args.bench)


if __name__ == "__main__":
    main()
