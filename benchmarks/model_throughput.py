"""`build_nasnet` NASNet-A Mobile against `keras.applications.NASNetMobile`.

Same batch, same input, same process, measured alternately round after round: training images/s,
inference images/s and build time; peak memory is measured in a fresh subprocess per model (peak
RSS on the CPU, the accelerator's peak bytes in use under JAX on a GPU). Prints a table with the
ratio ours / Keras (for images/s, higher is better for us; for time and memory, lower is).

    python benchmarks/model_throughput.py                      # CPU defaults (batch 16)
    KERAS_BACKEND=jax python benchmarks/model_throughput.py --batch 256 --rounds 3   # a GPU
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def build(which, size):
    if which == "ours":
        from nasnet_tf import build_nasnet

        return build_nasnet(preset="mobile", auxiliary_head=False, input_shape=(size, size, 3))
    return keras.applications.NASNetMobile(weights=None, input_shape=(size, size, 3))


def compiled(which, size):
    start = time.perf_counter()
    model = build(which, size)
    build_s = time.perf_counter() - start
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model, build_s


def timed(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    keras.ops.convert_to_numpy(out)  # wait for asynchronous backends
    return time.perf_counter() - start


def peak_memory(which, size, batch):
    """Peak memory of building and running one train step, in a fresh process."""
    code = (
        "import sys, json, resource, numpy as np, keras\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "from model_throughput import compiled\n"
        f"m, _ = compiled({which!r}, {size})\n"
        f"x = np.random.rand({batch}, {size}, {size}, 3).astype('float32')\n"
        f"y = np.random.randint(0, 1000, {batch})\n"
        "m.train_on_batch(x, y); m.predict_on_batch(x)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "out = {'rss_mb': int(hwm[0].split()[1]) / 1024 if hwm else\n"
        "       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}\n"
        "if keras.backend.backend() == 'jax':\n"
        "    import jax\n"
        "    stats = jax.devices()[0].memory_stats() or {}\n"
        "    if 'peak_bytes_in_use' in stats:\n"
        "        out['device_mb'] = stats['peak_bytes_in_use'] / 2**20\n"
        "print('RESULT', json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"memory probe failed for {which}:\n{proc.stderr[-2000:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)

    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.randint(0, 1000, args.batch)
    names = ("ours", "keras")
    results = {n: {"build_s": [], "train": [], "infer": []} for n in names}
    # Memory first, in fresh processes, while this one is still small.
    if not args.no_memory:
        for name in names:
            mem = peak_memory(name, args.size, args.batch)
            results[name]["memory_mb"] = [mem.get("device_mb", mem["rss_mb"])]
            results[name]["memory_kind"] = "device" if "device_mb" in mem else "rss"
    build(names[0], 32)  # initialise the backend before timing builds
    for _ in range(args.rounds):  # builds alternate too: the first one pays for warm caches
        for name in names:
            model, build_s = compiled(name, args.size)
            results[name]["build_s"].append(build_s)
            del model
    models = {}
    for name in names:
        models[name], _ = compiled(name, args.size)
        models[name].train_on_batch(x, y)  # compile / warm up
        models[name].predict_on_batch(x)
    for _ in range(args.rounds):
        for name in names:
            model = models[name]
            seconds = timed(lambda m=model: m.train_on_batch(x, y, return_dict=False), args.steps)
            results[name]["train"].append(args.steps * args.batch / seconds)
            seconds = timed(lambda m=model: m.predict_on_batch(x), args.steps)
            results[name]["infer"].append(args.steps * args.batch / seconds)

    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0].device_kind
    print(f"\nNASNet-A Mobile {args.size}x{args.size}, batch {args.batch}, backend "
          f"{keras.backend.backend()}, device {device}, {args.rounds} rounds x {args.steps} steps "
          f"(median)")
    rows = [("training images/s", "train"), ("inference images/s", "infer"),
            ("build time (s)", "build_s")]
    if not args.no_memory:
        rows.append((f"peak memory (MiB, {results['ours']['memory_kind']})", "memory_mb"))
    header = ("metric", "nasnet_tf", "keras.applications", "ours/keras")
    print("| {:<28} | {:>10} | {:>18} | {:>10} |".format(*header))
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 20}|{'-' * 12}|")
    for label, key in rows:
        ours = statistics.median(results["ours"][key])
        theirs = statistics.median(results["keras"][key])
        print(f"| {label:<28} | {ours:>10.2f} | {theirs:>18.2f} | {ours / theirs:>10.3f} |")
    print(f"\nmax RSS of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
