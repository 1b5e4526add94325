"""Genotypes: the NASNet search space's architectures as immutable data.

Convention (pinned once, as in slim's `nasnet_utils.py`): inside a cell, hidden state 0 is the
current input h_i (after its 1x1 conv to the cell's filters), state 1 is the previous input
h_{i-1}, and block k (0-based) appends state 2 + k. A cell's output concatenates, in index order,
every state that no block reads (the two cell inputs included), unless the cell lists its
`concat` states explicitly: the published NASNet-A does (slim's `used_hiddenstates` masks keep
h_{i-1} in the Normal cell's output and state 3 in the Reduction cell's, though blocks read them).
"""

import dataclasses
import json
import os

from nasnet_tf import validators

COMBINE_OPS = ("add", "concat")

OP_NAMES = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
"""The 13 NASNet op names, in the paper's order: the keys of `nasnet_tf.ops.OPS` (data only,
so that genotypes load without Keras)."""

# Short aliases used by `str()` only; names in data are always the registry keys.
_SHORT = {
    "identity": "id",
    "conv_1x3_3x1": "c13",
    "conv_1x7_7x1": "c17",
    "dil_conv_3x3": "dil3",
    "avg_pool_3x3": "avg3",
    "max_pool_3x3": "max3",
    "max_pool_5x5": "max5",
    "max_pool_7x7": "max7",
    "conv_1x1": "c1",
    "conv_3x3": "c3",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "sep_conv_7x7": "sep7",
}


def check_names(value, name, accepted):
    """`value` as a tuple of distinct names from `accepted` (at least one), or a `ValueError`
    naming the bad value and what is accepted (e.g. a search space's `ops`).

    Example:

    >>> check_names(["add"], "combine_ops", COMBINE_OPS)
    ('add',)
    """
    value = validators.sequence(value, name, f"names from {list(accepted)}", not_sequences=str)
    unknown = [v for v in value if v not in accepted]
    if not value or unknown or len(set(value)) != len(value):
        raise ValueError(
            f"`{name}` must list distinct names from {list(accepted)}, at least one. "
            f"Received: {name}={list(value)}"
        )
    return value


def _check_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a cell: `combine(op_a(state[input_a]), op_b(state[input_b]))`.

    Args:
        input_a: index of the hidden state the first op reads.
        input_b: index of the hidden state the second op reads.
        op_a: name of the first op (one of `OP_NAMES`, the keys of `nasnet_tf.ops.OPS`).
        op_b: name of the second op.
        combine: `"add"` (element-wise sum) or `"concat"` (along channels).

    Example:

    >>> Block(0, 1, "sep_conv_5x5", "sep_conv_3x3")
    Block(input_a=0, input_b=1, op_a='sep_conv_5x5', op_b='sep_conv_3x3', combine='add')
    """

    input_a: int
    input_b: int
    op_a: str
    op_b: str
    combine: str = "add"

    def __post_init__(self):
        for name in ("input_a", "input_b"):
            _check_int(getattr(self, name), name)
            if getattr(self, name) < 0:
                raise ValueError(
                    f"`{name}` must be >= 0. Received: {name}={getattr(self, name)}"
                )
        for name in ("op_a", "op_b"):
            op = getattr(self, name)
            if op not in OP_NAMES:
                raise ValueError(
                    f"Unknown op {op!r} in `{name}`. Accepted ops: {sorted(OP_NAMES)}"
                )
        if self.combine not in COMBINE_OPS:
            raise ValueError(
                f"Unknown combine op {self.combine!r}. Accepted: {list(COMBINE_OPS)}"
            )

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CellGenotype:
    """The architecture of one cell: B >= 1 blocks over a growing list of hidden states.

    Args:
        blocks: a sequence of `Block` (or dicts / 5-item sequences
            `(input_a, input_b, op_a, op_b, combine)`). Block k may read states
            `0 .. 1 + k` only.
        concat: the states concatenated into the output, or `None` for every state no block
            reads (the search space's rule). Stored resolved, sorted.

    Example:

    >>> cell = CellGenotype([Block(0, 0, "sep_conv_3x3", "identity")])
    >>> cell.concat
    (1, 2)
    """

    blocks: tuple
    concat: tuple = None

    def __post_init__(self):
        blocks = validators.sequence(self.blocks, "blocks", "Block")
        blocks = tuple(_as_block(b) for b in blocks)
        if not blocks:
            raise ValueError("A cell needs at least one block (B >= 1). Received: blocks=()")
        for k, block in enumerate(blocks):
            for name in ("input_a", "input_b"):
                index = getattr(block, name)
                if index > 1 + k:
                    raise ValueError(
                        f"Block {k} reads hidden state {index} in `{name}`, which does not "
                        f"exist yet. Block {k} may read states 0..{1 + k} (0 = current "
                        f"input, 1 = previous input, 2.. = earlier blocks)."
                    )
        object.__setattr__(self, "blocks", blocks)
        num_states = 2 + len(blocks)
        if self.concat is None:
            used = {i for b in blocks for i in (b.input_a, b.input_b)}
            concat = tuple(i for i in range(num_states) if i not in used)
        else:
            concat = validators.sequence(self.concat, "concat", "state indices")
            for i in concat:
                _check_int(i, "concat")
            bad = [i for i in concat if not 0 <= i < num_states]
            if bad or not concat or len(set(concat)) != len(concat):
                raise ValueError(
                    f"`concat` must list distinct states in 0..{num_states - 1}, at least one. "
                    f"Received: concat={list(concat)}"
                )
            concat = tuple(sorted(concat))
        object.__setattr__(self, "concat", concat)

    @classmethod
    def from_value(cls, value):
        """A `CellGenotype` from itself, its dict (`{"blocks": ..., "concat": ...}`) or its list
        of blocks."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"blocks", "concat"}
            if unknown or "blocks" not in value:
                raise ValueError(
                    "A cell dict has the keys 'blocks' and optionally 'concat'. "
                    f"Received keys: {sorted(value)}"
                )
            return cls(value["blocks"], value.get("concat"))
        return cls(value)

    @property
    def num_blocks(self):
        return len(self.blocks)

    @property
    def used_states(self):
        """The indices of hidden states that some block reads, sorted."""
        return tuple(sorted({i for b in self.blocks for i in (b.input_a, b.input_b)}))

    @property
    def output_states(self):
        """The states concatenated into the cell's output (`concat`)."""
        return self.concat

    def to_dict(self):
        return {"blocks": [b.to_dict() for b in self.blocks], "concat": list(self.concat)}

    def __str__(self):
        parts = []
        for k, b in enumerate(self.blocks):
            sign = "+" if b.combine == "add" else "|"
            parts.append(
                f"{2 + k}={_SHORT[b.op_a]}({b.input_a}){sign}{_SHORT[b.op_b]}({b.input_b})"
            )
        return " ".join(parts) + " -> " + ",".join(map(str, self.concat))


class JSONGenotype:
    """`to_json` / `from_json` for a genotype class with `to_dict` / `from_dict` (the NASNet
    genotype and the layer-wise one); `JSON_KIND` names it in errors."""

    JSON_KIND = "genotype"

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Invalid {cls.JSON_KIND} JSON: {e}") from e
        return cls.from_dict(data)


@dataclasses.dataclass(frozen=True)
class Genotype(JSONGenotype):
    """A network's pair of cells: the Normal cell and the Reduction cell.

    Args:
        normal: the Normal cell (`CellGenotype`, or a list of blocks).
        reduction: the Reduction cell.

    Example:

    >>> from nasnet_tf import NASNET_A, Genotype
    >>> Genotype.from_json(NASNET_A.to_json()) == NASNET_A
    True
    """

    normal: CellGenotype
    reduction: CellGenotype

    def __post_init__(self):
        for name in ("normal", "reduction"):
            object.__setattr__(self, name, CellGenotype.from_value(getattr(self, name)))

    def to_dict(self):
        return {"normal": self.normal.to_dict(), "reduction": self.reduction.to_dict()}

    @classmethod
    def from_dict(cls, data):
        validators.exact_keys(data, ["normal", "reduction"],
                              "A genotype dict must have exactly the keys")
        return cls(normal=data["normal"], reduction=data["reduction"])

    def __str__(self):
        return f"normal: {self.normal} ; reduction: {self.reduction}"


def as_genotype(genotype, cls=Genotype, *, strings="path", default=None):
    """`genotype` as a `cls`: itself, its dict, or a string, read as `strings` says.

    Args:
        genotype: a `cls`, its dict, a string (or, for paths, an `os.PathLike`), or `None`.
        cls: `Genotype` or `nasnet_tf.LayerwiseGenotype` (a `JSONGenotype`).
        strings: `"path"`, a string is the path of a JSON file holding the genotype's dict
            (or, as a search's result files do, an object whose `"genotype"` entry is it);
            `"json"`, a string is the genotype's JSON text; `None`, strings are refused.
        default: what `None` gives; `None` accepts no `None`.

    Returns:
        A `cls`. Raises `ValueError` (naming the file when one is read) for anything else.

    Example:

    >>> g = Genotype(normal=[[0, 1, "identity", "identity", "add"]],
    ...              reduction=[[0, 1, "identity", "identity", "add"]])
    >>> as_genotype(g.to_json(), strings="json") == as_genotype(g.to_dict()) == g
    True
    """
    if genotype is None and default is not None:
        return default
    if isinstance(genotype, cls):
        return genotype
    if isinstance(genotype, dict):
        return cls.from_dict(genotype)
    if strings == "json" and isinstance(genotype, str):
        return cls.from_json(genotype)
    if strings is None:
        accepted = f"`genotype` must be a `{cls.__name__}` or its dict."
    else:
        accepted = (f"`genotype` must be a `{cls.__name__}`, its dict or "
                    f"{'its JSON string' if strings == 'json' else 'the path of its JSON file'}.")
    if strings == "path" and isinstance(genotype, (str, os.PathLike)):
        path = os.fspath(genotype)
        if not os.path.isfile(path):
            raise ValueError(f"{accepted} No such file: {path!r}")
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"Invalid {cls.JSON_KIND} JSON in {path!r}: {e}") from e
        if isinstance(data, dict) and "genotype" in data and "normal" not in data:
            data = data["genotype"]  # a search's best_genotype.json, with its scores
        return cls.from_dict(data)
    raise ValueError(f"{accepted} Received: genotype={genotype!r}")


_BLOCK_FIELDS = ("input_a", "input_b", "op_a", "op_b", "combine")


def _as_block(value):
    if isinstance(value, Block):
        return value
    if isinstance(value, dict):
        return Block(**validators.known_fields(value, _BLOCK_FIELDS, "block"))
    if isinstance(value, (list, tuple)) and len(value) in (4, 5):
        return Block(*value)
    raise ValueError(
        "Each block must be a Block, a dict with keys "
        f"{list(_BLOCK_FIELDS)}, or a sequence of 4 or 5 items "
        f"(input_a, input_b, op_a, op_b[, combine]). Received: {value!r}"
    )


def from_slim(ops, inputs, used_hiddenstates=None, combine="add"):
    """Builds a `CellGenotype` from slim's flat `operations`, `hiddenstate_indices` and
    (optionally) `used_hiddenstates` lists: states marked 0 in the mask are concatenated.

    Example:

    >>> cell = from_slim(["sep_conv_3x3", "identity"], [0, 1])
    >>> cell.num_blocks
    1
    """
    if len(ops) != len(inputs) or len(ops) % 2:
        raise ValueError(
            "`ops` and `inputs` must have the same even length (two per block). "
            f"Received: len(ops)={len(ops)}, len(inputs)={len(inputs)}"
        )
    blocks = [
        Block(inputs[2 * k], inputs[2 * k + 1], ops[2 * k], ops[2 * k + 1], combine)
        for k in range(len(ops) // 2)
    ]
    if used_hiddenstates is None:
        return CellGenotype(blocks)
    if len(used_hiddenstates) != 2 + len(blocks):
        raise ValueError(
            "`used_hiddenstates` needs one entry per state (2 + blocks). "
            f"Received: {len(used_hiddenstates)} entries for {len(blocks)} blocks"
        )
    return CellGenotype(blocks, [i for i, used in enumerate(used_hiddenstates) if not used])


NASNET_A = Genotype(
    normal=from_slim(
        [
            "sep_conv_5x5", "sep_conv_3x3",
            "sep_conv_5x5", "sep_conv_3x3",
            "avg_pool_3x3", "identity",
            "avg_pool_3x3", "avg_pool_3x3",
            "sep_conv_3x3", "identity",
        ],
        [0, 1, 1, 1, 0, 1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0, 0, 0],
    ),
    reduction=from_slim(
        [
            "sep_conv_5x5", "sep_conv_7x7",
            "max_pool_3x3", "sep_conv_7x7",
            "avg_pool_3x3", "sep_conv_5x5",
            "identity", "avg_pool_3x3",
            "sep_conv_3x3", "max_pool_3x3",
        ],
        [0, 1, 0, 1, 0, 1, 3, 2, 2, 0],
        [1, 1, 1, 0, 0, 0, 0],
    ),
)
"""NASNet-A (Zoph et al. 2018, Fig. 4), as slim's `nasnet_utils.NasNetANormalCell` writes it."""
