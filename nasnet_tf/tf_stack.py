"""A stack of states as a TensorFlow tensor list: written and read without copying the stack,
gradient included (TensorFlow only).

Each block of a `nasnet_tf.SuperNet` cell writes its output into a stack of the cell's states
and reads its inputs from it, at indices known only when the step runs. As one tensor
(`keras.ops`), each write copies the stack, each read's gradient is a whole stack of zeros
holding one state (a `Pad`), and the gradients are summed stack by stack (an `AddN`): on a
2-core CPU, at 32x32 with 32 filters, about a fifth of the super-network's op time. A tensor list
holds one tensor per entry: a write replaces an entry, a read returns one, and their gradients
(TensorFlow's own) are lists holding the entries read. Under JAX, XLA updates buffers in place
and `keras.ops` is used.

Example:

>>> states = stack([tf.zeros((2,)), tf.ones((2,))])
>>> states, (a, b) = write_and_read(states, tf.constant(0), tf.fill((2,), 5.0),
...                                 [tf.constant(0), tf.constant(1)])
>>> a.numpy().tolist(), b.numpy().tolist()
([5.0, 5.0], [1.0, 1.0])
"""

import tensorflow as tf  # noqa: F401 (the examples)
from tensorflow.python.ops import list_ops  # tensor lists, which the API wraps in TensorArray

__all__ = ["read", "stack", "write_and_read"]


def stack(tensors):
    """A tensor list of `tensors` (of one shape and dtype), in order."""
    first = tensors[0]
    states = list_ops.tensor_list_reserve(_shape(first), len(tensors), first.dtype)
    for i, tensor in enumerate(tensors):
        states = list_ops.tensor_list_set_item(states, i, tensor)
    return states


def write_and_read(states, slot, value, indices):
    """`states` with `value` written at `slot`, and its entries at `indices` once written
    (each of the shape and dtype of `value`).

    Args:
        states: a tensor list (see `stack`).
        slot: a scalar int32 tensor.
        value: a tensor, the new entry.
        indices: a list of scalar int32 tensors.

    Returns:
        `(new_states, [new_states[i] for i in indices])`.
    """
    states = list_ops.tensor_list_set_item(states, slot, value)
    return states, read(states, indices, value)


def read(states, indices, like):
    """The entries of `states` at `indices`, each of the shape and dtype of `like`."""
    reads = []
    for index in indices:
        entry = list_ops.tensor_list_get_item(states, index, like.dtype,
                                              element_shape=_shape(like))
        entry.set_shape(like.shape)
        reads.append(entry)
    return reads


def _shape(tensor):
    return [-1 if d is None else d for d in tensor.shape]
