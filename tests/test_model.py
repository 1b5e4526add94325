import h5py
import keras
import numpy as np
import pytest
from layer_checks import outputs_equal
from test_genotype import random_genotype

from nasnet_tf import (
    NASNET_A,
    PRESETS,
    NASNet,
    NASNetCell,
    build_nasnet,
    get_preset,
    load_keras_application_weights,
    load_weights,
    set_drop_path_progress,
)

TINY = dict(preset="cifar", num_cells=1, penultimate_filters=48, input_shape=(8, 8, 3))


def _images(n, size, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _infer(model, x):
    """Inference without `predict`: under JAX, `predict` compiles the whole network with XLA
    (minutes for a NASNet on a CPU), while an eager call runs op by op in about a second."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def _cells(model):
    return [layer for layer in model.layers if isinstance(layer, NASNetCell)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_its_published_layout(preset):
    config = get_preset(preset)
    # Drop path on: its progress is state, not a weight, so the published counts still hold.
    model = build_nasnet(preset=preset, auxiliary_head=False, drop_path_keep_prob=0.7)
    assert all(cell.drop_path_progress is not None for cell in _cells(model))
    stem_cells = 2 if config["stem"] == "imagenet" else 0
    assert len(_cells(model)) == 3 * config["num_cells"] + 2 + stem_cells
    assert model.output_shape == (None, config["classes"])
    assert model.input_shape == (None, *config["input_shape"])
    # The last cell's output has P channels: P = 24 F, 6 states of 4 F.
    last = _cells(model)[-1]
    assert last.output.shape[-1] == config["penultimate_filters"]
    counts = {
        # keras.applications.NASNetMobile / NASNetLarge(weights=None), Dense top of 1000.
        "mobile": (5_326_716, 5_289_978),
        "large": (88_949_818, 88_753_150),
    }
    if preset in counts:
        assert (model.count_params(), _trainable_count(model)) == counts[preset]
    else:
        # The paper's NASNet-A CIFAR-10 6@768: 3.3M (trainable) parameters.
        assert round(_trainable_count(model) / 1e6, 1) == 3.3


def _randomize(model, seed=0):
    """Random weights of realistic scale, BN statistics included, so outputs are far from
    uniform and a wrong mapping shows."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                rng.uniform(-0.2, 0.2, beta.shape).astype("float32"),
                rng.uniform(-0.2, 0.2, mean.shape).astype("float32"),
                rng.uniform(0.5, 1.5, var.shape).astype("float32"),
            ])
        else:
            layer.set_weights([w + rng.normal(0, 0.02, w.shape).astype("float32")
                               for w in layer.get_weights()])


@pytest.fixture(scope="module")
def keras_mobile():
    model = keras.applications.NASNetMobile(weights=None)
    _randomize(model)
    return model


@pytest.fixture(scope="module")
def keras3_mobile_file(keras_mobile, tmp_path_factory):
    path = tmp_path_factory.mktemp("keras3") / "m.weights.h5"
    keras_mobile.save_weights(path)
    return path


def test_keras_nasnet_mobile_weights_give_keras_predictions(
    keras_mobile, keras3_mobile_file, tmp_path
):
    x = _images(2, 224)
    expected = _infer(keras_mobile, x)
    assert expected.max() > 10 * expected.min()  # far from uniform: the check can fail

    # A Keras 3 `.weights.h5` file of NASNetMobile (its layers keyed by class, not name).
    ours = build_nasnet(preset="mobile", auxiliary_head=False, weights=keras3_mobile_file)
    np.testing.assert_allclose(_infer(ours, x), expected, atol=1e-5, rtol=0)

    # The Keras model itself; a Keras legacy `.h5` file (the format of Keras' ImageNet
    # downloads), written by Keras' public legacy route `model.save("*.h5")`; our own file.
    legacy = tmp_path / "NASNet-mobile.h5"
    keras_mobile.save(legacy)
    with h5py.File(legacy, "r") as f:
        assert "layer_names" in f["model_weights"].attrs
    own = tmp_path / "ours.weights.h5"
    ours.save_weights(own)
    for source in (keras_mobile, str(legacy), own):
        ours.set_weights([np.zeros_like(w) for w in ours.get_weights()])
        if source is keras_mobile:
            load_keras_application_weights(ours, source)
        else:
            load_weights(ours, source)
        np.testing.assert_allclose(_infer(ours, x), expected, atol=1e-5, rtol=0)


def test_keras_weights_refuse_another_layout(keras_mobile, keras3_mobile_file):
    cifar = build_nasnet(**TINY)
    with pytest.raises(ValueError, match="only the NASNET_A genotype with the 'imagenet' stem"):
        load_keras_application_weights(cifar, keras_mobile)
    other = build_nasnet(preset="mobile", num_cells=1, penultimate_filters=96,
                         input_shape=(64, 64, 3), auxiliary_head=False)
    with pytest.raises(ValueError, match="do not fit this model's layout"):
        load_keras_application_weights(other, keras_mobile)
    # A Keras 3 file fits the NASNetMobile / NASNetLarge layouts only; the error names the
    # route for any other.
    with pytest.raises(ValueError, match=r"keras_model.load_weights\(path\).*"
                       r"nasnet_tf.load_keras_application_weights\(model, keras_model\)"):
        load_weights(other, keras3_mobile_file)


def test_model_config_and_keras_file_round_trip(tmp_path):
    model = build_nasnet(**TINY, auxiliary_head=True, drop_path_keep_prob=0.7, seed=3)
    set_drop_path_progress(model, 0.5)
    x = _images(2, 8)
    expected = _infer(model, x)
    clone = NASNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    outputs_equal(_infer(clone, x), expected)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, NASNet) and loaded.genotype == NASNET_A
    outputs_equal(_infer(loaded, x), expected)
    progress = [float(keras.ops.convert_to_numpy(c.drop_path_progress)) for c in _cells(loaded)]
    assert progress == [0.5] * len(_cells(model))


def test_auxiliary_head_is_a_training_output_only():
    model = build_nasnet(**TINY, auxiliary_head=True)
    x = _images(4, 8)
    main, aux = model(x, training=True)
    assert main.shape == aux.shape == (4, 10)
    assert model(x, training=False).shape == (4, 10)
    assert model.predict(x, verbose=0).shape == (4, 10)
    np.testing.assert_array_equal(_infer(model, x), _infer(model, x))

    model.compile(loss="sparse_categorical_crossentropy")
    y = np.array([0, 1, 2, 3])
    main_loss = keras.losses.sparse_categorical_crossentropy(y, main)
    aux_loss = keras.losses.sparse_categorical_crossentropy(y, aux)
    total = model.compute_loss(x, y, [main, aux])
    expected = np.mean(main_loss) + 0.4 * np.mean(aux_loss)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(total), expected, rtol=1e-5)


# Under JAX every case compiles its own step (about 20 s on 2 cores): three cases there,
# one per combine (the builder's wiring is the backends' same, and all seven run under TF).
@pytest.mark.parametrize("num_blocks", [
    n if n in (2, 3, 7) else pytest.param(n, marks=pytest.mark.tf_only) for n in range(1, 8)])
def test_any_genotype_builds_and_trains_a_step(num_blocks):
    combine = ("add", "concat", None)[num_blocks % 3]
    genotype = random_genotype(100 + num_blocks, num_blocks, combine)
    model = build_nasnet(genotype, **TINY, auxiliary_head=False, drop_path_keep_prob=0.8)
    # TensorFlow: eager steps (XLA-compiling seven different graphs would dominate the suite's
    # time). JAX: jitted, as its op-by-op eager mode is slower still (60 s against 40 here).
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  jit_compile=keras.backend.backend() == "jax")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(_images(4, 8), np.arange(4), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_imagenet_layout_takes_any_input_size():
    for size in (33, 64):
        model = build_nasnet(preset="mobile", num_cells=1, penultimate_filters=96, classes=5,
                             input_shape=(size, size, 3), auxiliary_head=True)
        assert model.predict(_images(1, size), verbose=0).shape == (1, 5)


def test_headless_model_and_pooling():
    model = build_nasnet(**TINY, include_top=False, pooling="avg")
    assert model.output_shape == (None, 48)
    model = build_nasnet(**TINY, include_top=False)
    assert model.output_shape == (None, 2, 2, 48)


def test_genotype_from_a_json_file(tmp_path):
    path = tmp_path / "genotype.json"
    genotype = random_genotype(7, 2)
    path.write_text(genotype.to_json())
    assert build_nasnet(str(path), **TINY).genotype == genotype


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"preset": "medium"}, r"Unknown preset 'medium'.*\['cifar', 'large', 'mobile'\]"),
        ({"stem": "tiny"}, r"stem='tiny'"),
        ({"penultimate_filters": 50}, r"multiple of 24.*penultimate_filters=50"),
        ({"preset": "mobile", "penultimate_filters": 48}, r"multiple of 96"),
        ({"num_cells": 0}, r"num_cells=0"),
        ({"drop_path_keep_prob": 1.5}, r"drop_path_keep_prob=1.5"),
        ({"dense_dropout_keep_prob": 0}, r"dense_dropout_keep_prob=0"),
        ({"input_shape": (32, 32)}, r"input_shape=\(32, 32\)"),
        ({"classes": 0}, r"classes=0"),
        ({"include_top": False, "pooling": "sum"}, r"'sum'"),
        ({"genotype": "missing.json"}, r"No such file: 'missing.json'"),
        ({"genotype": 42}, r"genotype=42"),
        ({"weights": "missing.weights.h5"}, r"No such file: 'missing.weights.h5'"),
    ],
)
def test_bad_builder_arguments(kwargs, match):
    args = dict(TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_nasnet(**args)


def test_auxiliary_head_needs_the_top():
    with pytest.raises(ValueError, match="needs `include_top=True`"):
        NASNet(auxiliary_head=True, include_top=False, num_cells=1, penultimate_filters=48)


def _batch_norms(model):
    """Every BatchNormalization in `model`, through public attributes: the model's `layers`,
    then each layer's public attributes holding layers (a cell's ops, an op's `chain`)."""
    found, stack, seen = [], list(model.layers), set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        values = [v for k, v in vars(layer).items() if not k.startswith("_")]
        while values:
            value = values.pop()
            if isinstance(value, keras.layers.Layer):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                values.extend(value)
            elif isinstance(value, dict):
                values.extend(value.values())
    return found


def test_batch_norm_settings_reach_every_batch_norm(tmp_path):
    model = build_nasnet(**TINY, auxiliary_head=True, batch_norm_momentum=0.9,
                         sync_batch_norm=True)
    norms = _batch_norms(model)
    # Synchronized under TensorFlow (tf.distribute replicas); Keras has no such flag for JAX.
    synchronized = keras.backend.backend() == "tensorflow"
    assert len(norms) > 20 and {layer.momentum for layer in norms} == {0.9}
    assert {layer.synchronized for layer in norms} == {synchronized}
    assert not any(layer.synchronized for layer in _batch_norms(build_nasnet(**TINY)))
    assert len(norms) > 20 and {layer.momentum for layer in norms} == {0.9}
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.batch_norm_momentum == 0.9 and loaded.sync_batch_norm
    assert {layer.synchronized for layer in _batch_norms(loaded)} == {synchronized}
    with pytest.raises(ValueError, match="batch_norm_momentum=1.0"):
        build_nasnet(**TINY, batch_norm_momentum=1.0)
