"""The 2016 layer-wise space (1611.01578): genotypes, hyperparameters, CNN builder, a search."""

import random

import keras
import keras_tuner
import numpy as np
import pytest

from tuners.layerwise import (
    FILTER_SIZES,
    NUM_FILTERS,
    Layer,
    LayerwiseGenotype,
    LayerwiseSearchSpace,
    build_layerwise_cnn,
)
from tuners.nas_tuner import LayerwiseTuner


def random_genotype(rng, num_layers, strides=(1,)):
    return LayerwiseGenotype(
        [
            Layer(
                rng.choice(FILTER_SIZES),
                rng.choice(FILTER_SIZES),
                rng.choice(NUM_FILTERS),
                stride=rng.choice(strides),
                inputs=[j for j in range(i) if rng.random() < 0.5],
            )
            for i in range(num_layers)
        ]
    )


def test_space_declares_the_paper_decisions_per_layer():
    hp = LayerwiseSearchSpace(num_layers=4).hyperparameters()
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert len(kinds) == 4 * 3 + (0 + 1 + 2 + 3)
    assert list(hp._hps["layer_2_filter_height"][0].values) == [1, 3, 5, 7]
    assert list(hp._hps["layer_2_filters"][0].values) == [24, 36, 48, 64]
    assert kinds["layer_3_skip_0"] == kinds["layer_3_skip_2"] == "Boolean"
    assert "layer_0_stride" not in kinds  # stride fixed at 1 unless searched
    assert "layer_0_skip_0" not in kinds
    hp = LayerwiseSearchSpace(num_layers=2, strides=(1, 2)).hyperparameters()
    assert list(hp._hps["layer_1_stride"][0].values) == [1, 2]


@pytest.mark.parametrize("strides", [(1,), (1, 2)])
@pytest.mark.parametrize("num_layers", [1, 2, 5, 8])
def test_round_trip(num_layers, strides):
    space = LayerwiseSearchSpace(num_layers=num_layers, strides=strides)
    rng = random.Random(num_layers)
    for _ in range(20):
        g = random_genotype(rng, num_layers, strides)
        values = space.encode(g)
        assert sorted(values) == sorted(space.names)
        assert space.decode(values) == g
        assert LayerwiseGenotype.from_json(g.to_json()) == g


def test_without_skip_connections_layers_form_a_chain():
    space = LayerwiseSearchSpace(num_layers=3, skip_connections=False)
    g = space.decode(space.hyperparameters().values)
    assert [layer.inputs for layer in g.layers] == [(), (0,), (1,)]
    assert g.output_layers == (2,)
    assert space.decode(space.encode(g)) == g
    with pytest.raises(ValueError, match="layer 1 must read layer 0 only"):
        space.encode(LayerwiseGenotype([Layer(1, 1, 24), Layer(1, 1, 24), Layer(1, 1, 24)]))


def test_genotype_rules_and_errors():
    g = LayerwiseGenotype([Layer(3, 3, 24), Layer(1, 1, 36), Layer(5, 5, 24, inputs=[0])])
    assert g.output_layers == (1, 2)
    assert str(g) == "0=3x3x24/1(img) 1=1x1x36/1(img) 2=5x5x24/1(0) -> 1,2"
    with pytest.raises(ValueError, match="Layer 1 reads layers \\[1\\]"):
        LayerwiseGenotype([Layer(3, 3, 24), Layer(3, 3, 24, inputs=[1])])
    with pytest.raises(ValueError, match="filters=0"):
        Layer(3, 3, 0)
    with pytest.raises(ValueError, match="inputs must be distinct|must be distinct"):
        Layer(3, 3, 24, inputs=[0, 0])
    with pytest.raises(ValueError, match="at least one layer"):
        LayerwiseGenotype([])
    with pytest.raises(ValueError, match="Unknown layer fields \\['kernel'\\]"):
        LayerwiseGenotype([{"kernel": 3}])
    with pytest.raises(ValueError, match="filter_height=2"):
        LayerwiseSearchSpace(num_layers=1).encode(LayerwiseGenotype([Layer(2, 3, 24)]))
    with pytest.raises(ValueError, match="num_layers=2"):
        LayerwiseSearchSpace(num_layers=2).encode(LayerwiseGenotype([Layer(3, 3, 24)]))
    with pytest.raises(ValueError, match="strides=\\[1, 1\\]"):
        LayerwiseSearchSpace(strides=(1, 1))
    with pytest.raises(ValueError, match="lack 6 of the space.s 7 decisions"):
        LayerwiseSearchSpace(num_layers=2).decode({"layer_0_filter_height": 3})


def test_builder_concatenates_inputs_and_zero_pads_smaller_maps():
    g = LayerwiseGenotype(
        [
            Layer(3, 3, 24),  # 9x9
            Layer(3, 1, 36, stride=2, inputs=[0]),  # 5x5
            Layer(1, 5, 48, inputs=[0, 1]),  # reads 9x9 and 5x5 padded to 9x9
            Layer(7, 7, 64, stride=2),  # reads the image: 5x5
        ]
    )
    model = build_layerwise_cnn(g, input_shape=(9, 9, 3), classes=5)
    assert model.output_shape == (None, 5)
    assert model.get_layer("layer2_concat").output.shape == (None, 9, 9, 24 + 36)
    pad = model.get_layer("layer2_concat_pad1")
    assert pad.output.shape == (None, 9, 9, 36)
    assert model.get_layer("layer3_conv").input.shape == (None, 9, 9, 3)
    assert model.get_layer("layer3_conv").kernel.shape == (7, 7, 3, 64)
    assert model.get_layer("layer2_conv").kernel.shape == (1, 5, 60, 48)
    # Layers 2 and 3 feed nothing: they meet at the head, layer 3 padded from 5x5 to 9x9.
    assert model.get_layer("head_concat").output.shape == (None, 9, 9, 48 + 64)
    x = np.random.default_rng(0).random((2, 9, 9, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    # The padding adds zeros only: the padded block equals the unpadded map at its centre.
    inner = keras.Model(model.input, [pad.input, pad.output])
    before, after = (keras.ops.convert_to_numpy(t) for t in inner(x))
    np.testing.assert_array_equal(after[:, 2:7, 2:7], before)
    assert not after[:, :2].any() and not after[:, 7:].any()


def test_builder_refuses_bad_arguments():
    g = LayerwiseGenotype([Layer(3, 3, 24)])
    with pytest.raises(ValueError, match="input_shape"):
        build_layerwise_cnn(g, input_shape=(8, 8))
    with pytest.raises(ValueError, match="classes=0"):
        build_layerwise_cnn(g, input_shape=(8, 8, 3), classes=0)
    with pytest.raises(ValueError, match="LayerwiseGenotype"):
        build_layerwise_cnn("3x3", input_shape=(8, 8, 3))


def test_layerwise_search_ends_with_completed_trials_and_a_buildable_best(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 48)
    tuner = LayerwiseTuner(
        num_layers=3,
        strides=(1, 2),
        input_shape=(8, 8, 3),
        classes=3,
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy", max_trials=2, seed=3
        ),
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=1, batch_size=16,
                 verbose=0)
    trials = tuner.oracle.trials.values()
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" and 0.0 <= t.score <= 1.0 for t in trials)
    best = tuner.get_best_genotypes(2)
    assert len(best) == 2 and all(isinstance(g, LayerwiseGenotype) for g in best)
    assert best[0] == tuner.hypermodel.decode(tuner.oracle.get_best_trials(1)[0].hyperparameters)
    capsys.readouterr()
    tuner.results_summary(2)
    out = capsys.readouterr().out
    assert "Trials: 2 completed" in out
    assert str(best[0]) in out and str(best[1]) in out
    model = build_layerwise_cnn(best[0], input_shape=(8, 8, 3), classes=3)
    assert model.output_shape == (None, 3)
