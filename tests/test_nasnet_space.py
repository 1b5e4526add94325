"""The NASNet cell space as KerasTuner hyperparameters, and its one encode/decode."""

import random

import keras_tuner
import pytest

from nasnet_tf import NASNET_A, OP_NAMES, Block, CellGenotype, Genotype, build_nasnet
from tuners.nasnet_space import BLOCK_FIELDS, NASNetSearchSpace, decode, encode, hp_name


def random_genotype(rng, num_blocks, ops=OP_NAMES, combine_ops=("add", "concat")):
    cells = []
    for _ in range(2):
        blocks = [
            Block(
                rng.randrange(2 + k),
                rng.randrange(2 + k),
                rng.choice(ops),
                rng.choice(ops),
                rng.choice(combine_ops),
            )
            for k in range(num_blocks)
        ]
        cells.append(CellGenotype(blocks))
    return Genotype(*cells)


def test_space_declares_two_cells_of_five_decisions_per_block_in_prediction_order():
    space = NASNetSearchSpace(num_blocks=3)
    hp = space.hyperparameters()
    names = [p.name for p in hp.space]
    assert len(names) == 2 * 5 * 3
    assert names == space.names
    assert names[:5] == [f"normal_b0_{f}" for f in BLOCK_FIELDS]
    assert names[15:20] == [f"reduction_b0_{f}" for f in BLOCK_FIELDS]
    for cell in ("normal", "reduction"):
        for k in range(3):
            for field in ("input_a", "input_b"):
                p = hp._hps[hp_name(cell, k, field)][0]
                assert isinstance(p, keras_tuner.engine.hyperparameters.Choice)
                assert list(p.values) == list(range(2 + k))
            assert list(hp._hps[hp_name(cell, k, "op_a")][0].values) == list(OP_NAMES)
            assert list(hp._hps[hp_name(cell, k, "combine")][0].values) == ["add", "concat"]


def test_single_option_decisions_are_fixed():
    space = NASNetSearchSpace(num_blocks=1, ops=["sep_conv_3x3", "identity"], combine_ops=["add"])
    hp = space.hyperparameters()
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds["normal_b0_combine"] == "Fixed"
    assert kinds["normal_b0_op_a"] == "Choice"
    assert space.decode(hp.values).normal.blocks[0].combine == "add"


@pytest.mark.parametrize("num_blocks", [1, 2, 3, 4, 5, 6, 7])
def test_round_trip_for_every_number_of_blocks(num_blocks):
    rng = random.Random(num_blocks)
    space = NASNetSearchSpace(num_blocks=num_blocks)
    for _ in range(25):
        g = random_genotype(rng, num_blocks)
        values = space.encode(g)
        assert sorted(values) == sorted(space.names)
        assert space.decode(values) == g
        assert decode(encode(g)) == g
        # Through a HyperParameters object, as a tuner hands them over.
        hp = space.hyperparameters()
        hp.values.update(values)
        assert space.decode(hp) == g


def test_round_trip_with_a_subset_of_ops_and_one_combine_op():
    ops = ("identity", "sep_conv_3x3", "max_pool_3x3")
    space = NASNetSearchSpace(num_blocks=4, ops=ops, combine_ops=("concat",))
    rng = random.Random(0)
    for _ in range(20):
        g = random_genotype(rng, 4, ops=ops, combine_ops=("concat",))
        assert space.decode(space.encode(g)) == g


def test_every_sampled_point_of_the_space_is_a_valid_genotype():
    space = NASNetSearchSpace(num_blocks=5)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        hyperparameters=space.hyperparameters(), max_trials=30, seed=0
    )
    genotypes = set()
    for i in range(30):
        values = oracle.populate_space(str(i))["values"]
        g = space.decode(values)
        assert space.encode(g) == values
        genotypes.add(g.to_json())
    assert len(genotypes) == 30


def test_decoded_cells_use_the_search_space_output_rule():
    normal = [0, 0, "identity", "conv_1x1", "add"]
    reduction = [1, 0, "avg_pool_3x3", "identity", "concat"]
    g = decode(
        {
            **{hp_name("normal", 0, f): v for f, v in zip(BLOCK_FIELDS, normal)},
            **{hp_name("reduction", 0, f): v for f, v in zip(BLOCK_FIELDS, reduction)},
        }
    )
    assert g.normal.concat == (1, 2)  # state 0 is read; 1 and the block's output are not
    assert g.reduction.concat == (2,)


def test_decode_ignores_other_hyperparameters():
    g = random_genotype(random.Random(1), 2)
    values = {**encode(g), "learning_rate": 0.1}
    assert decode(values) == g


def test_encode_refuses_genotypes_outside_the_space():
    with pytest.raises(ValueError, match="concat=None"):
        encode(NASNET_A)  # NASNet-A lists its concatenated states explicitly
    g = random_genotype(random.Random(2), 2, ops=("sep_conv_3x3", "identity"))
    with pytest.raises(ValueError, match="num_blocks=3"):
        NASNetSearchSpace(num_blocks=3).encode(g)
    with pytest.raises(ValueError, match="Accepted: \\['max_pool_3x3'\\]"):
        NASNetSearchSpace(num_blocks=2, ops=["max_pool_3x3"]).encode(g)
    lopsided = Genotype([Block(0, 1, "identity", "identity")], g.reduction)
    with pytest.raises(ValueError, match="same number of blocks"):
        encode(lopsided)
    with pytest.raises(ValueError, match="Received: genotype=3"):
        encode(3)


def test_decode_refuses_incomplete_or_foreign_values():
    space = NASNetSearchSpace(num_blocks=2)
    values = space.encode(random_genotype(random.Random(3), 2))
    del values["reduction_b1_op_b"]
    with pytest.raises(ValueError, match="reduction_b1_op_b"):
        space.decode(values)
    values = space.encode(random_genotype(random.Random(3), 2))
    values["normal_b1_input_a"] = 3  # block 1 may read states 0..2 only
    with pytest.raises(ValueError, match="normal_b1_input_a` must be one of \\[0, 1, 2\\]"):
        space.decode(values)
    with pytest.raises(ValueError, match="No NASNet cell decisions"):
        decode({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="Received: values=\\[1\\]"):
        decode([1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_blocks": 0}, "num_blocks=0"),
        ({"num_blocks": True}, "num_blocks=True"),
        ({"ops": ["sep_conv_9x9"]}, "sep_conv_9x9"),
        ({"ops": []}, "ops=\\[\\]"),
        ({"ops": "identity"}, "ops='identity'"),
        ({"combine_ops": ["mul"]}, "combine_ops=\\['mul'\\]"),
    ],
)
def test_bad_space_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NASNetSearchSpace(**kwargs)


def test_space_config_round_trip():
    space = NASNetSearchSpace(num_blocks=3, ops=["identity", "conv_1x1"], combine_ops=["add"])
    clone = NASNetSearchSpace.from_config(space.get_config())
    assert clone.names == space.names and clone.ops == space.ops
    assert clone.combine_ops == space.combine_ops


def test_a_decoded_genotype_builds():
    space = NASNetSearchSpace(num_blocks=3)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        hyperparameters=space.hyperparameters(), max_trials=1, seed=7
    )
    g = space.decode(oracle.populate_space("0")["values"])
    model = build_nasnet(
        g,
        preset="cifar",
        num_cells=1,
        penultimate_filters=24,
        input_shape=(8, 8, 3),
        classes=3,
        auxiliary_head=False,
        drop_path_keep_prob=1.0,
    )
    assert model.genotype == g
    assert model.output_shape == (None, 3)
