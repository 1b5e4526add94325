"""Export: SavedModel (reloaded by plain TensorFlow in a fresh process), TFLite, `.keras`, and the
metadata that lets a user rebuild the model."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from nasnet_tf import Block, Genotype, build_nasnet
from nasnet_tf import serving as ex
from nasnet_tf.cli import main

BACKEND = keras.backend.backend()
GENOTYPE = Genotype(
    [Block(0, 1, "sep_conv_3x3", "identity"),
     Block(2, 0, "avg_pool_3x3", "conv_1x3_3x1", "concat")],
    [Block(0, 1, "max_pool_3x3", "sep_conv_5x5"), Block(2, 1, "identity", "dil_conv_3x3")],
)
CLASS_NAMES = ["cat", "dog", "emu", "fox", "gnu"]


def _tiny(aux=True, channels=3, size=16):
    # Aux head and drop path on: the served model must leave both out.
    return build_nasnet(
        GENOTYPE, preset="cifar", num_cells=1, penultimate_filters=24,
        input_shape=(size, size, channels), classes=5, auxiliary_head=aux,
        drop_path_keep_prob=0.7, seed=1,
    )


def _images(n=6, channels=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 16, 16, channels)).astype("uint8")


def _keras_probs(model, images, pre=ex.DEFAULT_PREPROCESSING):
    x = images.astype("float32") * np.float32(pre["scale"]) + np.float32(pre["offset"])
    return np.asarray(model.predict(x, verbose=0))


_FRESH = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    saved, tflite, images_path, out = sys.argv[1:]
    images = np.load(images_path)
    loaded = tf.saved_model.load(saved)
    serve = loaded.signatures["serving_default"]
    result = {"saved": serve(images=tf.constant(images))["probabilities"].numpy().tolist(),
              "serve_fn": loaded.serve(tf.constant(images))["probabilities"].numpy().tolist()}
    interpreter = tf.lite.Interpreter(model_path=tflite)
    runner = interpreter.get_signature_runner("serving_default")
    result["tflite"] = runner(images=images.astype(np.float32))["probabilities"].tolist()
    result["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "nasnet_tf")
    json.dump(result, open(out, "w"))
    """
)


@pytest.mark.tf_only
def test_cli_export_reloads_in_a_fresh_plain_tensorflow_process(tmp_path):
    model = _tiny()
    keras_path = ex.save_keras(model, tmp_path / "model.keras", preset="cifar",
                               class_names=CLASS_NAMES)
    saved = tmp_path / "served"
    tflite = tmp_path / "model.tflite"
    assert main(["export", str(keras_path), "-o", str(saved), "--input-dtype", "uint8"]) == 0
    assert main(["export", str(keras_path), "-o", str(tflite)]) == 0

    images = _images()
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [sys.executable, str(script), str(saved), str(tflite), str(tmp_path / "images.npy"),
         str(tmp_path / "out.json")],
        check=True, timeout=240, env=env, cwd=tmp_path,
    )
    result = json.loads((tmp_path / "out.json").read_text())
    # Plain TensorFlow only: nasnet_tf was never imported to serve.
    assert result["modules"] == []
    expected = _keras_probs(model, images)
    saved_probs = np.array(result["saved"])
    assert saved_probs.shape == (6, 5)
    np.testing.assert_allclose(saved_probs.sum(-1), 1.0, atol=1e-5)
    assert np.abs(saved_probs - expected).max() <= 1e-5
    assert np.abs(np.array(result["serve_fn"]) - expected).max() <= 1e-5
    assert np.abs(np.array(result["tflite"]) - expected).max() <= 1e-4
    # The served model is the inference graph: no aux output, no drop-path noise.
    assert np.abs(saved_probs - _keras_probs(model, images)).max() <= 1e-5

    meta = ex.read_metadata(saved)
    assert meta["format"] == "saved_model" and meta["input"]["dtype"] == "uint8"
    assert meta["output"]["class_names"] == CLASS_NAMES
    assert meta["preset"] == "cifar"
    assert ex.read_metadata(tflite)["format"] == "tflite"
    assert ex.read_metadata(tflite)["input"]["dtype"] == "float32"


@pytest.mark.tf_only
def test_metadata_rebuilds_the_model_and_custom_preprocessing(tmp_path):
    model = _tiny(aux=False, channels=1)
    pre = {"scale": 1 / 255.0, "offset": -0.5}
    path = ex.export_saved_model(model, tmp_path / "sm", preprocessing=pre)
    meta = json.loads((tmp_path / "sm" / "nasnet_tf.json").read_text())
    assert Genotype.from_dict(meta["genotype"]) == GENOTYPE
    rebuilt = ex.build_from_metadata(path)
    assert rebuilt.count_params() == model.count_params()
    assert rebuilt.get_config() == {**model.get_config(), "name": rebuilt.name}
    with pytest.raises(ValueError, match="must hold a 'genotype' and a 'layout'"):
        ex.build_from_metadata({"format": "tflite"})
    assert meta["preprocessing"] == {"scale": 1 / 255.0, "offset": -0.5}

    import tensorflow as tf

    images = _images(channels=1).astype("float32")
    loaded = tf.saved_model.load(path)  # keep a reference: its variables die with it
    served = loaded.serve(tf.constant(images))["probabilities"].numpy()
    assert np.abs(served - _keras_probs(model, images, pre)).max() <= 1e-5


@pytest.mark.tf_only
def test_logits_model_is_served_as_probabilities(tmp_path):
    model = build_nasnet(GENOTYPE, num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
                         classes=3, auxiliary_head=False, classifier_activation=None)
    served = ex.serving_model(model)
    x = np.random.RandomState(2).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    probs = served.predict(x, verbose=0)["probabilities"]
    logits = model.predict(x / 127.5 - 1, verbose=0)
    np.testing.assert_allclose(probs, keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
                               atol=1e-6)


@pytest.mark.tf_only
def test_exports_are_whole_or_absent(tmp_path):
    model = _tiny(aux=False)
    path = ex.export_saved_model(model, tmp_path / "sm")
    before = sorted(os.listdir(path))
    with pytest.raises(ValueError, match="already exists"):
        ex.export_saved_model(model, tmp_path / "sm")
    assert sorted(os.listdir(path)) == before
    # Overwrite replaces it whole; no temporary siblings remain.
    ex.export_saved_model(model, tmp_path / "sm", overwrite=True, input_dtype="uint8")
    assert ex.read_metadata(path)["input"]["dtype"] == "uint8"
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    with pytest.raises(ValueError, match="input_dtype"):
        ex.export_saved_model(model, tmp_path / "x", input_dtype="int8")
    with pytest.raises(ValueError, match=r"preprocessing\['scale'\]"):
        ex.export_saved_model(model, tmp_path / "x", preprocessing={"scale": "big"})
    with pytest.raises(ValueError, match="Unknown export format 'onnx'"):
        ex.export_model(model, tmp_path / "x", format="onnx")
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_keras_file_round_trip_with_metadata(tmp_path):
    model = _tiny(size=8)
    path = ex.save_keras(model, tmp_path / "m.keras", class_names=CLASS_NAMES)
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "m.keras.json"]
    loaded = ex.load_keras(path)
    x = _images(2)[:, :8, :8].astype("float32") / 127.5 - 1
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    assert loaded.genotype == GENOTYPE and loaded.auxiliary_head
    assert ex.read_metadata(path)["output"]["class_names"] == CLASS_NAMES
    with pytest.raises(ValueError, match="must end in '.keras'"):
        ex.save_keras(model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="one name per class"):
        ex.save_keras(model, tmp_path / "n.keras", class_names=["a"])
    with pytest.raises(ValueError, match="No such model file"):
        ex.load_keras(tmp_path / "missing.keras")
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "m.keras.json"]


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the error under other backends")
def test_saved_model_export_needs_tensorflow(tmp_path):
    model = _tiny(aux=False)
    with pytest.raises(RuntimeError, match="needs the TensorFlow backend"):
        ex.export_saved_model(model, tmp_path / "sm")
    assert os.listdir(tmp_path) == []


# -- a trained model: moved batch-norm statistics and drop-path progress survive a round trip ---
def _progress(model):
    from nasnet_tf import NASNetCell

    cells = [la for la in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(la, NASNetCell)]
    assert cells
    return [float(keras.ops.convert_to_numpy(c.drop_path_progress)) for c in cells]


def _bn_statistics(model):
    return {
        f"{la.path}/{name}": keras.ops.convert_to_numpy(getattr(la, name))
        for la in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(la, keras.layers.BatchNormalization)
        for name in ("moving_mean", "moving_variance")
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NASNet (aux head, drop path) after 2 training steps of the NASNet recipe."""
    from nasnet_tf.data import load_dataset
    from nasnet_tf.training import TrainConfig, train

    data = load_dataset("digits", batch_size=16, seed=0, augment="none")
    config = TrainConfig(
        epochs=1, steps_per_epoch=2, batch_size=16, jit_compile=False, run_eagerly=True,
        verbose=0, tensorboard=False, seed=1,
        model_kwargs=dict(num_cells=1, penultimate_filters=24, auxiliary_head=True,
                          drop_path_keep_prob=0.7, batch_norm_momentum=0.5),
    )
    model = train(GENOTYPE, data, config, tmp_path_factory.mktemp("run")).model
    images = next(iter(data.validation))[0].numpy()[:4]
    return model, images


@pytest.mark.slow
@pytest.mark.tf_only  # the format is backend-neutral; a JAX training here costs minutes on a CPU
def test_a_trained_model_keeps_its_state_through_a_keras_file(trained, tmp_path):
    model, images = trained
    # The training moved what the round trip must keep: the drop-path scheduler raised the
    # progress to 1/2 at the second (last) step; the statistics left their 0 / 1 start.
    assert _progress(model) == [0.5] * len(_progress(model))
    stats = _bn_statistics(model)
    assert max(np.abs(v).max() for k, v in stats.items() if k.endswith("moving_mean")) > 1e-3
    assert max(np.abs(v - 1).max() for k, v in stats.items()
               if k.endswith("moving_variance")) > 1e-3

    path = ex.save_keras(model, tmp_path / "trained.keras", preset="cifar")
    loaded = keras.saving.load_model(path)
    assert _progress(loaded) == _progress(model)
    loaded_stats = _bn_statistics(loaded)
    assert loaded_stats.keys() == stats.keys()
    for key in stats:
        np.testing.assert_array_equal(loaded_stats[key], stats[key], err_msg=key)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)


_FRESH_SAVED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    saved, images_path, out = sys.argv[1:]
    loaded = tf.saved_model.load(saved)
    probs = loaded.signatures["serving_default"](images=tf.constant(np.load(images_path)))
    json.dump(probs["probabilities"].numpy().tolist(), open(out, "w"))
    """
)


@pytest.mark.slow
@pytest.mark.tf_only
def test_a_trained_model_serves_the_same_from_a_saved_model_in_a_fresh_process(trained,
                                                                                 tmp_path):
    model, images = trained
    pre = ex.DEFAULT_PREPROCESSING
    pixels = (images - np.float32(pre["offset"])) / np.float32(pre["scale"])  # back to [0, 255]
    saved = ex.export_saved_model(model, tmp_path / "served")
    np.save(tmp_path / "images.npy", pixels.astype("float32"))
    (tmp_path / "fresh.py").write_text(_FRESH_SAVED)
    subprocess.run(
        [sys.executable, str(tmp_path / "fresh.py"), str(saved), str(tmp_path / "images.npy"),
         str(tmp_path / "out.json")],
        check=True, timeout=240, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=tmp_path,
    )
    served = np.array(json.loads((tmp_path / "out.json").read_text()))
    assert served.shape == (4, 10)
    np.testing.assert_allclose(served, model.predict(images, verbose=0), atol=1e-5)
