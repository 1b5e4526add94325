"""`nasnet-tf show`: print a genotype's cells and draw them (no TensorFlow, no Keras)."""

import os

from nasnet_tf.cli import utils

# nasnet_tf.diagram's FORMATS and ENGINES (tests/test_cli_main.py keeps them equal).
FORMATS = ("png", "svg")
ENGINES = ("auto", "dot", "matplotlib")


def register(subparsers):
    p = subparsers.add_parser(
        "show", help="print a genotype and draw its cells (PNG, SVG, DOT)",
        description="Print a genotype's cells and draw them as in the NASNet paper (graphviz "
        "`dot` when installed, else matplotlib).")
    p.add_argument("genotype", help="a genotype JSON file (or search result / export metadata) "
                   "or a name: nasnet_a")
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "cells"),
                   help="where the drawings go (default: %(default)s)")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--no-draw", action="store_true", help="print only")
    p.set_defaults(func=run, needs_backend=False)


def run(args):
    from nasnet_tf.diagram import format_genotype

    genotype = utils.load_genotype(args.genotype)
    if not args.no_draw:
        utils.check_writable(args.output_dir)
    print(f"Genotype {args.genotype}: {genotype}")
    print(format_genotype(genotype))
    if args.no_draw:
        return 0
    for path in utils.draw(genotype, args.output_dir, args.formats, args.engine):
        print(f"wrote {path}")
    return 0
