"""Search efficiency: the RL controller, regularized evolution and random search at equal cost,
judged by where their picks fall in the cell benchmark.

The three strategies (`ControllerOracle`, `EvolutionOracle`, KerasTuner's
`RandomSearchOracle`) search the cell benchmark's space (`cell_recipe.SPACE`) with the same
weight sharing (`SharedWeights`, its defaults), the same wall-time budget (`--max-minutes`,
no trial starts after it) and the same final selection (`FinalSelection`: the final policy's
or population's samples, or uniform ones for random search, plus the best seen, re-ranked with
the final weights, the best few trained standalone), on the benchmark's `train` images with
the `search_val` images as the validation data. One compiled super-network serves every
search of the run. Each search's pick is then trained with the benchmark's recipe
(`--recipe`: `long`, the ground truth's, by default; seed 0) and scored on the `heldout`
images no search saw, and placed in that recipe's benchmark's distribution of mean held-out
accuracies (`benchmarks/cell_bench_long.json`, or `cell_bench.json` for `short`): its
percentile. With `--picks-only` the searches run and their picks are recorded untrained; a
later run without it (on a machine with an accelerator, say) trains the picks on file.

Printed: per strategy and seed, the trials run, the pick's standalone validation score (from
the final selection), its held-out accuracy and percentile; then the mean and sd over seeds,
and each strategy's lead over random search against the seeds' spread. With `--json` the raw
results are written (rewritten after each search; a rerun skips the searches on file).

    python benchmarks/search_efficiency.py --max-minutes 20 --json benchmarks/search_efficiency.json
    python benchmarks/search_efficiency.py --max-minutes 1 --seeds 0 --strategies random  # try
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
STRATEGIES = ("controller", "evolution", "random")


def parse_args(argv=None):
    from cell_recipe import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="CIFAR-10 images as <dir>/<class>/*.jpg")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-minutes", type=float, default=20.0,
                   help="wall-time budget of each search (equal for every strategy)")
    p.add_argument("--trials", type=int, default=1000,
                   help="trial budget (epochs of the shared weights); the time ends it first")
    p.add_argument("--candidates-per-trial", type=int, default=20)
    p.add_argument("--population-size", type=int, default=20, help="evolution's P")
    p.add_argument("--sample-size", type=int, default=5, help="evolution's S")
    p.add_argument("--final-samples", type=int, default=100)
    p.add_argument("--final-standalone", type=int, default=9,
                   help="the final selection's first rung (FinalSelection's num_standalone)")
    p.add_argument("--final-epochs", type=int, default=1,
                   help="epochs of the final selection's standalone trainings (of its last "
                        "rung with --final-halving)")
    p.add_argument("--final-halving", type=int, default=None,
                   help="the final selection's successive-halving factor (default: none)")
    p.add_argument("--recipe", choices=("short", "long"), default="long",
                   help="the recipe the picks are trained with, and so the benchmark they are "
                        "placed in")
    p.add_argument("--bench", default=None,
                   help="default: benchmarks/cell_bench_long.json (long), cell_bench.json")
    p.add_argument("--picks-only", action="store_true",
                   help="run the searches and record their picks without training them")
    p.add_argument("--json", default=None, help="write (and resume from) the raw results here")
    p.add_argument("--workdir", default=None, help="tuner directories (default: a temp dir)")
    args = p.parse_args(argv)
    if args.bench is None:
        name = "cell_bench_long.json" if args.recipe == "long" else "cell_bench.json"
        args.bench = str(ROOT / "benchmarks" / name)
    return args


def make_oracle(strategy, seed, args):
    import keras_tuner

    from tuners.controller_oracle import ControllerOracle
    from tuners.evolution import EvolutionOracle

    common = dict(objective="val_accuracy", max_trials=args.trials, seed=seed,
                  max_consecutive_failed_trials=args.trials + 1)
    if strategy == "controller":
        return ControllerOracle(**common)
    if strategy == "evolution":
        return EvolutionOracle(**common, population_size=args.population_size,
                               sample_size=args.sample_size)
    return keras_tuner.oracles.RandomSearchOracle(**common)


def run_search(strategy, seed, splits, classes, args, workdir, estimator):
    from cell_recipe import RECIPE, SPACE

    from tuners import FinalSelection, NASNetHyperModel, NASTuner

    hypermodel = NASNetHyperModel(
        num_blocks=SPACE["num_blocks"], ops=SPACE["ops"], combine_ops=SPACE["combine_ops"],
        num_cells=RECIPE["num_cells"], penultimate_filters=RECIPE["penultimate_filters"],
        input_shape=splits["train"][0].shape[1:], classes=classes)
    selection = FinalSelection(num_samples=args.final_samples,
                               num_standalone=args.final_standalone,
                               standalone_epochs=args.final_epochs,
                               halving=args.final_halving, seed=seed)
    tuner = NASTuner(hypermodel, make_oracle(strategy, seed, args), estimator=estimator,
                     final_selection=selection, directory=workdir,
                     project_name=f"{strategy}_seed{seed}", overwrite=True)
    (x, y), val = splits["train"], splits["search_val"]
    start = time.perf_counter()
    tuner.search(x, y, validation_data=val, batch_size=RECIPE["batch_size"], verbose=0,
                 max_minutes=args.max_minutes)
    wall = time.perf_counter() - start
    pick = tuner.final_ranking[0]
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    return {
        "strategy": strategy, "seed": seed, "wall_s": wall, "trials": len(trials),
        "architectures_scored": estimator.num_scored, "pick": pick["genotype"],
        "pick_standalone_val": pick["standalone_val_accuracy"],
        "pick_estimate": pick["estimate"],
    }


def summarize(results, population):
    import numpy as np


    lines = ["| strategy | seed | trials | architectures scored | pick: final-selection val | "
             "pick: held-out acc | percentile |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['strategy']} | {r['seed']} | {r['trials']} | "
                     f"{r['architectures_scored']} | {r['pick_standalone_val']:.4f} | "
                     f"{r['heldout']:.4f} | {r['percentile']:.0f} |")
    lines += ["", "| strategy | held-out acc (mean ± sd) | percentile (mean) | lead over random "
              "| seeds' sd |", "|---|---|---|---|---|"]
    means = {}
    for strategy in STRATEGIES:
        runs = [r["heldout"] for r in results if r["strategy"] == strategy]
        if runs:
            means[strategy] = (float(np.mean(runs)), float(np.std(runs)))
    for strategy, (m, sd) in means.items():
        pct = np.mean([r["percentile"] for r in results if r["strategy"] == strategy])
        lead = m - means["random"][0] if "random" in means else float("nan")
        lines.append(f"| {strategy} | {m:.4f} ± {sd:.4f} | {pct:.0f} | {lead:+.4f} | {sd:.4f} |")
    lines.append(f"\nBenchmark: {len(population)} architectures, 90th percentile "
                 f"{np.percentile(population, 90):.4f}, best {max(population):.4f}")
    return "\n".join(lines)


def main(argv=None):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cell_recipe import RECIPES, bench_splits, load_bench, percentile, quiet, train_standalone

    args = parse_args(argv)
    quiet()
    from nasnet_tf import Genotype
    from nasnet_tf.io_utils import atomic_write
    from tuners import SharedWeights

    _, truth = load_bench(args.bench)
    population = list(truth.values())
    workdir = args.workdir or tempfile.mkdtemp(prefix="search_efficiency_")
    results = []
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            results = json.load(f)["results"]
    print(f"strategies={args.strategies} seeds={args.seeds} {args.max_minutes:g} minutes each, "
          f"workdir={workdir}", flush=True)
    splits, classes = bench_splits(args.data_dir)

    def save():
        if args.json:
            text = json.dumps({"args": vars(args), "results": results}, indent=1)
            atomic_write(args.json, lambda f, t=text: f.write(t), suffix=".json")

    def train_pick(result):
        result["heldout"], _ = train_standalone(Genotype.from_dict(result["pick"]),
                                                splits["train"], splits["heldout"], classes,
                                                seed=0, recipe=RECIPES[args.recipe])
        result["recipe"] = args.recipe
        result["percentile"] = percentile(result["heldout"], population)
        print(f"seed {result['seed']} {result['strategy']}: {result['trials']} trials, pick "
              f"held-out {result['heldout']:.4f} (percentile {result['percentile']:.0f})",
              flush=True)

    supernet = None
    for seed in args.seeds:
        for strategy in args.strategies:
            if any(r["strategy"] == strategy and r["seed"] == seed for r in results):
                continue
            estimator = SharedWeights(candidates_per_trial=args.candidates_per_trial,
                                      seed=seed, supernet=supernet)
            result = run_search(strategy, seed, splits, classes, args, workdir, estimator)
            supernet = estimator.supernet
            result["heldout"] = None
            results.append(result)
            save()
    if not args.picks_only:
        for result in results:  # the picks of this run, and those an earlier run left untrained
            if result.get("heldout") is None:
                train_pick(result)
                save()
    trained = [r for r in results if r.get("heldout") is not None]
    if trained:
        print()
        print(summarize(trained, population))


if __name__ == "__main__":
    main()
