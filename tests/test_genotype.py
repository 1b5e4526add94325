import json
import random

import pytest

from nasnet_tf import COMBINE_OPS, NASNET_A, OP_NAMES, Block, CellGenotype, Genotype, from_slim


def random_cell(rng, num_blocks, combine=None):
    blocks = []
    for k in range(num_blocks):
        blocks.append(
            Block(
                rng.randrange(2 + k),
                rng.randrange(2 + k),
                rng.choice(OP_NAMES),
                rng.choice(OP_NAMES),
                combine or rng.choice(COMBINE_OPS),
            )
        )
    return CellGenotype(blocks)


def random_genotype(seed, num_blocks, combine=None):
    rng = random.Random(seed)
    return Genotype(random_cell(rng, num_blocks, combine), random_cell(rng, num_blocks, combine))


def test_nasnet_a_is_slims_nasnet_a():
    normal = NASNET_A.normal
    assert [op for b in normal.blocks for op in (b.op_a, b.op_b)] == [
        "sep_conv_5x5", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_3x3", "avg_pool_3x3",
        "identity", "avg_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "identity",
    ]
    assert [i for b in normal.blocks for i in (b.input_a, b.input_b)] == [
        0, 1, 1, 1, 0, 1, 1, 1, 0, 0
    ]
    assert normal.concat == (1, 2, 3, 4, 5, 6)
    reduction = NASNET_A.reduction
    assert [op for b in reduction.blocks for op in (b.op_a, b.op_b)] == [
        "sep_conv_5x5", "sep_conv_7x7", "max_pool_3x3", "sep_conv_7x7", "avg_pool_3x3",
        "sep_conv_5x5", "identity", "avg_pool_3x3", "sep_conv_3x3", "max_pool_3x3",
    ]
    assert [i for b in reduction.blocks for i in (b.input_a, b.input_b)] == [
        0, 1, 0, 1, 0, 1, 3, 2, 2, 0
    ]
    assert reduction.concat == (3, 4, 5, 6)
    assert all(b.combine == "add" for b in normal.blocks + reduction.blocks)


def test_default_concat_is_the_unused_states():
    cell = CellGenotype([(0, 1, "identity", "conv_1x1"), (2, 0, "sep_conv_3x3", "max_pool_3x3")])
    assert cell.used_states == (0, 1, 2)
    assert cell.concat == (3,)
    assert CellGenotype([(0, 0, "identity", "identity")]).concat == (1, 2)


@pytest.mark.parametrize("num_blocks", range(1, 8))
def test_json_round_trip(num_blocks):
    genotype = random_genotype(num_blocks, num_blocks)
    text = genotype.to_json()
    assert Genotype.from_json(text) == genotype
    assert Genotype.from_dict(json.loads(text)) == genotype
    assert genotype.normal.num_blocks == num_blocks


def test_nasnet_a_round_trips_with_its_explicit_concat():
    assert Genotype.from_json(NASNET_A.to_json(indent=2)) == NASNET_A
    # A bare list of blocks means the default rule, which NASNet-A does not follow.
    bare = {"normal": NASNET_A.to_dict()["normal"]["blocks"],
            "reduction": NASNET_A.to_dict()["reduction"]["blocks"]}
    assert Genotype.from_dict(bare) != NASNET_A


def test_str_is_compact_and_readable():
    text = str(NASNET_A)
    assert text.startswith("normal: 2=sep5(0)+sep3(1) ")
    assert "reduction: 2=sep5(0)+sep7(1)" in text
    assert text.endswith("-> 3,4,5,6")
    cell = CellGenotype([(0, 1, "conv_1x7_7x1", "dil_conv_3x3", "concat")])
    assert str(cell) == "2=c17(0)|dil3(1) -> 2"


def test_genotype_is_immutable_and_hashable():
    with pytest.raises(AttributeError):
        NASNET_A.normal = NASNET_A.reduction
    assert len({NASNET_A, Genotype.from_json(NASNET_A.to_json())}) == 1


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Block(0, 1, "sep_conv_9x9", "identity"), r"Unknown op 'sep_conv_9x9'.*identity"),
        (lambda: Block(0, 1, "identity", "identity", "mul"), r"Unknown combine op 'mul'.*add"),
        (lambda: Block(-1, 1, "identity", "identity"), r"input_a=-1"),
        (lambda: Block(0, 1.0, "identity", "identity"), r"input_b=1.0"),
        (lambda: CellGenotype([(0, 2, "identity", "identity")]), r"reads hidden state 2.*0\.\.1"),
        (
            lambda: CellGenotype([(0, 1, "identity", "identity"), (4, 1, "identity", "identity")]),
            r"Block 1 reads hidden state 4.*0\.\.2",
        ),
        (lambda: CellGenotype([]), r"at least one block"),
        (lambda: CellGenotype([(0, 1, "identity")]), r"sequence of 4 or 5 items"),
        (lambda: CellGenotype([(0, 1, "identity", "identity")], concat=[5]), r"concat=\[5\]"),
        (lambda: CellGenotype([{"input_a": 0, "in_b": 1}]), r"Unknown block fields \['in_b'\]"),
        (lambda: from_slim(["identity"] * 3, [0, 1, 0]), r"same even length"),
        (lambda: from_slim(["identity"] * 2, [0, 1]), None),
        (lambda: from_slim(["identity"] * 2, [0, 1], [1, 0]), r"one entry per state"),
        (lambda: Genotype.from_dict({"normal": []}), r"exactly the keys"),
        (lambda: Genotype.from_json("{not json"), r"Invalid genotype JSON"),
    ],
)
def test_invalid_genotypes_raise_clear_errors(make, match):
    if match is None:
        make()
        return
    with pytest.raises(ValueError, match=match):
        make()
