"""A separable convolution whose depthwise filter gradient is summed per kernel tap (JAX): the
values and gradients of JAX's own, and where `SuperNet` uses it."""

import keras
import numpy as np
import pytest

from nasnet_tf.ops import SeparableConvOp

jax_only = pytest.mark.skipif(keras.backend.backend() != "jax",
                              reason="nasnet_tf.jax_depthwise is JAX only")


@jax_only
@pytest.mark.parametrize("size, kernel, strides, padding", [
    (8, 3, 1, "same"), (7, 5, 2, "same"), (8, 5, 2, "same"), (9, 3, 2, "valid"),
    (6, 7, 1, "valid"),
])
def test_values_and_gradients_are_jax_own(size, kernel, strides, padding):
    import jax
    import jax.numpy as jnp

    from nasnet_tf.jax_depthwise import depthwise_conv

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, size, size, 4)), "float32")
    k = jnp.asarray(rng.normal(size=(kernel, kernel, 4, 1)), "float32")
    weights = jnp.asarray(rng.normal(size=(4,)), "float32")

    def loss(conv):
        return lambda x, k: jnp.sum(jnp.sin(conv(x, k) * weights))

    def own(x, k):
        return keras.ops.depthwise_conv(x, k, strides=strides, padding=padding)

    def ours(x, k):
        return depthwise_conv(x, k, strides, padding)

    np.testing.assert_allclose(ours(x, k), own(x, k), rtol=1e-6, atol=1e-6)
    for a, b in zip(jax.grad(loss(ours), (0, 1))(x, k), jax.grad(loss(own), (0, 1))(x, k)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@jax_only
@pytest.mark.parametrize("strides", [1, 2])
def test_the_layer_values_and_gradients_are_keras_own(strides):
    import jax
    import jax.numpy as jnp

    from nasnet_tf.jax_depthwise import SeparableConv2D

    ours = SeparableConv2D(6, 5, strides=strides, padding="same", use_bias=True)
    own = keras.layers.SeparableConv2D(6, 5, strides=strides, padding="same", use_bias=True)
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype("float32")
    ours.build(x.shape)
    own.build(x.shape)
    own.set_weights(ours.get_weights())

    def loss(layer):
        def run(weights, x):
            y, _ = layer.stateless_call(weights, [], x)
            return jnp.sum(jnp.sin(y))

        return run

    weights = [jnp.asarray(w) for w in ours.get_weights()]
    ours_grads = jax.grad(loss(ours), (0, 1))(weights, x)
    own_grads = jax.grad(loss(own), (0, 1))(weights, x)
    np.testing.assert_allclose(ours(x), own(x), rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(ours_grads), jax.tree_util.tree_leaves(own_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@jax_only
def test_a_depth_multiplier_is_refused_by_name():
    import jax.numpy as jnp

    from nasnet_tf.jax_depthwise import depthwise_conv

    with pytest.raises(ValueError, match=r"kernel.shape=\(3, 3, 2, 2\)"):
        depthwise_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)))


def test_the_op_uses_it_under_jax_on_a_cpu_and_keeps_its_config():
    op = SeparableConvOp(4, 3, strides=2, tap_depthwise_gradient=True)
    op.build((2, 8, 8, 3))
    convs = [layer for layer in op.chain if isinstance(layer, keras.layers.SeparableConv2D)]
    expected = keras.layers.SeparableConv2D
    if keras.backend.backend() == "jax":
        import jax

        if jax.default_backend() == "cpu":
            from nasnet_tf.jax_depthwise import SeparableConv2D as expected
    assert [type(layer) for layer in convs] == [expected, expected]
    plain = SeparableConvOp(4, 3, strides=2)
    plain.build((2, 8, 8, 3))
    plain_convs = [layer for layer in plain.chain
                   if isinstance(layer, keras.layers.SeparableConv2D)]
    assert [type(layer) for layer in plain_convs] == [keras.layers.SeparableConv2D] * 2
    # Same variables and values as the plain op.
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    plain.set_weights(op.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(op(x, training=False)),
                               keras.ops.convert_to_numpy(plain(x, training=False)), atol=1e-5)
    assert [w.path.split("/", 1)[1] for w in op.weights] == \
        [w.path.split("/", 1)[1] for w in plain.weights]
    config = op.get_config()
    assert config["tap_depthwise_gradient"] is True
    assert SeparableConvOp.from_config(config).tap_depthwise_gradient is True


@jax_only
def test_the_supernet_separable_convs_sum_their_filter_gradient_per_tap():
    import jax

    from nasnet_tf.jax_depthwise import SeparableConv2D
    from nasnet_tf.supernet import SuperCell, SuperNet

    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], combine_ops=["add"],
                   num_cells=1, penultimate_filters=48, input_shape=(8, 8, 3), classes=3)
    expected = SeparableConv2D if jax.default_backend() == "cpu" else keras.layers.SeparableConv2D
    found = {type(layer) for cell in net.layers if isinstance(cell, SuperCell)
             for template in cell._templates
             if isinstance(template, SeparableConvOp) for layer in template.chain
             if isinstance(layer, keras.layers.SeparableConv2D)}
    assert found == {expected}
