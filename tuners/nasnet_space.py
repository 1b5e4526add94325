"""The NASNet cell search space as KerasTuner hyperparameters, with the one shared encode/decode.

A genotype travels through KerasTuner (and its gRPC chief/worker mode, which carries scalars only)
as 2 x 5 x B choices: for the Normal cell and then the Reduction cell, and for each block k, the
choices `input_a`, `input_b` (hidden states 0..1+k), `op_a`, `op_b` (op names) and `combine`
(`"add"` or `"concat"`). `hp_name` is the only place that spells a hyperparameter's name,
`parse_hp_name` the only one that reads it back, and `encode` / `decode` are the only functions
that map a `Genotype` to and from those values: oracle, tuner and CLI all go through them.

Decoded cells use the search space's output rule (every state no block reads is concatenated),
so `decode(encode(g)) == g` for every genotype whose cells use that rule.
"""

import re

import keras_tuner

from nasnet_tf import COMBINE_OPS, OP_NAMES, CellGenotype, Genotype
from nasnet_tf.genotype import as_genotype, check_names
from tuners.values import as_values

__all__ = [
    "CELL_TYPES",
    "BLOCK_FIELDS",
    "NASNetSearchSpace",
    "hp_name",
    "parse_hp_name",
    "encode",
    "decode",
]

CELL_TYPES = ("normal", "reduction")
"""The two cells, in the order the controller predicts them."""

BLOCK_FIELDS = ("input_a", "input_b", "op_a", "op_b", "combine")
"""A block's five decisions, in the order the controller predicts them (NASNet, Fig. 3)."""


def hp_name(cell, block, field):
    """The hyperparameter name of one decision, e.g. `"normal_b0_input_a"`.

    Args:
        cell: `"normal"` or `"reduction"`.
        block: the block's index, from 0.
        field: one of `BLOCK_FIELDS`.

    Returns:
        The name, a string.

    Example:

    >>> hp_name("reduction", 2, "op_b")
    'reduction_b2_op_b'
    """
    if cell not in CELL_TYPES:
        raise ValueError(f"Unknown cell type {cell!r}. Accepted: {list(CELL_TYPES)}")
    if field not in BLOCK_FIELDS:
        raise ValueError(f"Unknown block field {field!r}. Accepted: {list(BLOCK_FIELDS)}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 0:
        raise ValueError(f"`block` must be an integer >= 0. Received: block={block!r}")
    return f"{cell}_b{block}_{field}"


_HP_NAME = re.compile(rf"^({'|'.join(CELL_TYPES)})_b(\d+)_({'|'.join(BLOCK_FIELDS)})$")


def parse_hp_name(name):
    """The `(cell, block, field)` of a decision's hyperparameter name: `hp_name` read back.

    Args:
        name: a hyperparameter name.

    Returns:
        `(cell, block, field)` (`block` an int) for a NASNet cell decision's name, else `None`.

    Example:

    >>> parse_hp_name("reduction_b2_op_b")
    ('reduction', 2, 'op_b')
    >>> parse_hp_name("learning_rate") is None
    True
    """
    match = _HP_NAME.match(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), match.group(3)


class NASNetSearchSpace:
    """The NASNet cell search space (Zoph et al. 2018, Sec. 3): B blocks per cell, two cells.

    Args:
        num_blocks: B, blocks per cell (the paper: 5).
        ops: the candidate ops, names from `nasnet_tf.OP_NAMES` (default: all 13).
        combine_ops: the candidate combine ops, from `("add", "concat")` (default: both, as the
            paper searched).

    A decision with one option only (e.g. `combine_ops=("add",)`) is declared as a KerasTuner
    `Fixed`, so a controller spends no prediction on it.

    Example:

    >>> import keras_tuner
    >>> space = NASNetSearchSpace(num_blocks=2)
    >>> hp = keras_tuner.HyperParameters()
    >>> g = space.declare(hp)  # every decision at its default, the first option
    >>> len(hp.space)
    20
    >>> space.decode(space.encode(g)) == g
    True
    """

    def __init__(self, num_blocks=5, ops=None, combine_ops=None):
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(
                f"`num_blocks` must be an integer >= 1. Received: num_blocks={num_blocks!r}"
            )
        self.num_blocks = num_blocks
        self.ops = check_names(OP_NAMES if ops is None else ops, "ops", OP_NAMES)
        self.combine_ops = check_names(
            COMBINE_OPS if combine_ops is None else combine_ops, "combine_ops", COMBINE_OPS
        )

    @property
    def names(self):
        """Every hyperparameter name, in declaration (= prediction) order."""
        return [
            hp_name(cell, k, field)
            for cell in CELL_TYPES
            for k in range(self.num_blocks)
            for field in BLOCK_FIELDS
        ]

    def options(self, block, field):
        """The accepted values of one decision of block `block`."""
        if field in ("input_a", "input_b"):
            return tuple(range(2 + block))
        if field in ("op_a", "op_b"):
            return self.ops
        return self.combine_ops

    def declare(self, hp):
        """Registers the space's decisions on `hp` (a `keras_tuner.HyperParameters`) and
        returns the genotype of `hp`'s current values (the first options for new entries)."""
        values = {}
        for cell in CELL_TYPES:
            for k in range(self.num_blocks):
                for field in BLOCK_FIELDS:
                    name = hp_name(cell, k, field)
                    options = self.options(k, field)
                    if len(options) == 1:
                        values[name] = hp.Fixed(name, options[0])
                    else:
                        values[name] = hp.Choice(name, list(options))
        return self.decode(values)

    def hyperparameters(self):
        """A fresh `keras_tuner.HyperParameters` holding this space, e.g. for an oracle's
        `hyperparameters=` argument."""
        hp = keras_tuner.HyperParameters()
        self.declare(hp)
        return hp

    def encode(self, genotype):
        """The hyperparameter values of `genotype` (a `Genotype`, its dict or its JSON).

        Raises:
            ValueError: if the genotype has another number of blocks, an op or combine op
                outside the space, or a cell whose `concat` is not the space's rule (every
                state no block reads).
        """
        genotype = as_genotype(genotype, strings="json")
        values = {}
        for cell_type in CELL_TYPES:
            cell = getattr(genotype, cell_type)
            if cell.num_blocks != self.num_blocks:
                raise ValueError(
                    f"The {cell_type} cell has {cell.num_blocks} blocks but the space has "
                    f"num_blocks={self.num_blocks}. Received: genotype={genotype}"
                )
            if cell.concat != CellGenotype(cell.blocks).concat:
                raise ValueError(
                    f"The {cell_type} cell concatenates states {list(cell.concat)}, but the "
                    "search space only holds cells that concatenate every state no block "
                    f"reads ({list(CellGenotype(cell.blocks).concat)}); rebuild the cell with "
                    f"`concat=None`. Received: genotype={genotype}"
                )
            for k, block in enumerate(cell.blocks):
                for field in BLOCK_FIELDS:
                    value = getattr(block, field)
                    if value not in self.options(k, field):
                        raise ValueError(
                            f"Block {k} of the {cell_type} cell uses {field}={value!r}, which "
                            f"is not in the space. Accepted: {list(self.options(k, field))}"
                        )
                    values[hp_name(cell_type, k, field)] = value
        return values

    def decode(self, values):
        """The `Genotype` of hyperparameter `values` (a dict, or a `HyperParameters`).

        Entries that are not the space's (e.g. a learning rate tuned alongside) are ignored.
        """
        values = as_values(values, self.names)
        cells = {}
        for cell_type in CELL_TYPES:
            blocks = []
            for k in range(self.num_blocks):
                block = {}
                for field in BLOCK_FIELDS:
                    value = values[hp_name(cell_type, k, field)]
                    if value not in self.options(k, field):
                        raise ValueError(
                            f"`{hp_name(cell_type, k, field)}` must be one of "
                            f"{list(self.options(k, field))}. Received: {value!r}"
                        )
                    block[field] = value
                blocks.append(block)
            cells[cell_type] = CellGenotype(blocks)
        return Genotype(**cells)

    def get_config(self):
        return {
            "num_blocks": self.num_blocks,
            "ops": list(self.ops),
            "combine_ops": list(self.combine_ops),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"NASNetSearchSpace(num_blocks={self.num_blocks}, ops={list(self.ops)}, "
            f"combine_ops={list(self.combine_ops)})"
        )


def _num_blocks_of(values):
    blocks = 0
    while hp_name("normal", blocks, "input_a") in values:
        blocks += 1
    if blocks == 0:
        raise ValueError(
            f"No NASNet cell decisions found (expected names like "
            f"{hp_name('normal', 0, 'input_a')!r}). Received keys: {sorted(values)[:10]}"
        )
    return blocks


def encode(genotype):
    """The hyperparameter values of `genotype`, in the full space of its number of blocks.

    Args:
        genotype: a `Genotype` (or its dict or JSON string) whose cells concatenate every
            state no block reads.

    Returns:
        A dict from hyperparameter name (see `hp_name`) to value.

    Example:

    >>> from nasnet_tf import Block, Genotype
    >>> g = Genotype([Block(0, 1, "sep_conv_3x3", "identity")],
    ...              [Block(1, 0, "max_pool_3x3", "conv_1x1", "concat")])
    >>> encode(g)["reduction_b0_combine"]
    'concat'
    >>> decode(encode(g)) == g
    True
    """
    genotype = as_genotype(genotype, strings="json")
    normal, reduction = genotype.normal.num_blocks, genotype.reduction.num_blocks
    if normal != reduction:
        raise ValueError(
            "The space needs the same number of blocks in both cells. Received: "
            f"{normal} normal and {reduction} reduction blocks in genotype={genotype}"
        )
    return NASNetSearchSpace(num_blocks=normal).encode(genotype)


def decode(values):
    """The `Genotype` of hyperparameter `values`, B read from the names present.

    Args:
        values: a dict of hyperparameter values or a `keras_tuner.HyperParameters`; entries
            that are not cell decisions are ignored.

    Returns:
        A `Genotype` whose cells concatenate every state no block reads.
    """
    values = as_values(values)
    return NASNetSearchSpace(num_blocks=_num_blocks_of(values)).decode(values)
