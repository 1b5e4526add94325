"""Probe for issue 18: a super-network cell's blocks traced once, as one loop, instead of once
per block.

The super-network's first step and memory grow with its switch branches (about 10 MB and
0.26 s each under TensorFlow, `RESULTS.md`), and it has one switch per edge: 2B of them per
cell. This probe measures what a loop over the blocks would save, on a simplified cell of the
same shape of computation (each edge selects its input from the stacked states, then one of
`--ops` ops, by default 5: identity, ReLU-separable 3x3 / 5x5-batch norm, average and max
pooling; up to 10 with separable 7x7, max pooling 5x5 / 7x7 and ReLU-conv 1x1 / 3x3-batch
norm; batch statistics, no moving ones), C cells at 16x16x16, batch 32, SGD,
`train_on_batch`. The arms, each in a fresh process:

- `unrolled`: one switch per edge, 2B per cell (what `SuperNet` does today);
- `blocks`: one `keras.ops.fori_loop` over the B blocks per cell, its body holding the two
  edges' switches, each block's weights stacked on a leading axis and sliced by the loop index;
- `edges`: one loop over the 2B edges, one switch in its body.

Printed: the first `train_on_batch` (tracing, compiling and one step), the median of 10 later
steps on other architectures, the peak resident memory (the process's, imports included), each
against `unrolled`, and the first step's loss (the same weights and architecture in every arm:
the arms compute the same function when it is the same).

    python benchmarks/block_loop_probe.py [--ops 10]     # KERAS_BACKEND=jax for JAX
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODES = ("unrolled", "blocks", "edges")


def _driver():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--ops", type=int, default=5, choices=range(2, 11), metavar="2..10",
                   help="candidate ops per edge (the first of identity, sep 3x3, sep 5x5, avg "
                   "3x3, max 3x3, sep 7x7, max 5x5, max 7x7, conv 1x1, conv 3x3)")
    p.add_argument("--write", choices=("mask", "scatter"), default="mask",
                   help="how a block's output goes into the state stack: added under a one-hot "
                   "mask, or `keras.ops.scatter_update` of the slot (`slice_update` has no "
                   "gradient under TensorFlow)")
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return args
    rows = {}
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{os.getloadavg()[0]:.2f}, B={args.blocks}, {args.cells} cells, {args.ops} ops, "
          f"write {args.write}")
    print("| arm | backend | first step s | step ms | peak RSS GB | first step / unrolled |"
          " step / unrolled | first loss |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--blocks",
                              str(args.blocks), "--cells", str(args.cells), "--ops",
                              str(args.ops), "--write", args.write],
                             capture_output=True, text=True, check=True).stdout
        r = rows[mode] = json.loads(out.strip().splitlines()[-1])
        base = rows["unrolled"]
        print(f"| {mode} | {r['backend']} | {r['first_s']:.1f} | {r['step_ms']:.1f} | "
              f"{r['rss_gb']:.2f} | {r['first_s'] / base['first_s']:.2f} | "
              f"{r['step_ms'] / base['step_ms']:.2f} | {r['loss']:.6f} |", flush=True)
    sys.exit(0)


ARGS = _driver()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

MODE, B, CELLS = ARGS.child, ARGS.blocks, ARGS.cells
keras.utils.set_random_seed(0)  # the same weights in every arm: the same first loss
N, H, C = 32, 16, 16
OPS = ("identity", "sep3", "sep5", "avg3", "max3", "sep7", "max5", "max7", "conv1", "conv3")
K = ARGS.ops


def bn(x):
    mean = ops.mean(x, axis=(0, 1, 2), keepdims=True)
    var = ops.var(x, axis=(0, 1, 2), keepdims=True)
    return (x - mean) * ops.rsqrt(var + 1e-3)


def sep(x, dw, pw):
    x = ops.relu(x)
    x = ops.depthwise_conv(x, dw, padding="same")
    x = ops.conv(x, pw, padding="same")
    return bn(x)


def conv(x, kernel):
    return bn(ops.conv(ops.relu(x), kernel, padding="same"))


def branches(x, w):
    """The first K ops on x with weights w (dict name -> tensor)."""
    return [
        lambda: x,
        lambda: sep(x, w["dw3"], w["pw3"]),
        lambda: sep(x, w["dw5"], w["pw5"]),
        lambda: ops.average_pool(x, 3, 1, padding="same"),
        lambda: ops.max_pool(x, 3, 1, padding="same"),
        lambda: sep(x, w["dw7"], w["pw7"]),
        lambda: ops.max_pool(x, 5, 1, padding="same"),
        lambda: ops.max_pool(x, 7, 1, padding="same"),
        lambda: conv(x, w["k1"]),
        lambda: conv(x, w["k3"]),
    ][:K]


SHAPES = {"dw3": (3, 3, C, 1), "pw3": (1, 1, C, C), "dw5": (5, 5, C, 1), "pw5": (1, 1, C, C),
          "dw7": (7, 7, C, 1), "pw7": (1, 1, C, C), "k1": (1, 1, C, C), "k3": (3, 3, C, C)}
NEEDS = {"sep3": ("dw3", "pw3"), "sep5": ("dw5", "pw5"), "sep7": ("dw7", "pw7"),
         "conv1": ("k1",), "conv3": ("k3",)}
SHAPES = {name: SHAPES[name] for op in OPS[:K] for name in NEEDS.get(op, ())}


class Cell(keras.layers.Layer):
    def build(self, input_shape):
        init = keras.initializers.GlorotUniform(seed=0)
        lead = (B, 2)
        self.w = {k: self.add_weight(shape=lead + s, initializer=init, name=k)
                  for k, s in SHAPES.items()}

    def call(self, x, arch):
        # arch: [B, 4] ints: input_a, op_a, input_b, op_b
        states = ops.stack([x, x * 0.5] + [ops.zeros_like(x)] * B, axis=0)
        if MODE == "unrolled":
            for k in range(B):
                outs = []
                for side in (0, 1):
                    src = _take(states, arch[k, 2 * side])
                    w = {n: v[k, side] for n, v in self.w.items()}
                    outs.append(ops.switch(arch[k, 2 * side + 1], branches(src, w)))
                states = _put(states, 2 + k, outs[0] + outs[1])
        elif MODE == "edges":
            ws = {n: ops.reshape(ops.convert_to_tensor(v), (2 * B,) + tuple(v.shape[2:]))
                  for n, v in self.w.items()}
            flat = ops.reshape(arch, (2 * B, 2))

            def body(e, states):
                src = _take(states, flat[e, 0])
                w = {n: _take(v, e) for n, v in ws.items()}
                y = ops.switch(flat[e, 1], branches(src, w))
                return _put(states, 2 + e // 2, y)

            states = ops.fori_loop(0, 2 * B, body, states)
        else:
            ws = {n: ops.convert_to_tensor(v) for n, v in self.w.items()}

            def body(k, states):
                outs = []
                for side in (0, 1):
                    src = _take(states, arch[k, 2 * side])
                    w = {n: _take(_take(v, k), side) for n, v in ws.items()}
                    outs.append(ops.switch(arch[k, 2 * side + 1], branches(src, w)))
                return _put(states, 2 + k, outs[0] + outs[1])

            states = ops.fori_loop(0, B, body, states)
        return ops.mean(states[2:], axis=0)


def _put(states, i, y):
    """`states` with `y` added into slot `i` (zero until its block writes it; a block's two
    edges add into it)."""
    if ARGS.write == "scatter":
        return ops.scatter_update(states, ops.reshape(ops.cast(i, "int32"), (1, 1)),
                                  (_take(states, i) + y)[None])
    mask = ops.cast(ops.equal(ops.arange(2 + B), i), y.dtype)[:, None, None, None, None]
    return states + mask * y[None]


def _take(stack, i):
    sizes = list(stack.shape)
    sizes[0] = 1
    return ops.squeeze(ops.slice(stack, [i] + [0] * (len(sizes) - 1), sizes), axis=0)


class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.stem = keras.layers.Conv2D(C, 3, padding="same")
        self.cells = [Cell() for _ in range(CELLS)]
        self.head = keras.layers.Dense(10, activation="softmax")

    def call(self, inputs):
        x, arch = inputs["x"], inputs["arch"]
        a = ops.reshape(arch[0], (CELLS, B, 4))
        x = self.stem(x)
        for i, cell in enumerate(self.cells):
            x = cell(x, a[i])
        return self.head(ops.mean(x, axis=(1, 2)))


rng = np.random.default_rng(0)
x = rng.normal(size=(N, H, H, 3)).astype("float32")
y = rng.integers(0, 10, N)


def arch(seed):
    r = np.random.default_rng(seed)
    a = np.stack([[r.integers(2 + k), r.integers(K), r.integers(2 + k), r.integers(K)]
                  for _ in range(CELLS) for k in range(B)]).reshape(-1).astype("int32")
    return np.tile(a[None], (N, 1))


net = Net()
net.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
net({"x": x[:2], "arch": arch(0)[:2]})
net.optimizer.build(net.trainable_variables)
t = time.perf_counter()
loss = float(net.train_on_batch({"x": x, "arch": arch(1)}, y))
first = time.perf_counter() - t
times = []
for s in range(2, 12):
    t = time.perf_counter()
    net.train_on_batch({"x": x, "arch": arch(s)}, y)
    times.append(time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(json.dumps({"backend": keras.backend.backend(), "first_s": first,
                  "step_ms": float(np.median(times)) * 1e3, "rss_gb": rss, "loss": loss}))
