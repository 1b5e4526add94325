"""Train a genotype on CIFAR-10 with the NASNet recipe (aux head, ScheduledDropPath, label
smoothing, cosine decay, SGD+Nesterov), resumably.

The data comes from TFDS (`cifar10`, prepared in --data-dir; --download fetches it once) or from
a directory of class folders (`root/<class>/*.jpg`). The defaults are tiny so the script ends
in a couple of minutes; the paper's run is `--epochs 600 --num-cells 6 --penultimate-filters 768`.

    python examples/train_cifar10.py --data path/to/cifar10/train       # class folders
    python examples/train_cifar10.py --data cifar10 --download          # TFDS, one download
    python examples/train_cifar10.py --genotype nasnet_runs/search/best_genotype.json
"""

import argparse

from nasnet_tf import NASNET_A
from nasnet_tf.data import load_dataset
from nasnet_tf.serving import save_keras
from nasnet_tf.training import TrainConfig, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10", help="TFDS name or class-folder directory")
    parser.add_argument("--data-dir", help="TFDS data directory")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--genotype", help="genotype JSON (default: NASNet-A)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--num-cells", type=int, default=1)
    parser.add_argument("--penultimate-filters", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", default="nasnet_runs/examples/cifar10")
    args = parser.parse_args()

    data = load_dataset(args.data, data_dir=args.data_dir, download=args.download,
                        batch_size=args.batch_size, validation_split=0.1, seed=0)
    print(f"{data.name}: {data.train_size} train / {data.validation_size} validation images "
          f"{data.image_shape}, {data.num_classes} classes, augmentation {data.augment!r}")
    config = TrainConfig.for_preset(
        "cifar", epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, verbose=2,
        model_kwargs={"num_cells": args.num_cells,
                      "penultimate_filters": args.penultimate_filters},
    )
    history = train(args.genotype or NASNET_A, data, config, args.output_dir)
    print("history:", {k: [round(v, 4) for v in vs] for k, vs in history.history.items()})
    # model.keras is in output_dir already; add the metadata `nasnet-tf export` reads.
    path = save_keras(history.model, f"{args.output_dir}/cifar10_model.keras", preset="cifar",
                      class_names=data.class_names, overwrite=True)
    print(f"saved {path}; serve it with:  nasnet-tf export {path} -o served_cifar10")


if __name__ == "__main__":
    main()
