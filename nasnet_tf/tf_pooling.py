"""Max pooling whose gradient oneDNN runs inside a `switch` branch (TensorFlow only).

TensorFlow's oneDNN graph pass replaces `MaxPoolGrad` with its fast kernel only where the
forward `MaxPool` feeds it directly in the same graph. Inside a `keras.ops.switch` branch of
`nasnet_tf.SuperNet`, the gradient runs in the branch's gradient function and reads the forward
output through the switch, so TensorFlow falls back to its reference kernel: about 10x slower
on a CPU (a `(64, 32, 32, 32)` pool's gradient: 42 ms against 4 ms), which was a third of the
super-network's training step. `RecomputingMaxPooling2D` computes its gradient from a pool
recomputed beside it, which the pass does rewrite; the values are those of
`keras.layers.MaxPooling2D`. Under JAX, XLA compiles the gradient with the forward and this
module is not used.
"""

import keras
import tensorflow as tf
from keras import layers

__all__ = ["RecomputingMaxPooling2D"]


_GRADIENT = "NasnetRecomputingMaxPool"


@tf.RegisterGradient(_GRADIENT)
def _recomputing_grad(op, upstream):
    """`MaxPool`'s gradient from a pool recomputed beside it (see the module docstring)."""
    x = op.inputs[0]
    attrs = {name: op.get_attr(name) for name in ("ksize", "strides", "padding")}
    y = tf.raw_ops.MaxPool(input=x, **attrs)
    return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=upstream, **attrs)


def _max_pool(x, ksize, strides, padding):
    if tf.executing_eagerly():
        return tf.nn.max_pool2d(x, ksize, strides, padding)
    # The gradient is swapped for the op's type in the graph, so TensorFlow's own machinery
    # reaches the forward input (a `tf.custom_gradient` closure over it breaks the gradient
    # of a `switch` inside a while loop: `cond_v2._resolve_grad_inputs`).
    with tf.compat.v1.get_default_graph().gradient_override_map({"MaxPool": _GRADIENT}):
        return tf.nn.max_pool2d(x, ksize, strides, padding)


@keras.saving.register_keras_serializable(package="nasnet_tf")
class RecomputingMaxPooling2D(layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` (channels last) whose gradient recomputes the pool.

    Example:

    >>> pool = RecomputingMaxPooling2D(3, strides=1, padding="same")
    >>> tuple(pool(tf.ones((1, 4, 4, 2))).shape)
    (1, 4, 4, 2)
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        return _max_pool(inputs, list(self.pool_size), list(self.strides), self.padding.upper())
