"""Is input ever the bottleneck? The CIFAR-10 pipeline's images/s against the model's
training images/s, measured in the same run on this machine.

Pipeline: `nasnet_tf.data.load_dataset` on the class-folder CIFAR-10 images (JPEG decode,
cache, pad-crop / flip / cutout, normalise, batch, prefetch), timed over a first epoch
(decoding and filling the cache) and a second (cache hits; augmentation only). Model:
a NASNet-A CIFAR model (aux head and drop path on, as in training) stepping on batches
already in memory, with the recipe's optimizer and loss. Prints a table and the ratio.

    python benchmarks/input_pipeline.py                          # small NASNet-A, 2@192
    python benchmarks/input_pipeline.py --num-cells 6 --penultimate-filters 768   # the paper's
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nasnet_tf import build_nasnet  # noqa: E402
from nasnet_tf.data import load_dataset  # noqa: E402
from nasnet_tf.losses import LabelSmoothingCrossentropy  # noqa: E402
from nasnet_tf.recipe import TrainConfig  # noqa: E402
from nasnet_tf.recipe import make_optimizer as _optimizer  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"


def pipeline_rates(data, epochs=2):
    """Images/s of each full epoch, read through one pipeline (the cache fills in epoch 0)."""
    rates = []
    start, n = time.perf_counter(), 0
    for step, (images, _) in enumerate(data.train_epochs(0, epochs)):
        n += int(images.shape[0])
        if (step + 1) % data.steps_per_epoch == 0:
            rates.append(n / (time.perf_counter() - start))
            start, n = time.perf_counter(), 0
    return rates


def model_rate(args, batch):
    keras.utils.set_random_seed(0)
    model = build_nasnet(preset="cifar", num_cells=args.num_cells,
                         penultimate_filters=args.penultimate_filters)
    config = TrainConfig.for_preset("cifar", batch_size=args.batch_size, epochs=1)
    model.compile(optimizer=_optimizer(config, 100, 1),
                  loss=LabelSmoothingCrossentropy(0.1), jit_compile=args.jit_compile)
    images, labels = batch
    x, y = images.numpy(), labels.numpy()
    start = time.perf_counter()
    model.train_on_batch(x, y)  # traces the step
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    elapsed = time.perf_counter() - start
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return args.steps * len(x) / elapsed, first, params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-cells", type=int, default=2)
    parser.add_argument("--penultimate-filters", type=int, default=192)
    parser.add_argument("--steps", type=int, default=10, help="model steps timed")
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args()

    data = load_dataset(args.data, batch_size=args.batch_size, seed=0)
    cold, warm = pipeline_rates(data)
    n = data.steps_per_epoch * args.batch_size
    batch = next(iter(data.train_epochs(0, 1)))
    train_rate, trace_s, params = model_rate(args, batch)

    print(f"\nCIFAR-10 class folders: {data.train_size} train images {data.image_shape}, "
          f"batch {args.batch_size}, augmentation {data.augment!r}, "
          f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs")
    print(f"model: NASNet-A {args.num_cells}@{args.penultimate_filters} (aux head, drop path), "
          f"{params:,} trainable parameters, first step (trace) {trace_s:.1f} s")
    print()
    print(f"| {'stage':<46} | {'images/s':>9} |")
    print(f"|{'-' * 48}|{'-' * 11}|")
    print(f"| {f'pipeline, epoch 1 (decode + cache), {n} img':<46} | {cold:>9.0f} |")
    print(f"| {f'pipeline, epoch 2 (cached, augment), {n} img':<46} | {warm:>9.0f} |")
    print(f"| {f'model training step ({args.steps} steps)':<46} | {train_rate:>9.0f} |")
    print()
    print(f"pipeline (warm) / model: {warm / train_rate:.1f}x   "
          f"pipeline (cold) / model: {cold / train_rate:.1f}x   "
          + ("-> input is not the bottleneck" if min(cold, warm) > train_rate
             else "-> INPUT IS THE BOTTLENECK"))


if __name__ == "__main__":
    main()
