"""The `nasnet-tf` command: the top parser, one subcommand per module, one-line errors.

Every user error (a missing file, bad JSON, an unknown preset or dataset, an output that cannot
be written) prints one line, `nasnet-tf <command>: error: ...`, to stderr and exits with status 2;
outputs are written whole or not at all. Parsing (`--help`, usage errors) and `show` import
neither TensorFlow, JAX nor Keras; the other commands import them quietly (`utils.prepare_backend`)
once their arguments are parsed (`report` once its run directory is found).
"""

import argparse
import sys

from nasnet_tf.cli import demo, export, predict, report, search, show, train, utils

PROG = "nasnet-tf"
COMMANDS = (search, train, demo, show, export, predict, report)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    """The `nasnet-tf` argument parser, each command registered by its own module."""
    parser = _Parser(
        prog=PROG,
        description="Neural architecture search with NASNet cells for Keras: search a cell, "
        "train it, export and serve it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None):
    """Runs `nasnet-tf` with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    args = build_parser().parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        if args.needs_backend:
            utils.prepare_backend()
        return args.func(args) or 0
    except utils.CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
    except (ValueError, RuntimeError) as e:
        # The library's input checks (Keras wording, one line).
        print(f"{prog}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 2
