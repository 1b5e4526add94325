"""The NASNet training loss: label-smoothed cross-entropy on integer (or one-hot) labels."""

import keras
from keras import ops

__all__ = ["LabelSmoothingCrossentropy"]


@keras.saving.register_keras_serializable(package="nasnet_tf")
class LabelSmoothingCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing that takes integer labels (or one-hot).

    Keras' `CategoricalCrossentropy(label_smoothing=...)` needs one-hot labels; this loss
    one-hots integer labels first, so the same pipelines serve training and evaluation.

    Args:
        label_smoothing: in [0, 1]; targets become `(1 - s) * onehot + s / classes`.
        from_logits: whether predictions are logits rather than probabilities.

    Example:

    >>> import numpy as np
    >>> loss = LabelSmoothingCrossentropy(0.1)
    >>> round(float(loss(np.array([0]), np.array([[0.9, 0.1]]))), 4)
    0.2152
    """

    def __init__(self, label_smoothing=0.1, from_logits=False,
                 name="label_smoothing_crossentropy", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1]. Received: label_smoothing={label_smoothing}"
            )
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        if len(y_true.shape) < len(y_pred.shape) or (y_true.shape[-1] == 1 and classes != 1):
            labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
            y_true = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            ops.cast(y_true, y_pred.dtype), y_pred, from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, from_logits=self.from_logits)
        return config
