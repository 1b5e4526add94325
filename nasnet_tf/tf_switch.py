"""Switches that run as function calls, and one whose gradient recomputes the selected
branch (TensorFlow only).

Before it runs a function, TensorFlow lowers each `tf.switch_case` into `Switch` and `Merge`
operations inlined in the enclosing graph: every step then steps through every branch's
operations (as dead tensors), and the first step instantiates them all in one graph. A
super-network's switches hold every candidate op of an edge and its step runs one of them,
so `switch` can keep its `Case` operation a function call (TensorFlow's own option, which
`tf.switch_case` does not expose): a step runs the selected branch's function alone. The
price: TensorFlow's oneDNN rewrite (its CPU kernels for convolutions, pooling and batch
norm) reaches only the operations of the step's own graph, lowered branches included, not
those of functions a `Case` calls. On a 2-core CPU, at batch 64, calls are faster where
feature maps are small (8x8 digits, 13 ops: 113-139 -> 97-98 ms a step, first step 28-30 ->
22-24 s) and twice slower from about 1,000 values per example on (32x32, 4 filters: 150 ->
292 ms); `SuperNet` chooses per cell.

TensorFlow differentiates a `tf.switch_case` by rewriting it: each branch also returns every
intermediate tensor its gradient needs, wrapped in an optional (every other branch returns an
empty one in its place), and inside a while loop each of those is also pushed onto an
accumulator per iteration and popped in the gradient loop. In `nasnet_tf.SuperNet`, whose
edges switch over every candidate op inside the loop over a cell's blocks, that plumbing is
most of the graph a training step builds, and building it (Python, about 0.7 ms per graph
operation) is most of the first step.

`recomputing_switch` runs such a switch without that rewrite: its gradient is a second switch
whose selected branch runs its forward again under a tape and returns the gradient of its
first output with respect to the operands. The values are those of `keras.ops.switch`; a
step computes the selected branch's forward twice. Under JAX, XLA compiles what runs and
`keras.ops.switch` is used.
"""

import tensorflow as tf
from tensorflow.python.ops import cond_v2  # `lower_using_switch_merge`, which the API hides

__all__ = ["recomputing_switch", "switch"]


def switch(index, branches, lowered=False):
    """`tf.switch_case(index, branches)`, by default kept a function call when traced (not
    lowered into `Switch`/`Merge` operations): a step runs the selected branch's operations
    only.

    Args:
        index: a scalar int32 tensor (out of range selects the last branch).
        branches: a list of callables without arguments, returning the same structure.
        lowered: lowered as `tf.switch_case` is (see the module docstring for when it pays).

    Returns:
        The selected branch's outputs.

    Example:

    >>> pick = tf.function(lambda i: switch(i, [lambda: tf.constant(1.0),
    ...                                          lambda: tf.constant(2.0)]))
    >>> float(pick(tf.constant(1)))
    2.0
    """
    branches = list(branches)
    if tf.executing_eagerly() and not hasattr(index, "graph"):
        return tf.switch_case(index, branches)
    return cond_v2.indexed_case(index, branches, lower_using_switch_merge=bool(lowered))


def recomputing_switch(index, branches, operands, lowered=False):
    """`branches[index](*operands)`, differentiated with respect to `operands` by recomputing.

    Each branch returns a tensor, or a tuple whose first tensor is differentiated and whose
    others are not (e.g. batch norm's new moving statistics). Every operand must be a
    floating-point tensor; the branches must read no variable. `lowered` is `switch`'s, for
    both the forward switch and its gradient's.

    Example:

    >>> x = tf.constant([1.0, 2.0])
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = recomputing_switch(tf.constant(1), [lambda v: v * 2.0, lambda v: v * v], [x])
    >>> tape.gradient(y, x).numpy().tolist()
    [2.0, 4.0]
    """
    operands = list(operands)

    def first(outputs):
        return outputs[0] if isinstance(outputs, (tuple, list)) else outputs

    @tf.custom_gradient
    def run(*xs):
        outputs = switch(index, [lambda b=b: b(*xs) for b in branches], lowered)

        def grad(*upstream):
            dy = upstream[0]

            def vjp(branch):
                def run_branch():
                    with tf.GradientTape() as tape:
                        tape.watch(xs)
                        y = first(branch(*xs))
                    return tape.gradient(y, xs, output_gradients=dy,
                                         unconnected_gradients=tf.UnconnectedGradients.ZERO)

                return run_branch

            grads = switch(index, [vjp(b) for b in branches], lowered)
            return list(grads)

        return outputs, grad

    return run(*operands)
