"""`build_compiled_state`: a compiled model's optimizer, loss and metric variables, created
before its first training step.

Under TensorFlow, Keras creates them while it traces the first step when no
`tf.distribute` strategy is set (it builds them ahead only under one), and a `tf.function`
that creates variables is traced twice: every `fit` of a new model paid its step's tracing
twice. On a 2-core CPU, a search child's first epoch (2 blocks, 8 px) took 7.1 s before and
5.0 s with them built first; `nasnet_tf.training.train`'s example (NASNet-A), 28 s and 19 s.
JAX's trainer builds them ahead itself; there the call only does earlier what it would do.
"""

import keras
import numpy as np
from keras import ops

__all__ = ["build_compiled_state", "label_row"]


def label_row(x=None, y=None):
    """One row of labels like those `fit(x, y)` trains on, or `None` where that is unknown.

    `y` arrays give their first row; a dataset `x` (`tf.data`, whose elements are
    `(images, labels[, weights])`) gives zeros of its labels' dtype and shape.
    """
    if y is not None:
        try:
            return keras.tree.map_structure(lambda v: np.asarray(v)[:1], y)
        except (TypeError, IndexError):
            return None
    spec = getattr(x, "element_spec", None)
    if not isinstance(spec, tuple) or len(spec) < 2:
        return None
    try:
        return keras.tree.map_structure(
            lambda s: np.zeros((1,) + tuple(s.shape[1:]), s.dtype.as_numpy_dtype), spec[1])
    except (AttributeError, TypeError, ValueError):
        return None


def _metrics_built(model):
    """Whether the compiled loss and metrics were built since the last `compile` (by this
    function or by a `fit`): a caller's `build_compiled_state` before `NASNet.fit`'s own is
    then free."""
    parts = [m for m in model.metrics if hasattr(m, "built")]  # Keras' CompileMetrics
    compiled_loss = getattr(model, "_compile_loss", None)  # Keras' CompileLoss
    if compiled_loss is not None:
        parts.append(compiled_loss)
    return bool(parts) and all(part.built for part in parts)


def build_compiled_state(model, y_row):
    """Creates `model`'s optimizer, compiled loss and compiled metric variables now.

    Call it after `compile` and before `fit`. The compiled metrics are built on one row of
    labels, `y_row` (see `label_row`), against a uniform prediction of the model's output
    shape; their state is reset after. Without `y_row` only the optimizer is built.

    Args:
        model: a compiled `keras.Model` whose (inference) output is one tensor.
        y_row: one row of labels, or `None`.

    Example:

    >>> inputs = keras.Input((4,))
    >>> model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> build_compiled_state(model, np.zeros((1,), "int32"))
    >>> model.optimizer.built, [len(metric.variables) for metric in model.metrics]
    (True, [2, 2])
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    if y_row is None or _metrics_built(model):
        return
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) == 1:
        spec = outputs[0]
    else:  # e.g. NASNet's auxiliary head, an output of training only: the inference output
        try:
            inputs = model.input
        except AttributeError:  # a model never called (a Sequential without inputs)
            return
        spec = model.compute_output_spec(inputs)
    if not hasattr(spec, "shape") or spec.shape[-1] is None:
        return  # several outputs: left to Keras
    width = int(spec.shape[-1])
    y_pred = ops.full((1,) + tuple(spec.shape[1:]), 1.0 / width, spec.dtype)
    row = keras.tree.map_structure(ops.convert_to_tensor, y_row)
    model.compute_loss(y=row, y_pred=y_pred, training=False)
    model.compute_metrics(None, row, y_pred)
    model.reset_metrics()
