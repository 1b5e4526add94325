"""The 2016 layer-wise space (1611.01578): genotypes, hyperparameters, CNN builder, a search,
and a layer-wise genotype read back by the command line."""

import json
import random
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

import nasnet_tf
import tuners.layerwise_space
from nasnet_tf.cli import main
from nasnet_tf.cli.utils import CLIError, load_genotype
from nasnet_tf.layerwise import (
    FILTER_SIZES,
    NUM_FILTERS,
    Layer,
    LayerwiseGenotype,
    build_layerwise_cnn,
)
from tuners.layerwise_space import LayerwiseSearchSpace
from tuners.nas_tuner import LayerwiseHyperModel, NASTuner


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
    with pytest.raises(ValueError, match="batch_norm_momentum=1.5"):
        build_layerwise_cnn(g, input_shape=(8, 8, 3), batch_norm_momentum=1.5)
    with pytest.raises(ValueError, match="seed=-1"):
        build_layerwise_cnn(g, input_shape=(8, 8, 3), seed=-1)
    with pytest.raises(ValueError, match="LayerwiseGenotype"):
        build_layerwise_cnn("3x3", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="needs the fields"):
        LayerwiseGenotype([{"filter_height": 3, "filters": 24}])


def test_the_genotype_lives_next_to_nasnets_and_the_builder_is_seeded(tmp_path):
    # tuners.layerwise_space re-exports the moved names; nasnet_tf exports them lazily.
    space = tuners.layerwise_space
    assert space.LayerwiseGenotype is nasnet_tf.LayerwiseGenotype is LayerwiseGenotype
    assert tuners.layerwise_space.build_layerwise_cnn is nasnet_tf.build_layerwise_cnn
    code = ("import sys, nasnet_tf; g = nasnet_tf.LayerwiseGenotype([nasnet_tf.Layer(3, 3, 24)]);"
            "print(g, sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "0=3x3x24/1(img) -> 0 []\n"  # the genotype imports without Keras
    g = LayerwiseGenotype([Layer(3, 3, 24), Layer(1, 5, 36, inputs=[0])])
    path = tmp_path / "g.json"
    path.write_text(g.to_json())

    def kernels(genotype, seed):
        model = build_layerwise_cnn(genotype, input_shape=(8, 8, 1), classes=3, seed=seed)
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]

    same, again, other = kernels(g, 4), kernels(str(path), 4), kernels(g, 5)
    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert not np.array_equal(same[0], other[0])


def test_cli_reads_and_shows_a_layerwise_genotype(tmp_path, capsys):
    g = LayerwiseGenotype([Layer(3, 5, 24), Layer(1, 1, 36, inputs=[0]), Layer(7, 7, 48)])
    best = tmp_path / "best_genotype.json"  # as a layer-wise search writes it
    best.write_text(json.dumps(g.to_dict()))
    wrapped = tmp_path / "meta.json"
    wrapped.write_text(json.dumps({"genotype": g.to_dict(), "score": 0.5}))
    assert load_genotype(str(best)) == load_genotype(str(wrapped)) == g
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"layers": [{"filter_height": 3}]}))
    with pytest.raises(CLIError, match="is not a valid layer-wise genotype: A layer needs"):
        load_genotype(str(bad))
    assert main(["show", str(best), "--output-dir", str(tmp_path / "cells")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"Layer-wise genotype {best} (3 layers): {g}",
        "layer  filter  filters  stride  reads",
        "    0     3x5       24       1  image",
        "    1     1x1       36       1  0",
        "    2     7x7       48       1  image",
        "classifier: global average pool of layers 1, 2 concatenated",
        "(a layer-wise genotype has no cells to draw: printed only)",
    ]
    assert not (tmp_path / "cells").exists()


def test_layerwise_search_ends_with_completed_trials_and_a_buildable_best(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 48)
    tuner = NASTuner(
        LayerwiseHyperModel(num_layers=3, strides=(1, 2), input_shape=(8, 8, 3), classes=3),
        keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2, seed=3),
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


def test_cli_trains_a_layerwise_genotype(tmp_path, capsys):
    g = LayerwiseGenotype([Layer(3, 3, 8), Layer(1, 3, 8, inputs=[0])])
    best = tmp_path / "best_genotype.json"  # as a layer-wise search writes it
    best.write_text(json.dumps(g.to_dict()))
    out_dir = tmp_path / "run"
    argv = ["train", str(best), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "16",
            "--verbose", "0", "--output-dir", str(out_dir)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "layer-wise CNN of 2 layers, cifar recipe" in out
    assert json.loads((out_dir / "genotype.json").read_text()) == g.to_dict()
    meta = json.loads((out_dir / "model.keras.json").read_text())
    assert LayerwiseGenotype.from_dict(meta["layerwise_genotype"]) == g
    model = keras.saving.load_model(out_dir / "model.keras")
    assert [layer.kernel_size for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D)] == [(3, 3), (1, 3)]
    # Run again: the finished run is resumed (the genotype check passes), not retrained.
    assert main(argv) == 0
    history = json.loads((out_dir / "history.json").read_text())
    assert len(history["loss"]) == 1
