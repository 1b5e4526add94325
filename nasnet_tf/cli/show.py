"""`nasnet-tf show`: print a genotype's cells and draw them (no TensorFlow, no Keras).

A layer-wise (2016) genotype is printed as a table of its layers; it has no cells to draw."""

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
    p.add_argument("genotype", help="a genotype JSON file (or search result / export metadata), "
                   "NASNet or layer-wise, or a name: nasnet_a")
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "cells"),
                   help="where the drawings go (default: %(default)s)")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--no-draw", action="store_true", help="print only")
    p.set_defaults(func=run, needs_backend=False)


def format_layerwise(genotype):
    """A layer-wise genotype as a table: one row per layer (filter, filters, stride, what it
    reads), then what the classifier reads.

    Example:

    >>> from nasnet_tf.layerwise import Layer, LayerwiseGenotype
    >>> print(format_layerwise(LayerwiseGenotype([Layer(3, 5, 24), Layer(1, 1, 36, inputs=[0])])))
    layer  filter  filters  stride  reads
        0     3x5       24       1  image
        1     1x1       36       1  0
    classifier: global average pool of layer 1
    """
    rows = ["layer  filter  filters  stride  reads"]
    for i, layer in enumerate(genotype.layers):
        reads = ",".join(map(str, layer.inputs)) or "image"
        size = f"{layer.filter_height}x{layer.filter_width}"
        rows.append(f"{i:>5}  {size:>6}  {layer.filters:>7}  {layer.stride:>6}  {reads}")
    outputs = genotype.output_layers
    head = (f"layer {outputs[0]}" if len(outputs) == 1
            else "layers " + ", ".join(map(str, outputs)) + " concatenated")
    rows.append(f"classifier: global average pool of {head}")
    return "\n".join(rows)


def run(args):
    from nasnet_tf.layerwise import LayerwiseGenotype

    genotype = utils.load_genotype(args.genotype)
    if isinstance(genotype, LayerwiseGenotype):
        print(f"Layer-wise genotype {args.genotype} ({genotype.num_layers} layers): {genotype}")
        print(format_layerwise(genotype))
        if not args.no_draw:
            print("(a layer-wise genotype has no cells to draw: printed only)")
        return 0

    from nasnet_tf.diagram import format_genotype

    if not args.no_draw:
        utils.check_writable(args.output_dir)
    print(f"Genotype {args.genotype}: {genotype}")
    print(format_genotype(genotype))
    if args.no_draw:
        return 0
    for path in utils.draw(genotype, args.output_dir, args.formats, args.engine):
        print(f"wrote {path}")
    return 0
