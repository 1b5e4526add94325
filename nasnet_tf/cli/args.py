"""Argument types and the argument groups several `nasnet-tf` commands share."""

import argparse
import math


def _number_type(name, convert, accepted, expected, doc):
    """An argparse `type` named `name`: `convert(text)`, which `accepted` must hold, or an
    `argparse.ArgumentTypeError` saying `expected {expected}`."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accepted(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = doc
    return parse


positive_int = _number_type("positive_int", int, lambda v: v >= 1, "an integer >= 1",
                            "An integer >= 1 (argparse `type`).")
non_negative_int = _number_type("non_negative_int", int, lambda v: v >= 0, "an integer >= 0",
                                "An integer >= 0 (argparse `type`).")
positive_float = _number_type("positive_float", float, lambda v: v > 0 and math.isfinite(v),
                              "a number > 0", "A finite number > 0 (argparse `type`).")
momentum = _number_type("momentum", float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)",
                        "A batch-norm momentum in [0, 1) (argparse `type`).")


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
