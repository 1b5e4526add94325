"""Max pooling with a recomputed gradient: the values and gradients of Keras' own, in a branch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_tf.ops import PoolOp
from nasnet_tf.tf_pooling import RecomputingMaxPooling2D

pytestmark = pytest.mark.tf_only


@pytest.mark.parametrize("pool_size, strides, padding", [(3, 1, "same"), (3, 2, "valid"),
                                                          (5, 1, "same")])
def test_values_and_gradients_are_keras_own_inside_a_switch(pool_size, strides, padding):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32"))
    weights = tf.constant(np.random.default_rng(1).normal(
        size=keras.layers.MaxPooling2D(pool_size, strides, padding).compute_output_shape(
            x.shape)[1:]).astype("float32"))

    def step(pool):
        @tf.function
        def run(x, index):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.switch_case(index, [lambda: pool(x), lambda: -pool(x)])
                loss = tf.reduce_sum(y * weights)
            return y, tape.gradient(loss, x)

        return run

    ours = step(RecomputingMaxPooling2D(pool_size, strides, padding))
    keras_own = step(keras.layers.MaxPooling2D(pool_size, strides, padding))
    for index in (tf.constant(0), tf.constant(1)):
        (y, grad), (y_keras, grad_keras) = ours(x, index), keras_own(x, index)
        np.testing.assert_array_equal(y.numpy(), y_keras.numpy())
        # oneDNN and TensorFlow's own kernel sum overlapping windows in their own orders.
        np.testing.assert_allclose(grad.numpy(), grad_keras.numpy(), rtol=1e-6, atol=1e-6)


def test_pool_op_uses_it_for_max_pooling_when_asked_and_round_trips():
    def kinds(op):
        op.build((1, 8, 8, 6))
        return [type(layer).__name__ for layer in op.chain]

    assert kinds(PoolOp(4, "max", strides=2, recompute_gradient=True)) == [
        "ZeroPadding2D", "RecomputingMaxPooling2D", "ReLUConvBN"]
    assert kinds(PoolOp(4, "max", strides=2)) == ["ZeroPadding2D", "MaxPooling2D", "ReLUConvBN"]
    assert kinds(PoolOp(6, "avg", recompute_gradient=True)) == ["AveragePooling2D"]
    op = PoolOp(4, "max", recompute_gradient=True)
    assert PoolOp.from_config(op.get_config()).recompute_gradient


def test_the_super_network_max_pools_recompute_their_gradient():
    from nasnet_tf import Block, CellGenotype, Genotype
    from nasnet_tf.supernet import SuperCell, SuperNet

    net = SuperNet(num_blocks=2, ops=["max_pool_3x3", "avg_pool_3x3"], combine_ops=["add"],
                   num_cells=1, penultimate_filters=48, input_shape=(8, 8, 3), classes=2)
    # The op layers each block's slice of the weights runs through.
    templates = [t for layer in net.layers if isinstance(layer, SuperCell)
                 for t in layer._templates if t is not None]
    pools = [layer for t in templates for layer in t._flatten_layers(include_self=True)
             if isinstance(layer, keras.layers.MaxPooling2D)]
    assert pools and all(isinstance(layer, RecomputingMaxPooling2D) for layer in pools)
    # And its gradient is taken inside the switch inside the loop over the blocks.
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cell = CellGenotype([Block(0, 1, "max_pool_3x3", "max_pool_3x3"),
                         Block(2, 0, "max_pool_3x3", "avg_pool_3x3")])
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in net.trainable_weights]
    loss = net.train_on_batch(net.inputs_for(x, Genotype(cell, cell)), np.array([0, 1, 0, 1]))
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w) for w in net.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
