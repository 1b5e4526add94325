"""One check for every layer and model, as keras-hub's TestCase does: config -> JSON ->
`from_config` round trip, symbolic and eager calls, a `.keras` save/load with equal outputs."""

import json

import keras
import numpy as np


def outputs_equal(a, b, atol=1e-6):
    a = keras.ops.convert_to_numpy(a)
    b = keras.ops.convert_to_numpy(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def check_layer(layer, inputs, tmp_path, expected_shape=None):
    """Runs the shared checks on `layer` (built by calling it on `inputs`)."""
    out = layer(inputs, training=False)
    shapes = [i.shape for i in inputs] if isinstance(inputs, list) else inputs.shape
    if expected_shape is not None:
        assert tuple(out.shape) == tuple(expected_shape)
    assert tuple(layer.compute_output_shape(shapes)) == tuple(out.shape)

    # Config survives JSON and rebuilds an equal layer; with the same weights, equal outputs.
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    clone(inputs)
    clone.set_weights(layer.get_weights())
    outputs_equal(clone(inputs, training=False), out)
    assert clone.get_config() == layer.get_config()

    # Symbolic call.
    sym = (
        [keras.Input(batch_shape=i.shape) for i in inputs]
        if isinstance(inputs, list)
        else keras.Input(batch_shape=inputs.shape)
    )
    model = keras.Model(sym, layer(sym))
    assert tuple(model.output_shape[1:]) == tuple(out.shape[1:])

    # .keras save / load with equal outputs.
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    outputs_equal(loaded(inputs, training=False), out)
    return out
