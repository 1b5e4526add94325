"""A vector cut into pieces of static sizes as one TensorFlow operation (TensorFlow only).

`keras.ops.split` takes cut indices, and its TensorFlow backend turns them back into sizes
with about twenty graph operations per call (a `diff`, slices and a concatenation).
`nasnet_tf.SuperNet` cuts its flat weights in every branch of every edge, so under TensorFlow
`nasnet_tf.flat_updates.split` calls `split_sizes`: one `SplitV` and its two constants.
Under JAX, XLA folds those constants and `keras.ops.split` is used.
"""

import tensorflow as tf

__all__ = ["split_sizes"]


def split_sizes(x, sizes):
    """`x` cut along its first axis into consecutive pieces of the Python ints `sizes`.

    Example:

    >>> [p.numpy().tolist() for p in split_sizes(tf.range(5), [2, 3])]
    [[0, 1], [2, 3, 4]]
    """
    return tf.split(x, list(sizes), axis=0)
