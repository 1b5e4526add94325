"""Which final selection picks the best cell: policies replayed on measured scores.

`tuners.FinalSelection` ends a search by training its best few proposals standalone. How many,
for how long? This replays selection policies on scores that were measured, not modelled: the
cell benchmark's architectures (`cell_bench_long.json`, the ground truth: mean held-out
accuracy over 3 seeds of the long recipe) with every estimator score `estimator_rank.py`
recorded for them (`train1`, `train3`: the child trained 1 or 3 epochs from scratch on the
`train` split, scored on `search_val`; the weight-sharing scores). Each trial draws
`--proposals` of the benchmarked architectures at random (the proposals a search hands to its
final selection), orders them by a screen (the weight-sharing estimate, or none), and applies a
policy; the pick's ground-truth accuracy and its percentile among all benchmarked
architectures are averaged over `--draws` draws (seeded).

Policies (budget: child epochs of standalone training):
- `3 x 3 epochs` (FinalSelection's previous default): the first 3 trained 3 epochs,
  best `train3` wins. 9 epochs.
- `9 x 1 epoch` (FinalSelection's default now): the first 9 trained 1 epoch, best `train1`
  wins. 9 epochs.
- `9 x 1 -> 3 x 3` (`halving=3`): 9 trained 1 epoch, the best 3 of them 3 epochs, best
  `train3` wins. 18 epochs.
- `6 x 1 -> 2 x 3`: 12 epochs.
- `1 x 0`: the screen's first, untrained (what a search without a final selection keeps).

Limits: one training seed per architecture was measured, so the replay varies the proposals,
not the training noise; 24 architectures are few, so a draw of 12 overlaps others'. Read the
differences between policies, at the standard errors printed.

    python benchmarks/selection_policy.py > benchmarks/selection_policy.out
"""

import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cell_recipe import _key, load_bench  # noqa: E402

POLICIES = {
    "1 x 0 (the screen's first, untrained)": ([], 0),
    "3 x 3 epochs (the previous default)": ([(3, "train3")], 9),
    "9 x 1 epoch (default now)": ([(9, "train1")], 9),
    "6 x 1 -> 2 x 3": ([(6, "train1"), (2, "train3")], 12),
    "9 x 1 -> 3 x 3 (halving=3)": ([(9, "train1"), (3, "train3")], 18),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default=str(ROOT / "benchmarks" / "cell_bench_long.json"))
    p.add_argument("--scores", nargs="+", default=sorted(
        str(f) for f in (ROOT / "benchmarks").glob("estimator_rank*.json")))
    p.add_argument("--screens", nargs="+", default=["none", "shared-5-batch",
                                                    "shared-10-batch"])
    p.add_argument("--proposals", type=int, default=12)
    p.add_argument("--draws", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_scores(files):
    scores = {}
    for name in files:
        for r in json.loads(pathlib.Path(name).read_text())["records"]:
            scores.setdefault(r["estimator"], {})[_key(r["genotype"])] = r["score"]
    return scores


def replay(keys, truth, scores, screen, rungs, proposals, draws, seed):
    """Mean ground truth and percentile of the policy's picks over `draws` draws of
    `proposals` of `keys` (with repeats when `keys` holds repeats: a bootstrap sample)."""
    rng = np.random.default_rng(seed)
    accuracy = np.array([truth[k] for k in keys])
    picked = []
    for _ in range(draws):
        candidates = [keys[i] for i in rng.choice(len(keys), proposals, replace=False)]
        if screen != "none":
            candidates.sort(key=lambda k: -scores[screen][k])
        # Rung 1 takes the screen's first `size`; later rungs the best of the previous one.
        first, rest = (rungs[0], rungs[1:]) if rungs else ((1, None), [])
        finalists = sorted(candidates[: first[0]], key=lambda k: (
            0 if first[1] is None else -scores[first[1]][k]))
        for size, estimator in rest:
            finalists = sorted(finalists[:size], key=lambda k: -scores[estimator][k])
        picked.append(truth[finalists[0]])
    picked = np.array(picked)
    percentile = (accuracy[None, :] < picked[:, None]).mean(axis=1) * 100
    p90 = np.percentile(accuracy, 90)
    return {"accuracy": picked.mean(), "percentile": percentile.mean(),
            "at_or_above_p90": (picked >= p90).mean()}


def bootstrap_se(keys, truth, scores, screen, rungs, args, resamples=100):
    """The standard error of the mean percentile from the finite set of architectures: the
    replay repeated on architectures resampled with replacement."""
    rng = np.random.default_rng([args.seed, 1])
    values = []
    for b in range(resamples):
        sample = [keys[i] for i in rng.integers(len(keys), size=len(keys))]
        values.append(replay(sample, truth, scores, screen, rungs, args.proposals,
                             max(200, args.draws // 50), [args.seed, 2, b])["percentile"])
    return float(np.std(values))


def main(argv=None):
    args = parse_args(argv)
    _, truth = load_bench(args.bench)
    scores = load_scores(args.scores)
    needed = {e for rungs, _ in POLICIES.values() for _, e in rungs}
    needed |= {s for s in args.screens if s != "none"}
    missing = sorted(e for e in needed if e not in scores)
    if missing:
        raise SystemExit(f"No scores for {missing} in {args.scores}: run estimator_rank.py "
                         "with those arms first.")
    keys = sorted(k for k in truth if all(k in scores[e] for e in needed))
    accuracy = np.array([truth[k] for k in keys])
    print(f"{len(keys)} benchmarked architectures with every score; ground truth mean "
          f"{accuracy.mean():.4f}, 90th percentile {np.percentile(accuracy, 90):.4f}, best "
          f"{accuracy.max():.4f}. {args.proposals} proposals per draw, {args.draws} draws.")
    for screen in args.screens:
        print(f"\nScreen: {screen}\n")
        print("| policy | standalone epochs | pick: ground-truth acc | pick: percentile | "
              "pick at or above p90 |")
        print("|---|---|---|---|---|")
        for name, (rungs, epochs) in POLICIES.items():
            r = replay(keys, truth, scores, screen, rungs, args.proposals, args.draws,
                       args.seed)
            se = bootstrap_se(keys, truth, scores, screen, rungs, args)
            print(f"| {name} | {epochs} | {r['accuracy']:.4f} | {r['percentile']:.1f} "
                  f"(± {se:.1f}) | {r['at_or_above_p90']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
