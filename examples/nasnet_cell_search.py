"""A NASNet cell search (Zoph et al. 2018) with the controller, in Python.

The same thing as `nasnet-tf search`, written out: the built-in digits data through
`nasnet_tf.data`, a `NASTuner` searching a `NASNetHyperModel` (small CIFAR-layout NASNet
children), the best genotype written as JSON, drawn, and rebuilt as a full network.

    python examples/nasnet_cell_search.py --trials 4      # ~2-4 minutes on 2 CPU cores
"""

import argparse
import os

from nasnet_tf import build_nasnet
from nasnet_tf.data import load_dataset
from nasnet_tf.diagram import draw_genotype, format_genotype
from tuners.nas_tuner import NASNetHyperModel, NASTuner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="cap on each child's training steps per epoch")
    parser.add_argument("--num-blocks", type=int, default=5, help="B (the paper: 5)")
    parser.add_argument("--directory", default="nasnet_runs/examples/cell_search")
    args = parser.parse_args()

    # 8x8 digits: no flips or cutout (the CIFAR-style augmentation would garble them).
    data = load_dataset("digits", batch_size=64, seed=0, augment="none")
    space = NASNetHyperModel(
        num_blocks=args.num_blocks, num_cells=1, penultimate_filters=48,
        input_shape=data.image_shape, classes=data.num_classes,
        # NASNet's batch-norm momentum (0.9997) suits runs of thousands of steps; a child
        # trained for a few dozen would be scored with unsettled statistics.
        batch_norm_momentum=0.9,
    )
    tuner = NASTuner(
        space, max_trials=args.trials, seed=0, oracle_kwargs={"update_every": 2},
        directory=args.directory, project_name="search",
        overwrite=False,  # run again to resume where a killed search stopped
    )
    tuner.search(data.train, validation_data=data.validation, epochs=args.epochs,
                 steps_per_epoch=args.steps_per_epoch, verbose=0)
    tuner.results_summary(3)

    best = tuner.export_best_genotype(os.path.join(args.directory, "best_genotype.json"))
    print(format_genotype(best))
    drawings = draw_genotype(best, os.path.join(args.directory, "cells"))
    print("drawings:", *drawings["normal"], *drawings["reduction"], sep="\n  ")

    # The searched cell, stacked into the paper's CIFAR-10 network (6@768, aux head, drop path).
    model = build_nasnet(best, preset="cifar")
    print(f"best cell as NASNet CIFAR 6@768: {model.count_params():,} parameters")


if __name__ == "__main__":
    main()
