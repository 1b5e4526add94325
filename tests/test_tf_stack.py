"""A stack of states as a tensor list: the values and gradients of a stacked tensor's scatter
and slices, inside a while loop as `SuperNet` runs it, without copying the stack."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_tf import Block, CellGenotype, Genotype
from nasnet_tf.supernet import SuperNet
from nasnet_tf.tf_stack import read, stack, write_and_read

pytestmark = pytest.mark.tf_only


def _plain_write_and_read(stack, slot, value, indices):
    stack = tf.tensor_scatter_nd_update(stack, tf.reshape(slot, (1, 1)), value[None])
    return stack, [stack[i] for i in indices]


def _plain_read(stack, indices, like):
    return [stack[i] for i in indices]


def _loop(stack, write_and_read, read):
    """Three iterations, each writing the previous one's output and reading two entries of the
    stack and one of a fixed stack, as a super-network cell's blocks do."""

    @tf.function
    def run(states, inputs, w, sources):
        with tf.GradientTape() as tape:
            tape.watch([states, inputs, w])

            def body(k, carry):
                states, pending, inputs = carry
                states, (a, b) = write_and_read(states, tf.maximum(k - 1, 0), pending,
                                                [sources[k, 0], sources[k, 1]])
                (c,) = read(inputs, [sources[k, 2]], a)
                return states, tf.sin(a) * w[k] + b * b + c, inputs

            carry = (stack(tf.unstack(states)), states[0], stack(tf.unstack(inputs)))
            written, last, _ = keras.ops.fori_loop(0, 3, body, carry)
            entries = read(written, range(4), last)
            loss = (tf.reduce_sum(tf.stack(entries) * tf.reshape(tf.range(1.0, 49.0), (4, 3, 4)))
                    + tf.reduce_sum(last * last))
        return entries, last, tape.gradient(loss, [states, inputs, w])

    return run


@pytest.mark.parametrize("sources", [
    [[0, 1, 0], [0, 0, 1], [1, 2, 1]],  # reads of the slot just written, and twice one entry
    [[3, 2, 1], [1, 3, 0], [2, 2, 0]],
])
def test_values_and_gradients_are_a_scatter_and_slices_inside_a_loop(sources):
    rng = np.random.default_rng(0)
    states = tf.constant(rng.normal(size=(4, 3, 4)), "float32")
    fixed = tf.constant(rng.normal(size=(2, 3, 4)), "float32")
    w = tf.constant([1.5, -0.5, 2.0])
    sources = tf.constant(sources)
    ours = _loop(stack, write_and_read, read)(states, fixed, w, sources)
    plain = _loop(tf.stack, _plain_write_and_read, _plain_read)(states, fixed, w, sources)
    for a, b in zip(tf.nest.flatten(ours), tf.nest.flatten(plain)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size, filters, listed", [(32, 96, True), (8, 48, False)])
def test_a_large_cell_step_copies_no_stack_of_states(size, filters, listed):
    """A large cell's loop over blocks writes no stack of states (`TensorScatterUpdate`), and
    its gradient pads none (`Pad`) nor adds any up (`AddN`): its states are a tensor list,
    whose entries are written and read. A small cell's (8x8) are one tensor: there the launch
    of the list's operations costs more than the copies (`digits13`'s step 80 -> 99 ms)."""
    from tensorflow.python.framework import ops as tf_ops  # collects graph ops

    keras.utils.set_random_seed(0)
    net = SuperNet(num_blocks=3, ops=["identity", "sep_conv_3x3", "max_pool_3x3"],
                   combine_ops=["add"], num_cells=1, penultimate_filters=filters,
                   input_shape=(size, size, 3), classes=3)
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity"),
                         Block(2, 2, "identity", "max_pool_3x3"),
                         Block(3, 0, "max_pool_3x3", "sep_conv_3x3")])
    x = np.zeros((4, size, size, 3), "float32")
    created = collections.Counter()
    original = tf_ops.Operation.from_node_def.__func__

    def collecting(cls, node_def, graph, *args, **kwargs):
        op = original(cls, node_def, graph, *args, **kwargs)
        if "while" in graph.name:  # the graphs of the loops over a cell's blocks
            ranks = {output.shape.rank for output in op.outputs}
            created[(node_def.op, max(ranks, default=None, key=lambda r: r or 0))] += 1
        return op

    tf_ops.Operation.from_node_def = classmethod(collecting)
    try:
        net.train_on_batch(net.inputs_for(x, Genotype(cell, cell)), np.zeros(4, "int32"))
    finally:
        tf_ops.Operation.from_node_def = classmethod(original)
    stacks = [key for key in created if key[1] == 5]
    if listed:
        assert not stacks, created
        assert created[("TensorListSetItem", 0)] > 0, created  # the loops were traced
    else:
        assert ("TensorScatterUpdate", 5) in stacks, created
        assert created[("TensorListSetItem", 0)] == 0, created
