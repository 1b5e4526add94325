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


def address(text):
    """A `HOST:PORT` network address (argparse `type`); imports neither Keras nor JAX."""
    from nasnet_tf.multihost import parse_address

    try:
        parse_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port in 1..65535, got {text!r}"
        ) from None
    return text


def add_process_args(p):
    """The multi-host flags of `train` (see `nasnet_tf.multihost`): JAX only, one process per
    host, environment variables as the fallback."""
    group = p.add_argument_group(
        "multi-host training (JAX)",
        "Run one process per host, each with the same arguments and a shared --output-dir. "
        "Unset flags fall back to JAX_COORDINATOR_ADDRESS, KERAS_DISTRIBUTION_NUM_PROCESSES "
        "and KERAS_DISTRIBUTION_PROCESS_ID, or a Slurm / Open MPI job's own variables; "
        "see docs/distributed.md.")
    group.add_argument("--coordinator", type=address, metavar="HOST:PORT",
                       help="address of process 0, which serves the coordinator "
                       "(JAX's coordinator_address)")
    group.add_argument("--num-processes", type=positive_int, metavar="N",
                       help="how many processes train together")
    group.add_argument("--process-id", type=non_negative_int, metavar="I",
                       help="this process's index, 0..N-1; process 0 writes the files")


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
