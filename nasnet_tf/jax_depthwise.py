"""A separable convolution whose depthwise filter gradient is summed per kernel tap (JAX only).

JAX differentiates a depthwise convolution's filter by a convolution grouped over the batch,
which XLA's CPU backend rewrites into a dense `C x C` convolution. Outside control flow it runs
that one fused and fast; inside a `lax.switch` branch, as `nasnet_tf.SuperNet` runs its
candidate ops, it runs it with a slow generic kernel: 59 -> 474 ms at 12 channels and 342 ms
-> 11.2 s at 48 (batch 64, 32x32, 5x5; `benchmarks/jax_switch_conv_probe.py`), so that a
super-network at NASNet's search width did not finish its first step in 15 minutes.

`depthwise_conv` computes the same convolution, and its filter gradient as one product and
sum over the batch and positions per kernel tap (`k * k` reductions, which XLA fuses; 382 ms
at 48 channels inside a switch). Its input gradient is JAX's own. `SeparableConv2D` is
`keras.layers.SeparableConv2D` (the same variables and values) through it, with its
pointwise (1x1) convolution as a matrix product over the channels: inside a switch, XLA's
CPU backend also runs a 1x1 convolution's filter gradient slowly (96 -> 32 channels at
32x32, batch 64: 1,286 against 374 ms outside), a matrix product's not.
"""

import jax
import keras
from keras import ops

__all__ = ["SeparableConv2D", "depthwise_conv"]


def depthwise_conv(inputs, kernel, strides=1, padding="valid"):
    """`keras.ops.depthwise_conv` (channels last, no dilation, a depth multiplier of 1) whose
    gradient with respect to `kernel` is summed per kernel tap.

    Example:

    >>> import jax.numpy as jnp
    >>> x, k = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 1))
    >>> grad = jax.grad(lambda k: depthwise_conv(x, k, 1, "same").sum())(k)
    >>> grad[:, :, 0, 0].tolist()
    [[9.0, 12.0, 9.0], [12.0, 16.0, 12.0], [9.0, 12.0, 9.0]]
    """
    inputs, kernel = ops.convert_to_tensor(inputs), ops.convert_to_tensor(kernel)
    if kernel.shape[-1] != 1:
        raise ValueError(
            "`depthwise_conv` takes a depth multiplier of 1 (a kernel of shape "
            f"(kh, kw, channels, 1)). Received: kernel.shape={tuple(kernel.shape)}"
        )
    strides = (strides, strides) if isinstance(strides, int) else tuple(strides)

    def forward(x, k):
        return ops.depthwise_conv(x, k, strides=strides, padding=padding)

    @jax.custom_vjp
    def conv(x, k):
        return forward(x, k)

    def conv_forward(x, k):
        return forward(x, k), (x, k)

    def conv_backward(residuals, dy):
        x, k = residuals
        _, pull = jax.vjp(lambda x: forward(x, k), x)
        return pull(dy)[0], _kernel_gradient(x, dy, k.shape, strides, padding)

    conv.defvjp(conv_forward, conv_backward)
    return conv(inputs, kernel)


def _kernel_gradient(x, dy, kernel_shape, strides, padding):
    """`d loss / d kernel[i, j, c, 0] = sum over n, h, w of x_padded[n, h * sh + i, w * sw + j,
    c] * dy[n, h, w, c]`, one fused product and sum per tap `(i, j)`."""
    kh, kw = kernel_shape[:2]
    pads = jax.lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding.upper())
    padded = jax.numpy.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    n, out_h, out_w, c = dy.shape
    sh, sw = strides
    rows = []
    for i in range(kh):
        row = []
        for j in range(kw):
            window = jax.lax.slice(
                padded, (0, i, j, 0), (n, i + (out_h - 1) * sh + 1, j + (out_w - 1) * sw + 1, c),
                (1, sh, sw, 1),
            )
            row.append(jax.numpy.sum(window * dy, axis=(0, 1, 2)))
        rows.append(jax.numpy.stack(row))
    return jax.numpy.stack(rows)[:, :, :, None].astype(x.dtype)


@keras.saving.register_keras_serializable(package="nasnet_tf")
class SeparableConv2D(keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` whose depthwise filter gradient is summed per kernel tap
    (`depthwise_conv`) and whose pointwise convolution is a matrix product: the same
    variables and values. Channels last, no dilation, a depth multiplier of 1.

    Example:

    >>> layer = SeparableConv2D(4, 3, padding="same", use_bias=False)
    >>> tuple(layer(keras.ops.ones((1, 8, 8, 2))).shape)
    (1, 8, 8, 4)
    """

    def call(self, inputs):
        if (self.data_format != "channels_last" or self.depth_multiplier != 1
                or tuple(self.dilation_rate) != (1, 1)):
            return super().call(inputs)
        x = depthwise_conv(inputs, self.depthwise_kernel, self.strides, self.padding)
        outputs = ops.matmul(x, ops.reshape(self.pointwise_kernel, (-1, self.filters)))
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs
