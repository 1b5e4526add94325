"""Batch normalization through TensorFlow's fused kernel: Keras' own values, gradients and
moving statistics, also as `SuperNet` runs it (`stateless_call` inside a graph)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_tf.ops import ReLUConvBN, batch_norm
from nasnet_tf.tf_batch_norm import FusedBatchNormalization

pytestmark = pytest.mark.tf_only


def _pair(shape):
    ours = FusedBatchNormalization(momentum=0.9, epsilon=1e-3)
    keras_own = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    rng = np.random.default_rng(0)
    for layer in (ours, keras_own):
        layer.build(shape)
    for a, b in zip(ours.weights, keras_own.weights):
        value = rng.uniform(0.5, 1.5, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return ours, keras_own


def _run(layer, x, training):
    @tf.function
    def step(x, trainable, state):
        with tf.GradientTape() as tape:
            tape.watch([x, trainable])
            y, new_state = layer.stateless_call(trainable, state, x, training=training)
            # Weights that vary over positions: a per-channel sum of a normalized output
            # has no gradient with respect to the input (both sides would compare noise).
            loss = tf.reduce_sum(y * tf.constant(np.random.default_rng(3).normal(
                size=y.shape).astype("float32")))
        return y, new_state, tape.gradient(loss, [x, trainable])

    return step(x, [v.value for v in layer.trainable_variables],
                [v.value for v in layer.non_trainable_variables])


@pytest.mark.parametrize("shape", [(4, 5, 5, 3), (1, 1, 1, 2), (3, 2, 2, 6)])
@pytest.mark.parametrize("training", [True, False])
def test_values_gradients_and_statistics_are_keras_own(shape, training):
    ours, keras_own = _pair(shape)
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, shape).astype("float32"))
    for a, b in zip(tf.nest.flatten(_run(ours, x, training)),
                    tf.nest.flatten(_run(keras_own, x, training))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    # Called as a layer (eagerly), it updates its own moving statistics as Keras' does.
    ours(x, training=training)
    keras_own(x, training=training)
    for a, b in zip(ours.non_trainable_variables, keras_own.non_trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_inputs_the_kernel_does_not_take_use_keras_own_path():
    ours, keras_own = _pair((4, 3))
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 3)).astype("float32"))
    np.testing.assert_allclose(ours(x, training=True), keras_own(x, training=True), rtol=1e-6)


def test_ops_take_it_where_asked_and_keep_their_config():
    op = ReLUConvBN(4, 1, fused_batch_norm=True)
    op.build((1, 4, 4, 2))
    assert any(isinstance(layer, FusedBatchNormalization) for layer in op.chain)
    assert ReLUConvBN.from_config(op.get_config()).fused_batch_norm
    assert type(batch_norm("bn")) is keras.layers.BatchNormalization
    assert type(batch_norm("bn", synchronized=True, fused=True)) is not FusedBatchNormalization
