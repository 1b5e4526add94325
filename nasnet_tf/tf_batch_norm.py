"""Batch normalization as TensorFlow's fused kernel (TensorFlow only).

`keras.layers.BatchNormalization` computes a batch's moments and the normalization from a
dozen graph operations, and its gradient from a few dozen more; TensorFlow's fused kernel
(`FusedBatchNormV3`) is one operation forward and one backward. Where a graph holds hundreds
of batch normalizations that a step mostly does not run, as the switch branches of
`nasnet_tf.SuperNet` do, building those operations is a large part of tracing the first
step. `FusedBatchNormalization` computes what Keras' layer computes (up to float rounding),
with the same variables and the same moving-statistics update (the batch's biased variance,
as Keras' moments give it). Under JAX, XLA compiles what runs and Keras' layer is used.
"""

import keras
import tensorflow as tf
from keras import layers

__all__ = ["FusedBatchNormalization"]


@keras.saving.register_keras_serializable(package="nasnet_tf")
class FusedBatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` through TensorFlow's fused kernel, for float32
    channels-last 4-D inputs with scale and center (other inputs: Keras' own path).

    Example:

    >>> bn = FusedBatchNormalization(momentum=0.9, epsilon=1e-3)
    >>> x = tf.reshape(tf.range(16, dtype="float32"), (2, 2, 2, 2))
    >>> [round(float(v), 3) for v in bn(x, training=True)[0, 0, 0]]
    [-1.527, -1.527]
    >>> [round(float(v), 2) for v in bn.moving_mean.numpy()]
    [0.7, 0.8]
    """

    def _fusable(self, inputs, mask):
        return (mask is None and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and inputs.dtype == tf.float32 and self.scale and self.center
                and not self.renorm and not self.synchronized)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        gamma = tf.convert_to_tensor(self.gamma)
        beta = tf.convert_to_tensor(self.beta)
        moving_mean = tf.convert_to_tensor(self.moving_mean)
        moving_variance = tf.convert_to_tensor(self.moving_variance)
        if not (training and self.trainable):
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=moving_mean, variance=moving_variance,
                epsilon=self.epsilon, is_training=False,
            )
            return y
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, is_training=True
        )
        # The kernel returns the batch's unbiased variance (n / (n - 1) times the one it
        # normalizes with; 0 for n = 1); Keras' moving variance averages the biased one.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * ((n - 1.0) / n)
        m = self.momentum
        self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(moving_variance * m + variance * (1.0 - m))
        return y
