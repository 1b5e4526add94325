"""Why the shared weights do not train: one super-network trained on pools of K architectures.

The super-network of the cell benchmark's space and child (`cell_recipe.SPACE`, 1@96), trained
with `SharedWeights`' SGD recipe (constant learning rate 0.05) on the benchmark's `train`
split, each minibatch on an architecture drawn uniformly from a pool: K = 1, 2, 5 of the
benchmark's architectures, all 30 (`all`), or all 30 with every block's combine op forced to
add (`add30`) or to concat (`concat30`). Printed per epoch: the training accuracy and the
batch-statistics validation accuracy (1,024 `search_val` images) of the pool's first five.
If the training accuracy falls with K, the shared weights suffer from interference between
architectures, not from a bug (K=1 is `FreshWeights`' case).

    python benchmarks/shared_interference.py 1,2,5,all 2 sgd
    python benchmarks/shared_interference.py add30,concat30 2 sgd

(the raw output of both, 2026-12-04, 2-core CPU: `benchmarks/shared_interference.out`)
"""

import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from cell_recipe import DEFAULT_DATA, bench_splits, draw_genotypes, quiet  # noqa: E402


def forced(genotype, combine):
    """`genotype` with every block's combine op set to `combine`."""
    from nasnet_tf.genotype import Genotype

    data = genotype.to_dict()
    for cell in data.values():
        for block in cell["blocks"]:
            block["combine"] = combine
        cell.pop("concat", None)  # the unused states again
    return Genotype.from_dict(data)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    arms, epochs = argv[0].split(","), int(argv[1])
    optimizer = argv[2] if len(argv) > 2 else "sgd"
    quiet()
    from estimator_rank import hypermodel

    from tuners.weight_sharing import SharedWeights, _Batches, supernet_for

    genotypes = draw_genotypes(30, 0)
    splits, classes = bench_splits(DEFAULT_DATA)
    (x, y), (xv, yv) = splits["train"], splits["search_val"]
    estimator = SharedWeights(seed=0, optimizer=optimizer, restart_epochs=None)
    start = time.time()
    estimator.supernet = supernet_for(hypermodel(classes))
    estimator._start_weights()
    net = estimator.supernet
    print("built", round(time.time() - start), flush=True)
    train = _Batches(x, y, 64)
    order = [2, 10, 5, 0, 7]
    for arm in arms:
        if arm == "all":
            pool = genotypes
        elif arm in ("add30", "concat30"):
            pool = [forced(g, arm[:-2]) for g in genotypes]
        else:
            pool = [genotypes[i] for i in order[: int(arm)]]
        encoded = [net.encode(g) for g in pool]
        net.reinitialize(0)
        estimator._reset_optimizer()
        rng, pool_rng = np.random.default_rng(0), np.random.default_rng(1)

        def draw(step, encoded=encoded, pool_rng=pool_rng):
            return encoded[int(pool_rng.integers(len(encoded)))]

        for epoch in range(epochs):
            start = time.time()
            logs = estimator._train_epoch(train, rng, draw)
            estimator.statistics = "batch"
            batches = list(_Batches(xv[:1024], yv[:1024], 64).evaluate())
            snapshot = net.moving_statistics()
            val = [round(estimator._score(g, batches)["val_accuracy"], 3) for g in pool[:5]]
            net.restore_moving_statistics(snapshot)
            print(f"arm K={arm} opt={optimizer} epoch {epoch + 1}: train acc "
                  f"{logs['accuracy']:.3f} loss {logs['loss']:.3f} val(batch stats) {val} "
                  f"{time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
