"""Running a compiled Keras function without TensorFlow's graph rewrites (Grappler).

TensorFlow rewrites a `tf.function`'s graph (Grappler: constant folding, arithmetic and
layout rewrites, op fusion) when the function is first run. For `nasnet_tf.SuperNet` that
graph holds every candidate op of every edge, mostly inside `switch` branches that a step
runs one of, and the rewrites cost about a third of its first training step (5 ops, B=2 on a
2-core CPU: 44 -> 33 s) for no measurable change in its step time.

TensorFlow keys a function's instantiation by the options it runs under, so the rewrites
must stay off on every call, not only the first: `without_graph_rewrites` turns them off
around each call and restores the caller's setting after it. The setting is
`tf.config.optimizer`'s, read by the calling thread; other threads keep the options they
last ran with. TensorFlow only: under JAX, XLA compiles what runs.
"""

import contextlib
import functools

import tensorflow as tf

__all__ = ["without_graph_rewrites"]

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
