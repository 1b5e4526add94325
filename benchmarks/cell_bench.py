"""The cell benchmark: the ground truth every estimator and search is judged against.

`--archs` architectures of `cell_recipe.SPACE` (B=3, ENAS' five ops, add and concat), drawn
uniformly with a fixed seed, each trained standalone with `cell_recipe.RECIPE` on the 10,000
`train` images of the shared CIFAR-10 folder once per seed, and scored on the 2,000 disjoint
`heldout` images. Writes `benchmarks/cell_bench.json`: the space, recipe and split at the top,
one record per run (`genotype`, `seed`, `heldout_accuracy`, `params`, `seconds`), and a
summary with the noise ceiling: the Kendall tau between the seeds' rankings.

Resumable: the file is rewritten whole after each run, and a rerun skips the runs it holds, so
a killed build goes on where it stopped (`--archs` may grow between runs: the draw is a fixed
sequence). Runs are ordered architecture by architecture, every seed of one before the next,
so a partial file already gives the ceiling on the architectures done.

    python benchmarks/cell_bench.py                 # 30 architectures x seeds 0, 1
    python benchmarks/cell_bench.py --archs 4 --out /tmp/cb.json   # a small try

`--recipe long` trains with `cell_recipe.LONG_RECIPE` (4x the images, augmented; meant for an
accelerator) and writes `benchmarks/cell_bench_long.json`. `--shard I/K` trains only the
architectures whose index is I modulo K, so K processes can share one accelerator (their
files are merged by `device_bench.py`).
"""

import argparse
import json
import resource
import time

from cell_recipe import (
    BENCH_JSON,
    DEFAULT_DATA,
    RECIPES,
    SPACE,
    SPLIT,
    _key,
    bench_splits,
    device,
    draw_genotypes,
    quiet,
    rank_stats,
    train_standalone,
)

DRAW_SEED = 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=30, help="architectures drawn (at least 2)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="short")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA),
                   help="the image folder, or an .npz file of cell_recipe.export_splits")
    p.add_argument("--out", default=None,
                   help="default: benchmarks/cell_bench.json (short), cell_bench_long.json")
    p.add_argument("--shard", default="0/1", help="I/K: only the architectures I modulo K")
    p.add_argument("--try-small", type=int, default=None, metavar="N",
                   help="a quick try of the machinery: N images per split and 1 epoch "
                        "(recorded in the file's recipe; never the kept benchmark)")
    args = p.parse_args(argv)
    if args.archs < 2:
        p.error(f"--archs must be at least 2. Received: {args.archs}")
    try:
        args.shard = tuple(int(v) for v in args.shard.split("/"))
        if len(args.shard) != 2 or not 0 <= args.shard[0] < args.shard[1]:
            raise ValueError
    except ValueError:
        p.error(f"--shard must be I/K with 0 <= I < K. Received: {args.shard}")
    if args.out is None:
        args.out = str(BENCH_JSON if args.recipe == "short"
                       else BENCH_JSON.with_name(f"cell_bench_{args.recipe}.json"))
    return args


def summary(bench):
    import numpy as np

    by_arch = {}
    for r in bench["records"]:
        by_arch.setdefault(_key(r["genotype"]), {})[r["seed"]] = r["heldout_accuracy"]
    seeds = bench["seeds"]
    complete = [v for v in by_arch.values() if all(s in v for s in seeds)]
    out = {"architectures_complete": len(complete), "runs": len(bench["records"]),
           "cpu_seconds": round(sum(r["cpu_seconds"] for r in bench["records"]), 1),
           "wall_seconds": round(sum(r["seconds"] for r in bench["records"]), 1)}
    if len(complete) >= 3 and len(seeds) >= 2:
        if len(seeds) > 2:
            pairs = [(s, t) for i, s in enumerate(seeds) for t in seeds[i + 1:]]
            out["seed_kendall_tau_pairs_mean"] = round(float(np.mean(
                [rank_stats([v[s] for v in complete], [v[t] for v in complete])["kendall_tau"]
                 for s, t in pairs])), 4)
        a = [v[seeds[0]] for v in complete]
        b = [v[seeds[1]] for v in complete]
        means = [float(np.mean([v[s] for s in seeds])) for v in complete]
        stats = rank_stats(a, b)
        out.update(
            seed_kendall_tau=round(stats["kendall_tau"], 4),
            seed_spearman_rho=round(stats["spearman_rho"], 4),
            seed_abs_diff_mean=round(float(np.mean(np.abs(np.subtract(a, b)))), 4),
            mean_accuracy=round(float(np.mean(means)), 4),
            min_accuracy=round(float(np.min(means)), 4),
            max_accuracy=round(float(np.max(means)), 4),
            percentile_90=round(float(np.percentile(means, 90)), 4),
        )
    return out


def write(path, bench):
    from nasnet_tf.io_utils import atomic_write

    bench["summary"] = summary(bench)
    text = json.dumps(bench, indent=1) + "\n"
    atomic_write(path, lambda f: f.write(text), suffix=".json")


def main(argv=None):
    args = parse_args(argv)
    quiet()
    recipe = dict(RECIPES[args.recipe])
    if args.try_small:
        recipe.update(epochs=1, try_small=args.try_small)
    try:
        with open(args.out) as f:
            bench = json.load(f)
        if (bench["space"], bench["recipe"], bench["split"]) != (SPACE, recipe, SPLIT):
            raise SystemExit(f"{args.out} holds a benchmark of another space, recipe or split; "
                             "move it away or pass another --out.")
    except FileNotFoundError:
        bench = {"space": SPACE, "recipe": recipe, "split": SPLIT, "draw_seed": DRAW_SEED,
                 "seeds": args.seeds, "records": []}
    bench["seeds"] = sorted(set(bench["seeds"]) | set(args.seeds))
    done = {(_key(r["genotype"]), r["seed"]) for r in bench["records"]}
    genotypes = draw_genotypes(args.archs, DRAW_SEED)
    index, shards = args.shard
    todo = [(i, g, s) for i, g in enumerate(genotypes) for s in args.seeds
            if i % shards == index and (_key(g.to_dict()), s) not in done]
    where = device()
    print(f"cell benchmark: {args.archs} architectures x seeds {args.seeds}; "
          f"{len(done)} runs on file, {len(todo)} to do -> {args.out}", flush=True)
    if todo:
        splits, classes = bench_splits(args.data_dir, limit=args.try_small)
    for i, genotype, seed in todo:
        start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        accuracy, params = train_standalone(genotype, splits["train"], splits["heldout"],
                                            classes, seed, recipe=recipe)
        used = resource.getrusage(resource.RUSAGE_SELF)
        bench["records"].append({
            "index": i, "genotype": genotype.to_dict(), "seed": seed,
            "heldout_accuracy": accuracy, "params": params,
            "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime, 1),
            "device": where,
        })
        write(args.out, bench)
        s = bench["summary"]
        print(f"arch {i:3d} seed {seed}: held-out {accuracy:.4f} params {params} "
              f"{bench['records'][-1]['seconds']:.0f}s | complete {s['architectures_complete']}"
              + (f" seed tau {s['seed_kendall_tau']:.3f}" if "seed_kendall_tau" in s else ""),
              flush=True)
    write(args.out, bench)
    print(json.dumps(bench["summary"], indent=1))


if __name__ == "__main__":
    main()
