"""Running a compiled Keras function without TensorFlow's graph rewrites.

TensorFlow rewrites a `tf.function`'s graph (Grappler: constant folding, arithmetic and
layout rewrites, op fusion) when the function is first run. For `nasnet_tf.SuperNet` that
graph holds every candidate op of every edge, mostly inside `switch` branches that a step
runs one of, and the rewrites cost about a third of its first training step (5 ops, B=2 on a
2-core CPU: 44 -> 33 s) for no measurable change in its step time.

TensorFlow keys a function's instantiation by the options it runs under, so the rewrites
must stay off on every call, not only the first: `without_graph_rewrites` turns them off
around each call and restores the caller's setting after it. The setting is
`tf.config.optimizer`'s, read by the calling thread; other threads keep the options they
last ran with.

TensorFlow also folds constants when it instantiates a function (its classic graph
optimizer, which Grappler's switch does not turn off). In a super-network's gradient every
switch branch gives a zero gradient to each input it does not read; where the batch size is
static, those zeros are constants that folding writes into the graph, one per branch (0.6 of
the 4.8 GB the 5-op space's first step held at F=32 on a 2-core CPU). `unknown_batch` hides
the batch size from the graph, so the zeros stay operations a step runs only in the branch
it takes.

TensorFlow only: under JAX, XLA compiles what runs.
"""

import contextlib
import functools

import tensorflow as tf

__all__ = ["unknown_batch", "without_graph_rewrites"]

_OPTION = "disable_meta_optimizer"


@contextlib.contextmanager
def _rewrites_off():
    before = tf.config.optimizer.get_experimental_options().get(_OPTION, False)
    if before:
        yield
        return
    tf.config.optimizer.set_experimental_options({_OPTION: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({_OPTION: before})


def without_graph_rewrites(function):
    """`function` (e.g. a Keras model's `train_function`), run with Grappler off.

    Args:
        function: a callable that runs `tf.function`s; `None` is returned as is.

    Returns:
        The wrapped callable (wrapping twice wraps once).

    Example:

    >>> import tensorflow as tf
    >>> square = without_graph_rewrites(tf.function(lambda x: x * x))
    >>> float(square(tf.constant(3.0)))
    9.0
    """
    if function is None or getattr(function, "_without_graph_rewrites", False):
        return function

    @functools.wraps(function)
    def run(*args, **kwargs):
        with _rewrites_off():
            return function(*args, **kwargs)

    run._without_graph_rewrites = True
    return run


def unknown_batch(tensors):
    """`tensors` (a nested structure) with the batch dimension unknown to a traced graph.

    Inside a `tf.function` each tensor passes through `PlaceholderWithDefault` with its first
    dimension set to `None` (the values are unchanged); run eagerly, `tensors` are returned
    as they are.

    Args:
        tensors: a nested structure of tensors (and `None`s).

    Returns:
        The same structure.

    Example:

    >>> import tensorflow as tf
    >>> @tf.function
    ... def double(x):
    ...     y = unknown_batch(x)
    ...     print(y.shape)  # at tracing
    ...     return 2 * y
    >>> float(double(tf.ones((4, 3)))[0, 0])
    (None, 3)
    2.0
    """
    if tf.executing_eagerly():
        return tensors

    def hide(t):
        if t is None or not isinstance(t, tf.Tensor) or t.shape.rank in (None, 0):
            return t
        return tf.compat.v1.placeholder_with_default(t, [None] + t.shape.as_list()[1:])

    return tf.nest.map_structure(hide, tensors)
