"""A switch whose gradient recomputes its branch: the values and gradients of
`tf.switch_case`, inside a while loop as `SuperNet` runs it, without the intermediates plumbing."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_tf import Block, CellGenotype, Genotype
from nasnet_tf.supernet import SuperNet
from nasnet_tf.tf_switch import recomputing_switch, switch

pytestmark = pytest.mark.tf_only


def _branches(state):
    # Every branch reads a different part of the operands, and returns a second output that
    # is not differentiated (as batch norm's new moving statistics are).
    return [
        lambda x, w: (tf.nn.relu(x) * w[0], state + 1.0),
        lambda x, w: (tf.sin(x) * w[1] + w[0] * w[1], state * 2.0),
        lambda x, w: (x, state),
    ]


def _loop(switch):
    @tf.function
    def run(x, w, indices):
        with tf.GradientTape() as tape:
            tape.watch([x, w])

            def body(k, carry):
                y, state = carry
                out, new = switch(indices[k], _branches(state), [y, w])
                return out, new

            y, state = keras.ops.fori_loop(0, 3, body, (x, tf.zeros(())))
            loss = tf.reduce_sum(y * tf.range(1.0, 5.0))
        return y, state, tape.gradient(loss, [x, w])

    return run


def _plain(index, branches, operands):
    return tf.switch_case(index, [lambda b=b: b(*operands) for b in branches])


@pytest.mark.parametrize("indices", [[0, 1, 2], [1, 1, 0], [2, 0, 1]])
def test_values_and_gradients_are_the_switch_own_inside_a_loop(indices):
    x = tf.constant([0.5, -1.0, 2.0, 0.25])
    w = tf.constant([1.5, -0.5])
    indices = tf.constant(indices)
    ours, plain = _loop(recomputing_switch)(x, w, indices), _loop(_plain)(x, w, indices)
    for a, b in zip(tf.nest.flatten(ours), tf.nest.flatten(plain)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_a_supernet_step_carries_no_intermediates_out_of_its_switches():
    """The point of the recomputing switch: TensorFlow's switch gradient wraps each branch's
    intermediates in optionals and pushes them onto the loop's accumulators; the
    super-network's training step builds none of that for its edges' switches."""
    from tensorflow.python.framework import ops as tf_ops  # counts graph ops

    keras.utils.set_random_seed(0)
    net = SuperNet(num_blocks=2, ops=["identity", "conv_1x1", "sep_conv_3x3"],
                   combine_ops=["add"], num_cells=1, penultimate_filters=48,
                   input_shape=(8, 8, 3), classes=4)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "conv_1x1", "add")] * 2)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    created = collections.Counter()
    original = tf_ops.Operation.from_node_def.__func__

    def counting(cls, node_def, graph, *args, **kwargs):
        if "while" in graph.name:  # the graphs of the loops over a cell's blocks
            created[node_def.op] += 1
        return original(cls, node_def, graph, *args, **kwargs)

    tf_ops.Operation.from_node_def = classmethod(counting)
    try:
        net.train_on_batch(net.inputs_for(x, Genotype(cell, cell)), np.arange(4))
    finally:
        tf_ops.Operation.from_node_def = classmethod(original)
    assert created["Conv2D"] > 0, created  # the loops' branches were traced
    assert created["OptionalFromValue"] == 0, created


@pytest.mark.parametrize("size, filters, lowered", [(8, 48, False), (32, 96, True)])
def test_small_cells_run_their_switches_as_function_calls(size, filters, lowered):
    """Lowered into `Switch`/`Merge`, a switch's every branch is instantiated in the step's
    graph and stepped through (dead) on every step: `digits13`'s step 113-139 -> 97-98 ms,
    its first step 28-30 -> 22-24 s when they are not (2-core CPU). Where states are larger
    (here 32x32x4 down to 8x8x16 values), lowered switches let oneDNN's kernels run their
    ops: 292 -> 150 ms a step for `cifar5`."""
    from tensorflow.python.framework import ops as tf_ops  # collects graph ops

    keras.utils.set_random_seed(0)
    net = SuperNet(num_blocks=2, ops=["identity", "conv_1x1", "sep_conv_3x3"],
                   combine_ops=["add", "concat"], num_cells=1, penultimate_filters=filters,
                   input_shape=(size, size, 3), classes=4)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "conv_1x1", "add")] * 2)
    x = np.random.default_rng(0).normal(size=(4, size, size, 3)).astype("float32")
    cases = []
    original = tf_ops.Operation.from_node_def.__func__

    def collecting(cls, node_def, *args, **kwargs):
        op = original(cls, node_def, *args, **kwargs)
        if node_def.op in ("Case", "StatelessCase"):
            cases.append(op)
        return op

    tf_ops.Operation.from_node_def = classmethod(collecting)
    try:
        inputs = net.inputs_for(x, Genotype(cell, cell))
        net.train_on_batch(inputs, np.arange(4))
        net.predict_on_batch(inputs)
    finally:
        tf_ops.Operation.from_node_def = classmethod(original)
    # The edges' switches and their gradients' (in the loops), the cells' others and theirs.
    assert len(cases) > 20, len(cases)
    assert {op.get_attr("_lower_using_switch_merge") for op in cases} == {lowered}


def test_switch_selects_its_branch_traced_and_eagerly():
    branches = [lambda: tf.constant(1.0), lambda: tf.constant(2.0), lambda: tf.constant(3.0)]
    traced = tf.function(lambda i: switch(i, branches))
    for i in range(3):
        assert float(traced(tf.constant(i))) == float(switch(tf.constant(i), branches)) == i + 1
    graph = traced.get_concrete_function(tf.TensorSpec([], tf.int32)).graph
    (case,) = [op for op in graph.get_operations() if op.type in ("Case", "StatelessCase")]
    assert case.get_attr("_lower_using_switch_merge") is False
    graph = tf.function(lambda i: switch(i, branches, lowered=True)).get_concrete_function(
        tf.TensorSpec([], tf.int32)).graph
    (case,) = [op for op in graph.get_operations() if op.type in ("Case", "StatelessCase")]
    assert case.get_attr("_lower_using_switch_merge") is True
