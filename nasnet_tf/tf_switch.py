"""A `switch` whose gradient recomputes the selected branch (TensorFlow only).

TensorFlow differentiates a `tf.switch_case` by rewriting it: each branch also returns every
intermediate tensor its gradient needs, wrapped in an optional (every other branch returns an
empty one in its place), and inside a while loop each of those is also pushed onto an
accumulator per iteration and popped in the gradient loop. In `nasnet_tf.SuperNet`, whose
edges switch over every candidate op inside the loop over a cell's blocks, that plumbing is
most of the graph a training step builds, and building it (Python, about 0.7 ms per graph
operation) is most of the first step.

`recomputing_switch` runs the switch without that rewrite: its gradient is a second switch
whose selected branch runs its forward again under a tape and returns the gradient of its
first output with respect to the operands. The values are those of `keras.ops.switch`; a
step computes the selected branch's forward twice. Under JAX, XLA compiles what runs and
`keras.ops.switch` is used.
"""

import tensorflow as tf

__all__ = ["recomputing_switch"]


def recomputing_switch(index, branches, operands):
    """`branches[index](*operands)`, differentiated with respect to `operands` by recomputing.

    Each branch returns a tensor, or a tuple whose first tensor is differentiated and whose
    others are not (e.g. batch norm's new moving statistics). Every operand must be a
    floating-point tensor; the branches must read no variable.

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
        outputs = tf.switch_case(index, [lambda b=b: b(*xs) for b in branches])

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

            grads = tf.switch_case(index, [vjp(b) for b in branches])
            return list(grads)

        return outputs, grad

    return run(*operands)
