"""A separable conv's gradients inside `lax.switch` against outside it, its pointwise (1x1)
convolution as a convolution or as a matrix product (JAX, XLA CPU).

After the depthwise filter gradient (`jax_switch_conv_probe.py`), the 1x1 convolution's
filter gradient was the next one XLA's CPU backend ran slowly inside a switch branch. This
probe times the gradients of `sum(sep(x) ** 2)` with respect to the input (`x`), the depthwise
kernel (`w`), the pointwise kernel (`p`) and all three, jitted, plain and inside a two-branch
switch (the branch taken), with the depthwise conv of `nasnet_tf.jax_depthwise` and the
pointwise one as `keras.ops.conv` (`--pointwise conv`) or `keras.ops.matmul` (`matmul`).

    python benchmarks/jax_pointwise_probe.py 96 32 --pointwise conv
    python benchmarks/jax_pointwise_probe.py 96 32 --pointwise matmul
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "jax"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("channels", type=int, help="C, the input's channels")
    p.add_argument("filters", type=int, help="F, the pointwise conv's")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--pointwise", choices=["conv", "matmul"], default="matmul")
    args = p.parse_args(argv)
    import jax
    import jax.numpy as jnp
    import keras
    from jax import lax

    from nasnet_tf.jax_depthwise import depthwise_conv

    c, f = args.channels, args.filters
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (args.batch, args.size, args.size, c))
    w = jax.random.normal(keys[1], (5, 5, c, 1))
    pw = jax.random.normal(keys[2], (1, 1, c, f))

    def sep(x, w, pw):
        y = depthwise_conv(x, w, 1, "same")
        if args.pointwise == "conv":
            return keras.ops.conv(y, pw, 1, "valid")
        return keras.ops.matmul(y, pw[0, 0])

    def other(x, w, pw):
        return jnp.zeros(x.shape[:3] + (f,)) + x[..., :1] * w[0, 0, 0, 0] * pw[0, 0, 0, 0]

    def plain(x, w, pw, i):
        return jnp.sum(sep(x, w, pw) ** 2)

    def switched(x, w, pw, i):
        return jnp.sum(lax.switch(i, [sep, other], x, w, pw) ** 2)

    print(f"| gradient of ({args.pointwise}, C={c}, F={f}) | plain ms | in a switch ms | ratio |")
    print("|---|---|---|---|")
    for argnums, label in ((0, "x"), (1, "w"), (2, "p"), ((0, 1, 2), "all")):
        best = {}
        for name, loss in (("plain", plain), ("switch", switched)):
            grad = jax.jit(jax.grad(loss, argnums=argnums))
            jax.block_until_ready(grad(x, w, pw, 0))
            times = []
            for _ in range(2):
                start = time.perf_counter()
                jax.block_until_ready(grad(x, w, pw, 0))
                times.append(time.perf_counter() - start)
            best[name] = min(times)
        print(f"| {label} | {1000 * best['plain']:.0f} | {1000 * best['switch']:.0f} | "
              f"{best['switch'] / best['plain']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
