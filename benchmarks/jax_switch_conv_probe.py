"""A depthwise convolution's gradient inside `lax.switch` against outside it (JAX, XLA CPU).

`SuperNet`'s step under JAX on a CPU is 2.3x a child's at `cifar5` and did not finish its
first step in 15 minutes at `cifar5_f32` (`estimation_speed.py --mode build`). One XLA
operation made most of the difference in the profile: the filter gradient of a 5x5 depthwise
convolution (a separable conv's first layer) on the stem's 12 channels at 32x32, 300 of the
step's 1,140 ms, inside an edge's switch. This probe times that gradient alone, jitted, for
each channel count: as it is, inside a two-branch `lax.switch` (the branch taken), and inside a
switch in a `lax.fori_loop` (as `SuperCell` runs its blocks). It prints a table and the ratio
to the plain gradient.

    KERAS_BACKEND=jax python benchmarks/jax_switch_conv_probe.py --channels 12 48
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
    from jax import lax

    rows = []
    for c in args.channels:
        x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, args.size, args.size, c))
        w = jax.random.normal(jax.random.PRNGKey(1), (args.kernel, args.kernel, 1, c))

        def depthwise(x, w, c=c):
            return lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=c,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def scaled(inputs, kernel):
            return inputs * kernel[0, 0, 0]

        def branches():
            return [depthwise, scaled]

        def plain(x, w, i):
            return jnp.sum(depthwise(x, w) ** 2)

        def switched(x, w, i):
            return jnp.sum(lax.switch(i, branches(), x, w) ** 2)

        def looped(x, w, i):
            def body(k, total):
                return total + jnp.sum(lax.switch(i, branches(), x, w) ** 2)

            return lax.fori_loop(0, 1, body, 0.0)

        times = {}
        for name, loss in (("plain", plain), ("switch", switched), ("loop + switch", looped)):
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
          "| ratio (switch / plain) |")
    print("|---|---|---|---|---|")
    for c, t in rows:
        print(f"| {c} | {1000 * t['plain']:.0f} | {1000 * t['switch']:.0f} | "
              f"{1000 * t['loop + switch']:.0f} | {t['switch'] / t['plain']:.1f} |")


if __name__ == "__main__":
    main()
