"""A depthwise convolution's gradient inside `lax.switch` against outside it (JAX, XLA CPU).

`SuperNet`'s step under JAX on a CPU is 2.3x a child's at `cifar5` and did not finish its
first step in 15 minutes at `cifar5_f32` (`estimation_speed.py --mode build`). One XLA
operation made most of the difference in the profile: the filter gradient of a 5x5 depthwise
convolution (a separable conv's first layer) on the stem's 12 channels at 32x32, 300 of the
step's 1,140 ms, inside an edge's switch. This probe times that gradient alone, jitted, for
each channel count: as it is, inside a two-branch `lax.switch` (the branch taken), and inside a
switch in a `lax.fori_loop` (as `SuperCell` runs its blocks), and inside the switch again as
`nasnet_tf.jax_depthwise.depthwise_conv` computes it (summed per kernel tap, what
`SuperNet`'s separable convs use under JAX on a CPU). It prints a table and the ratios to the
plain gradient.

    python benchmarks/jax_switch_conv_probe.py --channels 12 48
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "jax"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, nargs="+", default=[12, 48])
    p.add_argument("--size", type=int, default=32, help="height and width")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import keras
    from jax import lax

    from nasnet_tf.jax_depthwise import depthwise_conv

    rows = []
    for c in args.channels:
        x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, args.size, args.size, c))
        w = jax.random.normal(jax.random.PRNGKey(1), (args.kernel, args.kernel, c, 1))

        def depthwise(x, w):
            return keras.ops.depthwise_conv(x, w, 1, "same")

        def scaled(inputs, kernel):
            return inputs * kernel[0, 0, 0]

        def branches(conv=depthwise):
            return [conv, scaled]

        def by_taps(x, w):
            return depthwise_conv(x, w, 1, "same")

        def plain(x, w, i):
            return jnp.sum(depthwise(x, w) ** 2)

        def switched(x, w, i):
            return jnp.sum(lax.switch(i, branches(), x, w) ** 2)

        def looped(x, w, i):
            def body(k, total):
                return total + jnp.sum(lax.switch(i, branches(), x, w) ** 2)

            return lax.fori_loop(0, 1, body, 0.0)

        def switched_taps(x, w, i):
            return jnp.sum(lax.switch(i, branches(by_taps), x, w) ** 2)

        times = {}
        for name, loss in (("plain", plain), ("switch", switched), ("loop + switch", looped),
                           ("switch, per tap", switched_taps)):
            grad = jax.jit(jax.grad(loss, argnums=1))
            grad(x, w, 0).block_until_ready()
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                grad(x, w, 0).block_until_ready()
                best = min(best, time.perf_counter() - start)
            times[name] = best
        rows.append((c, times))
        print(f"C={c}: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in times.items()),
              flush=True)

    print(f"\nbackend jax {jax.__version__}, {jax.devices()[0].platform}, batch {args.batch}, "
          f"{args.size}x{args.size}, {args.kernel}x{args.kernel} depthwise, "
          f"filter gradient (best of {args.repeats})\n")
    print("| channels | plain ms | in a switch ms | in a loop's switch ms "
          "| in a switch, per tap ms | ratio switch / plain | ratio per tap / plain |")
    print("|---|---|---|---|---|---|---|")
    for c, t in rows:
        print(f"| {c} | {1000 * t['plain']:.0f} | {1000 * t['switch']:.0f} | "
              f"{1000 * t['loop + switch']:.0f} | {1000 * t['switch, per tap']:.0f} | "
              f"{t['switch'] / t['plain']:.1f} | {t['switch, per tap'] / t['plain']:.1f} |")


if __name__ == "__main__":
    main()
