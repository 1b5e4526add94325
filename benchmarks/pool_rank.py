"""Weight sharing within a small pool: does it rank the pool's architectures?

`shared_interference.py` shows the super-network trains well on a few architectures and badly
on many. This measures the ranking such a pool gives: the cell benchmark's architectures
(those with every seed in `cell_bench_long.json`) are shuffled (seeded) into pools of
`--pool` architectures; for each pool a fresh super-network (`SharedWeights`' SGD recipe, a
cosine learning rate over `--epochs` epochs) trains on the benchmark's `train` split, each
minibatch on an architecture drawn uniformly from the pool; after each epoch every
architecture of the pool is scored on all of `search_val` with batch statistics. Printed per
epoch count: Kendall tau against the ground truth within each pool (mean over pools), over
all architectures (pools pooled), and `train1`'s within-pool tau on the same pools (from
`estimator_rank_train.json`), with the CPU seconds per architecture.

Results go to `benchmarks/pool_rank.json`, rewritten whole after each pool; a killed run
resumes with the next pool.

    python benchmarks/pool_rank.py --pool 8 --epochs 4
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from cell_recipe import (  # noqa: E402
    DEFAULT_DATA,
    _key,
    bench_splits,
    draw_genotypes,
    load_bench,
    quiet,
    rank_stats,
)
from estimator_rank import cpu  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", type=int, default=8, help="architectures per pool")
    p.add_argument("--epochs", type=int, default=4, help="epochs of each pool's training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bench", default=str(ROOT / "benchmarks" / "cell_bench_long.json"))
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "pool_rank.json"))
    p.add_argument("--try-small", type=int, default=None, metavar="N",
                   help="a quick try of the machinery: N images per split")
    return p.parse_args(argv)


def pools_of(keys, size, seed):
    order = list(np.random.default_rng(seed).permutation(len(keys)))
    return [[keys[i] for i in order[start: start + size]]
            for start in range(0, len(order) - size + 1, size)]


def train_pool(estimator, genotypes, splits, epochs, seed, batch_size=64):
    """Per epoch, `{genotype key: batch-statistics val accuracy}` of a pool trained jointly."""
    from tuners.weight_sharing import _Batches

    net = estimator.supernet
    (x, y), (xv, yv) = splits["train"], splits["search_val"]
    train, val = _Batches(x, y, batch_size), _Batches(xv, yv, batch_size)
    batches = list(val.evaluate())
    encoded = [net.encode(g) for g in genotypes]
    net.reinitialize(seed)
    estimator._reset_optimizer()
    estimator.restart_epochs = epochs  # one cosine period over the pool's training
    steps = train.num_full_batches()
    rng, pool_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    per_epoch = []
    for epoch in range(epochs):

        def draw(step, epoch=epoch):
            net.optimizer.learning_rate = estimator.learning_rate_at(epoch + step / steps)
            return encoded[int(pool_rng.integers(len(encoded)))]

        logs = estimator._train_epoch(train, rng, draw)
        snapshot = net.moving_statistics()
        scores = {_key(g.to_dict()): estimator._score(g, batches)["val_accuracy"]
                  for g in genotypes}
        net.restore_moving_statistics(snapshot)
        per_epoch.append({"epoch": epoch + 1, "train_accuracy": logs["accuracy"],
                          "scores": scores})
        print(f"  epoch {epoch + 1}: train acc {logs['accuracy']:.3f}, val "
              f"{min(scores.values()):.3f} to {max(scores.values()):.3f}", flush=True)
    return per_epoch


def summary(data, truth, train1):
    lines = ["| epochs | pools | within-pool tau (mean) | tau, all pooled | train1 within-pool "
             "tau (same pools) | CPU s per architecture |", "|---|---|---|---|---|---|"]
    pools = data["pools"]
    if not pools:
        return "no pool finished"
    for e in range(len(pools[0]["per_epoch"])):
        within, train_within, every = [], [], {}
        for pool in pools:
            scores = pool["per_epoch"][e]["scores"]
            keys = list(scores)
            within.append(rank_stats([scores[k] for k in keys],
                                     [truth[k] for k in keys])["kendall_tau"])
            if all(k in train1 for k in keys):
                train_within.append(rank_stats([train1[k] for k in keys],
                                               [truth[k] for k in keys])["kendall_tau"])
            every.update(scores)
        keys = list(every)
        pooled = rank_stats([every[k] for k in keys], [truth[k] for k in keys])["kendall_tau"]
        cost = np.mean([p["cpu_seconds"] * (e + 1) / len(p["per_epoch"]) / len(p["keys"])
                        for p in pools])
        t1 = f"{np.mean(train_within):.2f}" if train_within else "-"
        lines.append(f"| {e + 1} | {len(pools)} | {np.mean(within):.2f} "
                     f"(sd {np.std(within):.2f}) | {pooled:.2f} | {t1} | {cost:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    _, truth = load_bench(args.bench)
    out = pathlib.Path(args.out)
    train1 = {}
    train_file = ROOT / "benchmarks" / "estimator_rank_train.json"
    if train_file.exists():
        train1 = {_key(r["genotype"]): r["score"] for r in
                  json.loads(train_file.read_text())["records"] if r["estimator"] == "train1"}
    settings = {"pool": args.pool, "epochs": args.epochs, "seed": args.seed,
                "bench": pathlib.Path(args.bench).name, "try_small": args.try_small}
    data = json.loads(out.read_text()) if out.exists() else None
    if data is None or data.get("settings") != settings:
        data = {"settings": settings, "pools": []}
    quiet()
    from estimator_rank import hypermodel

    from nasnet_tf.genotype import Genotype
    from nasnet_tf.io_utils import atomic_write
    from tuners.weight_sharing import SharedWeights, supernet_for

    benched = {_key(g.to_dict()): g for g in draw_genotypes(30, 0)
               if _key(g.to_dict()) in truth}
    pools = pools_of(sorted(benched), args.pool, args.seed)
    splits, classes = bench_splits(args.data_dir, limit=args.try_small)
    estimator = None
    for index, keys in enumerate(pools):
        if index < len(data["pools"]):
            continue
        if estimator is None:
            estimator = SharedWeights(seed=args.seed)
            estimator.supernet = supernet_for(hypermodel(classes))
            estimator._start_weights()
        print(f"pool {index + 1} of {len(pools)} ({len(keys)} architectures)", flush=True)
        start, wall = cpu(), time.perf_counter()
        per_epoch = train_pool(estimator, [Genotype.from_dict(json.loads(k)) for k in keys],
                               splits, args.epochs, args.seed + index)
        data["pools"].append({"keys": keys, "per_epoch": per_epoch,
                              "cpu_seconds": round(cpu() - start, 1),
                              "wall_seconds": round(time.perf_counter() - wall, 1)})
        text = json.dumps(data, indent=1) + "\n"
        atomic_write(out, lambda f, text=text: f.write(text), suffix=".json")
    print(summary(data, truth, train1))


if __name__ == "__main__":
    main()
