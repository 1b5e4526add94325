import keras
import numpy as np
import pytest
from layer_checks import check_layer

from nasnet_tf import OP_NAMES, OPS, get_op
from nasnet_tf.ops import FactorizedReduction, PoolOp, correct_pad


def _x(shape, seed=0):
    return keras.ops.convert_to_tensor(
        np.random.RandomState(seed).uniform(-1, 1, shape).astype("float32")
    )


def test_registry_has_the_13_nasnet_ops():
    assert len(OPS) == 13
    assert set(OP_NAMES) == {
        "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
        "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
        "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
    }


@pytest.mark.parametrize("name", OP_NAMES)
@pytest.mark.parametrize("strides, channels", [(1, 8), (1, 6), (2, 6)])
def test_every_op_shapes_and_round_trips(name, strides, channels, tmp_path):
    # 7x7 input: odd sizes exercise the stride-2 padding; 6 channels exercise the projection.
    op = get_op(name, 8, strides, layer_name=f"{name}_{strides}_{channels}")
    size = 4 if strides == 2 else 7
    check_layer(op, _x((2, 7, 7, channels)), tmp_path, expected_shape=(2, size, size, 8))


def test_pool_and_identity_project_only_when_channels_differ():
    same = get_op("avg_pool_3x3", 8)
    same(_x((1, 5, 5, 8)))
    assert not same.weights
    other = get_op("avg_pool_3x3", 8)
    other(_x((1, 5, 5, 6)))
    assert [w.shape for w in other.trainable_weights][0] == (1, 1, 6, 8)
    identity = get_op("identity", 8)
    x = _x((1, 5, 5, 8))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(identity(x)),
                                  keras.ops.convert_to_numpy(x))


def test_stride_two_pooling_pads_with_zeros_as_keras_nasnet():
    # Keras' NASNet pads explicitly then pools "valid"; on all-negative inputs a max pool
    # therefore sees the zero padding at the borders.
    x = -keras.ops.ones((1, 4, 4, 2))
    out = keras.ops.convert_to_numpy(PoolOp(2, "max", 3, strides=2)(x))
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 1, 1, 0] == 0.0 and out[0, 0, 0, 0] == -1.0
    assert correct_pad((4, 5), 3) == ((0, 1), (1, 1))


def test_factorized_reduction_uses_both_pixel_phases():
    x = np.zeros((1, 4, 4, 2), "float32")
    x[0, 1, 1, :] = 1.0  # a pixel only the shifted path sees
    op = FactorizedReduction(4)
    op(x)
    op.conv_1.set_weights([np.ones((1, 1, 2, 2), "float32")])
    op.conv_2.set_weights([np.full((1, 1, 2, 2), 2.0, "float32")])
    out = keras.ops.convert_to_numpy(op(x, training=False))
    # BN at init is identity up to epsilon; path 2 (channels 2..3) carries the shifted pixel.
    assert np.allclose(out[0, :, :, :2], 0.0)
    assert out[0, 0, 0, 2] > 3.9


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: get_op("conv_5x5", 8), r"Unknown op 'conv_5x5'"),
        (lambda: get_op("conv_3x3", 8, strides=3), r"strides=3"),
        (lambda: get_op("conv_3x3", 0), r"filters=0"),
        (lambda: FactorizedReduction(7), r"must be even.*filters=7"),
        (lambda: PoolOp(8, "min"), r"pool_type='min'"),
    ],
)
def test_bad_op_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_the_registry_holds_the_genotype_op_names_in_order():
    # `nasnet_tf.genotype` spells the names without importing Keras; the registry must agree.
    assert tuple(OPS) == OP_NAMES


def _batch_norms(layer):
    """The BatchNormalizations under `layer`, through its public attributes (`chain`, `bn`)."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [layer]
    found = []
    for key, value in vars(layer).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not key.startswith("_") and isinstance(item, keras.layers.Layer):
                found.extend(_batch_norms(item))
    return found


def test_sync_batch_norm_reaches_every_batch_norm_of_every_op():
    # Stride 2 and 6 -> 8 channels: identity's factorized reduction and the pools' projections.
    norms = 0
    for name in OP_NAMES:
        op = get_op(name, 8, 2, sync_batch_norm=True, bn_momentum=0.9)
        op(_x((1, 4, 4, 6)))
        assert op.get_config()["sync_batch_norm"] is True
        for bn in _batch_norms(op):
            norms += 1
            assert bn.momentum == 0.9
            # Keras accepts `synchronized=True` under TensorFlow only; JAX batches are global.
            assert bn.synchronized == (keras.backend.backend() == "tensorflow")
    assert norms == 16  # one per op, two in each of the three separable convs
