"""Argument types and the argument groups several `nasnet-tf` commands share."""

import argparse
import math


def positive_int(text):
    """An integer >= 1 (argparse `type`)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def non_negative_int(text):
    """An integer >= 0 (argparse `type`)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text):
    """A finite number > 0 (argparse `type`)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def momentum(text):
    """A batch-norm momentum in [0, 1) (argparse `type`)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_data_args(p, batch_size):
    """The dataset arguments of `search`, `train` and `demo` (see `utils.load_data`)."""
    p.add_argument("--dataset", default="digits",
                   help="'digits' (built in, offline), a TFDS name, or a directory of class "
                   "folders (default: %(default)s)")
    p.add_argument("--data-dir", help="TFDS data directory")
    p.add_argument("--download", action="store_true",
                   help="let TFDS download a missing dataset (off: never touch the network)")
    p.add_argument("--image-size", type=positive_int, help="resize images to this square size")
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--augment", choices=("auto", "cifar", "imagenet", "none"), default="auto",
                   help="training augmentation; 'auto': CIFAR-style (pad, crop, flip, cutout) "
                   "up to 64 pixels, ImageNet-style above (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--seed", type=non_negative_int, default=0)
