"""A short, bounded training of a NASNet-A CIFAR model on the shared CIFAR-10 images.

The recipe is `TrainConfig.for_preset("cifar")` (SGD + Nesterov, cosine decay, label smoothing
0.1, aux head 0.4, ScheduledDropPath, weight decay 5e-4, clipnorm 5) shrunk to what a 2-core
CPU trains in about ten minutes: a small N@P, few epochs, optionally a subset of the images.
10% of the images (seeded) are held out; their accuracy is printed after every epoch with the
training images/s, then the held-out accuracy and inference images/s of the final model.

    python benchmarks/train_cifar.py            # 10 epochs x 150 steps: ~10 min, 2 CPU cores
    python benchmarks/train_cifar.py --epochs 600 --steps-per-epoch 0 --num-cells 6 \
        --penultimate-filters 768 --bn-momentum 0.9997 --learning-rate 0.025   # the paper
"""

import argparse
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from nasnet_tf.data import load_dataset  # noqa: E402
from nasnet_tf.training import TrainConfig, train  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"


class Timer(keras.callbacks.Callback):
    """Per epoch: training seconds (validation excluded) and images seen."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.rows = []
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start, self.train_s, self.steps = time.perf_counter(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_test_begin(self, logs=None):
        self.train_s = time.perf_counter() - self.epoch_start

    def on_epoch_end(self, epoch, logs=None):
        train_s = self.train_s or time.perf_counter() - self.epoch_start
        self.rows.append(dict(
            epoch=epoch + 1, acc=logs.get("accuracy"), val=logs.get("val_accuracy"),
            rate=self.steps * self.batch_size / train_s,
            elapsed=(time.perf_counter() - self.start) / 60,
        ))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=150,
                        help="cap per epoch (0: the whole training split)")
    parser.add_argument("--num-cells", type=int, default=1)
    parser.add_argument("--penultimate-filters", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--bn-momentum", type=float, default=0.99,
                        help="batch-norm momentum; slim's 0.9997 needs thousands of steps "
                             "before the moving statistics (used on held-out data) settle")
    parser.add_argument("--output-dir", default=None, help="default: a fresh temp dir")
    args = parser.parse_args()

    data = load_dataset(args.data, batch_size=args.batch_size, validation_split=0.1, seed=0)
    config = TrainConfig.for_preset(
        "cifar", epochs=args.epochs, batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch or None, learning_rate=args.learning_rate,
        jit_compile=False, tensorboard=False, verbose=2, seed=0,
        model_kwargs=dict(num_cells=args.num_cells,
                          penultimate_filters=args.penultimate_filters,
                          batch_norm_momentum=args.bn_momentum),
    )
    timer = Timer(args.batch_size)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="nasnet_train_cifar_")
    start = time.perf_counter()
    history = train(None, data, config, output_dir, callbacks=[timer])
    total_min = (time.perf_counter() - start) / 60

    model = history.model
    validation = data.validation
    model.evaluate(validation.take(1), verbose=0)  # trace once
    t = time.perf_counter()
    _, held_out_acc = model.evaluate(validation, verbose=0)
    infer_rate = data.validation_size / (time.perf_counter() - t)
    params = sum(int(keras.ops.size(w)) for w in model.trainable_weights)

    print(f"\nNASNet-A {args.num_cells}@{args.penultimate_filters} CIFAR layout (aux head, drop "
          f"path 0.6), {params:,} trainable parameters; backend {keras.backend.backend()}, "
          f"{os.cpu_count()} CPUs")
    print(f"data: {data.train_size} train / {data.validation_size} held-out images, batch "
          f"{args.batch_size}, {config.steps_per_epoch or data.steps_per_epoch} steps/epoch, "
          f"{config.optimizer} lr {args.learning_rate} {config.lr_schedule}, "
          f"BN momentum {args.bn_momentum}")
    print()
    print("| epoch | train acc | held-out acc | train images/s | elapsed (min) |")
    print("|------:|----------:|-------------:|---------------:|--------------:|")
    for row in timer.rows:
        print(f"| {row['epoch']:>5} | {row['acc']:>9.3f} | {row['val']:>12.3f} | "
              f"{row['rate']:>14.0f} | {row['elapsed']:>13.1f} |")
    print()
    print(f"final held-out accuracy {held_out_acc:.3f} (chance 0.100) after {total_min:.1f} min; "
          f"inference {infer_rate:.0f} images/s; run dir {output_dir}")


if __name__ == "__main__":
    main()
