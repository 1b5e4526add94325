"""The 13 NASNet operations as serializable Keras layers, in one registry keyed by name.

Every op maps a hidden state to `filters` channels at `ceil(size / strides)` resolution:

- conv ops are ReLU -> conv -> BN; separable convs are applied twice (stride on the first);
- pooling and identity keep channels, so where the input's channels differ from `filters` they
  append a 1x1 projection (ReLU -> 1x1 conv -> BN), as slim's `nasnet_utils` does;
- identity with stride 2 is a factorized reduction;
- stride-2 pooling pads explicitly (zeros, `imagenet_utils.correct_pad`) and pools `"valid"`, as
  `keras.applications.NASNet` does, so that Keras' NASNet weights give Keras' outputs.

Batch norm uses slim's momentum 0.9997 (settable: `bn_momentum`; short runs such as search
children need a lower one, or their moving statistics stay near their initial values) and
epsilon 1e-3. `sync_batch_norm=True` makes every batch norm synchronized under TensorFlow
(`keras.layers.BatchNormalization(synchronized=True)`: statistics over all replicas of a
`tf.distribute` strategy). Under JAX it changes nothing: Keras refuses `synchronized=True` there,
and a data-parallel JAX batch is one global (sharded) array whose statistics are global already.
`fused_batch_norm=True` runs every batch norm as TensorFlow's fused kernel (the same values up
to float rounding, and the same variables; `nasnet_tf.SuperNet`'s candidate ops use it, whose
first step traces hundreds of them); under JAX it changes nothing.
"""

import math

import keras
from keras import layers, ops

from nasnet_tf import validators
from nasnet_tf.genotype import OP_NAMES  # noqa: F401  (the names of OPS, re-exported)

BN_MOMENTUM = 0.9997
BN_EPSILON = 1e-3


def correct_pad(size, kernel_size):
    """Zero padding `((top, bottom), (left, right))` that a stride-2 `"valid"` window needs to
    give `ceil(size / 2)` outputs, exactly as `keras.applications.imagenet_utils.correct_pad`."""
    pads = []
    for n in size:
        adjust = 1 if n is None else 1 - n % 2
        correct = kernel_size // 2
        pads.append((correct - adjust, correct))
    return tuple(pads)


def _check_strides(strides):
    if strides not in (1, 2):
        raise ValueError(f"`strides` must be 1 or 2. Received: strides={strides}")


def _check_filters(filters, even=False):
    validators.positive_int(filters, "filters")
    if even and filters % 2:
        raise ValueError(
            f"`filters` must be even for a factorized reduction. Received: filters={filters}"
        )


def batch_norm(name, momentum=BN_MOMENTUM, synchronized=False, fused=False):
    """The NASNet batch norm: `momentum`, epsilon 1e-3, synchronized across the replicas of a
    `tf.distribute` strategy when `synchronized` (TensorFlow only; ignored under JAX), and
    TensorFlow's fused kernel when `fused` (`nasnet_tf.tf_batch_norm`: the same values and
    variables, fewer graph operations; ignored under JAX and when synchronized).

    Example:

    >>> batch_norm("bn", 0.9).momentum
    0.9
    """
    synchronized = bool(synchronized) and keras.backend.backend() == "tensorflow"
    cls = layers.BatchNormalization
    if fused and not synchronized and keras.backend.backend() == "tensorflow":
        from nasnet_tf.tf_batch_norm import FusedBatchNormalization as cls
    return cls(
        momentum=momentum, epsilon=BN_EPSILON, synchronized=synchronized, name=name
    )



class _Op(layers.Layer):
    """Base of the ops: a chain of sublayers, built explicitly in `build`."""

    def __init__(
        self, filters, strides=1, bn_momentum=BN_MOMENTUM, sync_batch_norm=False,
        fused_batch_norm=False, **kwargs
    ):
        super().__init__(**kwargs)
        _check_filters(filters)
        _check_strides(strides)
        self.filters = filters
        self.strides = strides
        self.bn_momentum = validators.momentum(bn_momentum)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.fused_batch_norm = bool(fused_batch_norm)

    def _bn(self, name):
        return batch_norm(name, self.bn_momentum, self.sync_batch_norm, self.fused_batch_norm)

    def _chain(self, input_shape):
        """Returns the ordered sublayers for `input_shape`. Subclasses implement it."""
        raise NotImplementedError

    def build(self, input_shape):
        self.chain = self._chain(input_shape)
        shape = input_shape
        for layer in self.chain:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.chain:
            x = layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else math.ceil(n / self.strides)

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "bn_momentum": self.bn_momentum,
                "sync_batch_norm": self.sync_batch_norm,
                "fused_batch_norm": self.fused_batch_norm,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nasnet_tf")
class ReLUConvBN(_Op):
    """ReLU -> Conv2D -> BatchNormalization.

    Args:
        filters: output channels.
        kernel_size: an int or a `(height, width)` pair.
        strides: 1 or 2.
        dilation_rate: dilation of the conv. With `strides=2` the conv runs at stride 1 and
            the result is subsampled (Keras convs refuse stride > 1 with dilation > 1).

    Example:

    >>> op = ReLUConvBN(8, 3, strides=2)
    >>> tuple(op(keras.ops.ones((1, 9, 9, 4))).shape)
    (1, 5, 5, 8)
    """

    def __init__(self, filters, kernel_size=1, strides=1, dilation_rate=1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (
            kernel_size, kernel_size)
        self.dilation_rate = dilation_rate

    def _chain(self, input_shape):
        dilated = self.dilation_rate > 1
        chain = [
            layers.ReLU(name="relu"),
            layers.Conv2D(
                self.filters,
                self.kernel_size,
                strides=1 if dilated else self.strides,
                dilation_rate=self.dilation_rate,
                padding="same",
                use_bias=False,
                kernel_initializer="he_normal",
                name="conv",
            ),
        ]
        if dilated and self.strides > 1:
            chain.append(layers.AveragePooling2D(1, strides=self.strides, name="subsample"))
        chain.append(self._bn("bn"))
        return chain

    def get_config(self):
        config = super().get_config()
        config.update(
            {"kernel_size": list(self.kernel_size), "dilation_rate": self.dilation_rate}
        )
        return config


class _KernelOp(_Op):
    """Base of the ops with one square `kernel_size` (an int) besides the `_Op` arguments."""

    def __init__(self, filters, kernel_size=3, strides=1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = kernel_size

    def get_config(self):
        config = super().get_config()
        config["kernel_size"] = self.kernel_size
        return config


@keras.saving.register_keras_serializable(package="nasnet_tf")
class FactorizedConv(_KernelOp):
    """ReLU -> 1xk conv -> kx1 conv -> BatchNormalization (the `1x3 then 3x1` family).

    Example:

    >>> tuple(FactorizedConv(8, 7)(keras.ops.ones((1, 8, 8, 4))).shape)
    (1, 8, 8, 8)
    """

    def _chain(self, input_shape):
        k, s = self.kernel_size, self.strides
        conv = dict(padding="same", use_bias=False, kernel_initializer="he_normal")
        return [
            layers.ReLU(name="relu"),
            layers.Conv2D(self.filters, (1, k), strides=(1, s), name=f"conv_1x{k}", **conv),
            layers.Conv2D(self.filters, (k, 1), strides=(s, 1), name=f"conv_{k}x1", **conv),
            self._bn("bn"),
        ]


@keras.saving.register_keras_serializable(package="nasnet_tf")
class SeparableConvOp(_KernelOp):
    """Two rounds of ReLU -> SeparableConv2D -> BatchNormalization, stride on the first.

    Sublayers are named as in `keras.applications.NASNet`'s `_separable_conv_block`
    (`separable_conv_1`, `separable_conv_1_bn`, `separable_conv_2`, `separable_conv_2_bn`).

    `tap_depthwise_gradient=True` makes the separable convs, under JAX on a CPU, sum their
    depthwise filter's gradient per kernel tap and run their pointwise conv as a matrix
    product: the same values up to float rounding, where XLA's CPU backend runs the default
    gradients inside a `keras.ops.switch` branch, as in `nasnet_tf.SuperNet`, many times
    slower (the depthwise one 8x at 12 channels, 30x at 48; see `nasnet_tf.jax_depthwise`).
    Other backends and devices ignore it.

    Example:

    >>> tuple(SeparableConvOp(8, 5, strides=2)(keras.ops.ones((1, 8, 8, 4))).shape)
    (1, 4, 4, 8)
    """

    def __init__(self, filters, kernel_size=3, strides=1, tap_depthwise_gradient=False,
                 **kwargs):
        super().__init__(filters, kernel_size, strides, **kwargs)
        self.tap_depthwise_gradient = bool(tap_depthwise_gradient)

    def _conv_class(self):
        if self.tap_depthwise_gradient and keras.backend.backend() == "jax":
            import jax

            if jax.default_backend() == "cpu":
                from nasnet_tf.jax_depthwise import SeparableConv2D

                return SeparableConv2D
        return layers.SeparableConv2D

    def _chain(self, input_shape):
        k, conv_cls = self.kernel_size, self._conv_class()
        return [
            layers.ReLU(name="relu_1"),
            conv_cls(
                self.filters, k, strides=self.strides, padding="same", use_bias=False,
                name="separable_conv_1",
            ),
            self._bn("separable_conv_1_bn"),
            layers.ReLU(name="relu_2"),
            conv_cls(self.filters, k, padding="same", use_bias=False, name="separable_conv_2"),
            self._bn("separable_conv_2_bn"),
        ]

    def get_config(self):
        config = super().get_config()
        config["tap_depthwise_gradient"] = self.tap_depthwise_gradient
        return config


def slice_sizes(x):
    """`x`'s shape as `keras.ops.slice` sizes: -1 (to the end) where a dimension is unknown."""
    return [-1 if n is None else n for n in x.shape]


def _crop_top_left(x):
    """`x` without its first row and column (`Cropping2D(((1, 0), (1, 0)))` as a slice, whose
    gradient under TensorFlow is a pad, not the far slower `StridedSliceGrad`)."""
    sizes = slice_sizes(x)
    for axis in (1, 2):
        if sizes[axis] != -1:
            sizes[axis] -= 1
    return ops.slice(x, [0, 1, 1, 0], sizes)


@keras.saving.register_keras_serializable(package="nasnet_tf")
class FactorizedReduction(_Op):
    """Halves the resolution without losing pixels: ReLU, then two stride-2 1x1 convs of
    `filters / 2` on the input and on the input shifted by one pixel, concatenated, then BN.

    This is `keras.applications.NASNet`'s `_adjust_block` reduction path (and slim's
    `factorized_reduction`).

    Example:

    >>> tuple(FactorizedReduction(8)(keras.ops.ones((1, 8, 8, 4))).shape)
    (1, 4, 4, 8)
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(filters, strides, **kwargs)
        _check_filters(filters, even=True)
        if strides != 2:
            raise ValueError(
                f"A factorized reduction has `strides=2` only. Received: strides={strides}"
            )

    def build(self, input_shape):
        half = self.filters // 2
        conv = dict(padding="same", use_bias=False, kernel_initializer="he_normal")
        self.relu = layers.ReLU(name="relu")
        self.pool_1 = layers.AveragePooling2D(1, strides=2, padding="valid", name="avg_pool_1")
        self.conv_1 = layers.Conv2D(half, 1, name="conv_1", **conv)
        self.pad = layers.ZeroPadding2D(((0, 1), (0, 1)), name="shift_pad")
        self.pool_2 = layers.AveragePooling2D(1, strides=2, padding="valid", name="avg_pool_2")
        self.conv_2 = layers.Conv2D(half, 1, name="conv_2", **conv)
        self.concat = layers.Concatenate(name="concat")
        self.bn = self._bn("bn")
        shape = self.pool_1.compute_output_shape(input_shape)
        self.conv_1.build(shape)
        self.conv_2.build(shape)
        # Every sublayer built here, so that a model holding this one is built whole (Keras'
        # trainers otherwise trace the whole model symbolically to build the rest).
        self.pad.build(input_shape)
        self.concat.build([shape[:-1] + (half,)] * 2)
        self.bn.build(shape[:-1] + (self.filters,))

    def call(self, inputs, training=None):
        x = self.relu(inputs)
        a = self.conv_1(self.pool_1(x))
        b = self.conv_2(self.pool_2(_crop_top_left(self.pad(x))))
        return self.bn(self.concat([a, b]), training=training)


def _projection(op, input_shape):
    """A 1x1 ReLU-conv-BN when the input's channels differ from `op.filters`, else nothing."""
    if input_shape[-1] == op.filters:
        return []
    return [
        ReLUConvBN(op.filters, 1, bn_momentum=op.bn_momentum,
                   sync_batch_norm=op.sync_batch_norm, fused_batch_norm=op.fused_batch_norm,
                   name="projection")
    ]


@keras.saving.register_keras_serializable(package="nasnet_tf")
class PoolOp(_Op):
    """Average or max pooling (stride 1 `"same"`; stride 2 zero-padded as Keras' NASNet), then
    a 1x1 projection where the input's channels differ from `filters`.

    `recompute_gradient=True` makes max pooling compute its gradient from a pool recomputed
    beside it: the same values, and under TensorFlow oneDNN's fast kernel where the op runs
    inside a `keras.ops.switch` branch, as in `nasnet_tf.SuperNet` (see
    `nasnet_tf.tf_pooling`). Other backends and average pooling ignore it.

    Example:

    >>> tuple(PoolOp(4, "max", 3, strides=2)(keras.ops.ones((1, 8, 8, 4))).shape)
    (1, 4, 4, 4)
    """

    def __init__(self, filters, pool_type="avg", pool_size=3, strides=1,
                 recompute_gradient=False, **kwargs):
        super().__init__(filters, strides, **kwargs)
        if pool_type not in ("avg", "max"):
            raise ValueError(
                f"`pool_type` must be 'avg' or 'max'. Received: pool_type={pool_type!r}"
            )
        self.pool_type = pool_type
        self.pool_size = pool_size
        self.recompute_gradient = bool(recompute_gradient)

    def _pool_class(self):
        if self.pool_type == "avg":
            return layers.AveragePooling2D
        if self.recompute_gradient and keras.backend.backend() == "tensorflow":
            from nasnet_tf.tf_pooling import RecomputingMaxPooling2D

            return RecomputingMaxPooling2D
        return layers.MaxPooling2D

    def _chain(self, input_shape):
        pool_cls = self._pool_class()
        chain = []
        if self.strides == 1:
            chain.append(pool_cls(self.pool_size, strides=1, padding="same", name="pool"))
        else:
            pads = correct_pad(input_shape[1:3], self.pool_size)
            chain.append(layers.ZeroPadding2D(pads, name="pad"))
            chain.append(pool_cls(self.pool_size, strides=self.strides, padding="valid",
                                  name="pool"))
        return chain + _projection(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_type": self.pool_type, "pool_size": self.pool_size,
                       "recompute_gradient": self.recompute_gradient})
        return config


@keras.saving.register_keras_serializable(package="nasnet_tf")
class IdentityOp(_Op):
    """Identity; a factorized reduction when `strides=2`, a 1x1 projection when the input's
    channels differ from `filters`. ScheduledDropPath never drops it.

    Example:

    >>> tuple(IdentityOp(4)(keras.ops.ones((1, 8, 8, 4))).shape)
    (1, 8, 8, 4)
    """

    def _chain(self, input_shape):
        if self.strides > 1:
            return [
                FactorizedReduction(self.filters, bn_momentum=self.bn_momentum,
                                    sync_batch_norm=self.sync_batch_norm,
                                    fused_batch_norm=self.fused_batch_norm, name="reduction")
            ]
        return _projection(self, input_shape)


def _factory(cls, **fixed):
    def make(filters, strides=1, name=None, bn_momentum=BN_MOMENTUM, sync_batch_norm=False):
        return cls(filters, strides=strides, bn_momentum=bn_momentum,
                   sync_batch_norm=sync_batch_norm, name=name, **fixed)

    make.op_class = cls
    make.fixed = fixed
    return make


OPS = {
    "identity": _factory(IdentityOp),
    "conv_1x3_3x1": _factory(FactorizedConv, kernel_size=3),
    "conv_1x7_7x1": _factory(FactorizedConv, kernel_size=7),
    "dil_conv_3x3": _factory(ReLUConvBN, kernel_size=3, dilation_rate=2),
    "avg_pool_3x3": _factory(PoolOp, pool_type="avg", pool_size=3),
    "max_pool_3x3": _factory(PoolOp, pool_type="max", pool_size=3),
    "max_pool_5x5": _factory(PoolOp, pool_type="max", pool_size=5),
    "max_pool_7x7": _factory(PoolOp, pool_type="max", pool_size=7),
    "conv_1x1": _factory(ReLUConvBN, kernel_size=1),
    "conv_3x3": _factory(ReLUConvBN, kernel_size=3),
    "sep_conv_3x3": _factory(SeparableConvOp, kernel_size=3),
    "sep_conv_5x5": _factory(SeparableConvOp, kernel_size=5),
    "sep_conv_7x7": _factory(SeparableConvOp, kernel_size=7),
}
"""The NASNet op registry: name -> `factory(filters, strides=1, name=None, bn_momentum=0.9997,
sync_batch_norm=False)` returning a layer."""



def get_op(name, filters, strides=1, layer_name=None, bn_momentum=BN_MOMENTUM,
           sync_batch_norm=False):
    """Makes the op `name` from the registry.

    Example:

    >>> get_op("sep_conv_3x3", 16).kernel_size
    3
    """
    if name not in OPS:
        raise ValueError(f"Unknown op {name!r}. Accepted ops: {sorted(OPS)}")
    return OPS[name](filters, strides=strides, name=layer_name, bn_momentum=bn_momentum,
                     sync_batch_norm=sync_batch_norm)


__all__ = [
    "OPS",
    "OP_NAMES",
    "get_op",
    "ReLUConvBN",
    "FactorizedConv",
    "SeparableConvOp",
    "FactorizedReduction",
    "PoolOp",
    "IdentityOp",
    "correct_pad",
    "batch_norm",
]
