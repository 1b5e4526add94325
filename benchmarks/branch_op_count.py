"""Graph operations a TensorFlow super-network's first training step creates, per candidate op.

The super-network's first step under TensorFlow is mostly Python creating graph operations
(about 0.7 ms each, forward and gradient; `benchmarks/RESULTS.md`, issue 18). This counts them
for a one-block super-network of `identity` alone, then of `identity` and each other op, so
the difference is what one op's branches cost (every cell of the network, both edges,
forward and gradient). TensorFlow only.

    python benchmarks/branch_op_count.py            # all 13 ops
    python benchmarks/branch_op_count.py --ops sep_conv_3x3 max_pool_3x3
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def count(ops, combine_ops):
    import collections

    import keras
    import numpy as np
    from tensorflow.python.framework import ops as tf_ops  # probe only: counts graph ops

    from nasnet_tf import Block, CellGenotype, Genotype
    from nasnet_tf.supernet import SuperCell, SuperNet

    keras.utils.set_random_seed(0)
    net = SuperNet(num_blocks=1, ops=ops, combine_ops=combine_ops, num_cells=1,
                   penultimate_filters=48, input_shape=(8, 8, 3), classes=10)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cell = CellGenotype([Block(0, 1, "identity", "identity", combine_ops[0])])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = rng.integers(10, size=8)
    created = collections.Counter()
    original = tf_ops.Operation.from_node_def.__func__

    def counting(cls, node_def, *args, **kwargs):
        created[node_def.op] += 1
        return original(cls, node_def, *args, **kwargs)

    tf_ops.Operation.from_node_def = classmethod(counting)
    try:
        net.train_on_batch(net.inputs_for(x, Genotype(cell, cell)), y)
    finally:
        tf_ops.Operation.from_node_def = classmethod(original)
    branches = sum(layer.traced_branches for layer in net.layers
                   if isinstance(layer, SuperCell))
    return {"ops": ops, "branches": branches, "graph_ops": sum(created.values()),
            "by_type": dict(created.most_common(12))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", nargs="+", default=None, help="ops to count (default: all 13)")
    p.add_argument("--combine-ops", nargs="+", default=["add"])
    args = p.parse_args(argv)
    from nasnet_tf import OP_NAMES

    base = count(["identity"], args.combine_ops)
    print(json.dumps(base), flush=True)
    rows = []
    for op in args.ops or [o for o in OP_NAMES if o != "identity"]:
        r = count(["identity", op], args.combine_ops)
        print(json.dumps(r), flush=True)
        extra_b = r["branches"] - base["branches"]
        extra = r["graph_ops"] - base["graph_ops"]
        rows.append((op, extra_b, extra, extra / max(extra_b, 1)))
    print(f"\nbase (identity only): {base['branches']} branches, {base['graph_ops']} graph ops")
    print("| op | branches added | graph ops added | per branch |")
    print("|---|---|---|---|")
    for op, b, n, per in rows:
        print(f"| {op} | {b} | {n} | {per:.0f} |")


if __name__ == "__main__":
    main()
