"""`FlatUpdates`: a Keras optimizer's update applied to one flat vector of all the variables.

Keras optimizers update variable by variable: every variable costs a few dozen operations
(the update itself, and the learning rate, bias corrections and casts recomputed for each),
in every traced step. A super-network holds thousands of small variables (every candidate op
of every edge), so its optimizer update is a large part of the graph TensorFlow traces and
JAX compiles, and of the time each step spends launching small operations.

Where the optimizer's update is elementwise (the same formula for every entry of every
variable, with shared scalars), updating the concatenation of all the variables is the same
computation: `FlatUpdates` gathers the gradients and the variables into one vector each, runs
the wrapped optimizer on that vector, and writes the result back. `flat_updates_apply` tells
whether an optimizer qualifies: per-variable clipping (`clipnorm`), weight decay with
exclusions, moving averages of the weights (`use_ema`) and gradient accumulation do not, nor
do optimizers outside `ELEMENTWISE`.
"""

import keras
import numpy as np
from keras import ops

__all__ = ["ELEMENTWISE", "FlatUpdates", "flat_updates_apply", "flatten", "split"]

ELEMENTWISE = (
    keras.optimizers.SGD,
    keras.optimizers.Adam,
    keras.optimizers.AdamW,
    keras.optimizers.Adamax,
    keras.optimizers.Nadam,
    keras.optimizers.RMSprop,
    keras.optimizers.Adagrad,
    keras.optimizers.Adadelta,
    keras.optimizers.Lion,
)
"""Optimizer classes whose update is elementwise (subclasses are not assumed to be)."""


def flatten(tensors):
    """One flat vector of `tensors`, in order (empty when there are none).

    Example:

    >>> tuple(flatten([np.ones((2, 3)), np.ones(4)]).shape)
    (10,)
    """
    if not tensors:
        return ops.zeros((0,), "float32")
    return ops.concatenate([ops.reshape(t, (-1,)) for t in tensors], axis=0)


def split(flat, sizes):
    """`flat` (a vector) cut into consecutive pieces of the static `sizes`, which sum to its
    length.

    `keras.ops.split` takes cut indices and, under TensorFlow, turns them back into sizes
    with about twenty graph operations per call; this is one `tf.split` there
    (`nasnet_tf.tf_split`), and `keras.ops.split` on the other backends, whose compilers
    fold the constants.

    Example:

    >>> [tuple(p.shape) for p in split(np.arange(6.0), [1, 2, 3])]
    [(1,), (2,), (3,)]
    """
    sizes = [int(n) for n in sizes]
    if sum(sizes) != flat.shape[0]:
        raise ValueError(
            f"The sizes must add up to the vector's length {flat.shape[0]}. "
            f"Received: sizes={sizes}")
    if len(sizes) <= 1:
        return [flat] if sizes else []
    if keras.backend.backend() == "tensorflow":
        from nasnet_tf.tf_split import split_sizes

        return split_sizes(flat, sizes)
    return ops.split(flat, np.cumsum(sizes[:-1]).tolist(), axis=0)


def _not_flat_because(optimizer):
    """Why `optimizer`'s update is not the same over one flat vector, or None."""
    if type(optimizer) not in ELEMENTWISE:
        return (f"{type(optimizer).__name__} is not one of the elementwise optimizers "
                f"{[c.__name__ for c in ELEMENTWISE]}")
    if optimizer.clipnorm is not None:
        return "`clipnorm` clips each variable's gradient by its own norm"
    if optimizer.use_ema:
        return "`use_ema` keeps a moving average of each variable"
    if optimizer.gradient_accumulation_steps:
        return "`gradient_accumulation_steps` accumulates per variable"
    if optimizer.weight_decay and (
        getattr(optimizer, "_exclude_from_weight_decay", None)
        or getattr(optimizer, "_exclude_from_weight_decay_pattern", None) is not None
    ):
        return "weight decay excludes some variables"
    if optimizer.built:
        return "the optimizer is built already (its state is per variable)"
    return None


def flat_updates_apply(optimizer):
    """Whether `FlatUpdates(optimizer)` computes exactly what `optimizer` computes.

    Example:

    >>> flat_updates_apply(keras.optimizers.Adam())
    True
    >>> flat_updates_apply(keras.optimizers.Adam(clipnorm=1.0))
    False
    """
    return _not_flat_because(optimizer) is None


@keras.saving.register_keras_serializable(package="nasnet_tf")
class FlatUpdates(keras.optimizers.Optimizer):
    """Applies an elementwise optimizer to the concatenation of all the variables.

    The wrapped optimizer's state (e.g. Adam's moments) is one vector per slot instead of
    one variable per model variable; its arithmetic is unchanged, so the updated variables
    are those the wrapped optimizer would give (up to float rounding). The learning rate and
    the step counter are the wrapped optimizer's.

    Args:
        inner_optimizer: a `keras.optimizers.Optimizer` for which `flat_updates_apply` is
            True, not yet built.
        name: the wrapper's name.

    Example:

    >>> w = keras.Variable(np.ones((2, 3), "float32"))
    >>> b = keras.Variable(np.zeros((3,), "float32"))
    >>> opt = FlatUpdates(keras.optimizers.SGD(learning_rate=0.5))
    >>> opt.apply([np.ones((2, 3), "float32"), np.ones((3,), "float32")], [w, b])
    >>> [float(keras.ops.convert_to_numpy(v)[0]) for v in (w[0], b)]
    [0.5, -0.5]
    """

    def __init__(self, inner_optimizer, name=None, **kwargs):
        if kwargs:
            raise ValueError(
                "FlatUpdates takes the wrapped optimizer and a name only; set other "
                f"arguments on the wrapped optimizer. Received: {sorted(kwargs)}"
            )
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise ValueError(
                "`inner_optimizer` must be a `keras.optimizers.Optimizer`. "
                f"Received: inner_optimizer={inner_optimizer!r}"
            )
        reason = _not_flat_because(inner_optimizer)
        if reason is not None:
            raise ValueError(
                "`inner_optimizer`'s update is not the same over one flat vector: "
                f"{reason}. Received: inner_optimizer={inner_optimizer!r}"
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer

    def build(self, var_list):
        var_list = list(var_list)
        dtypes = {keras.backend.standardize_dtype(v.dtype) for v in var_list}
        if len(dtypes) > 1:
            raise ValueError(
                "FlatUpdates needs variables of one dtype. Received the dtypes "
                f"{sorted(dtypes)}"
            )
        self._shapes = tuple(tuple(v.shape) for v in var_list)
        self._sizes = tuple(int(np.prod(shape)) for shape in self._shapes)
        self._flat = self.add_variable(
            shape=(sum(self._sizes),), dtype=dtypes.pop() if dtypes else None,
            name="flat_variables",
        )
        self.inner_optimizer.build([self._flat])
        super().build(var_list)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already "
                    "be built on a list of variables. Call `optimizer.build(variables)`."
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
        grads = list(grads)
        if len(grads) != len(self._trainable_variables) or len(trainable_variables) != len(
                self._trainable_variables):
            raise ValueError(
                f"FlatUpdates was built on {len(self._trainable_variables)} variables. "
                f"Received {len(grads)} gradients for {len(trainable_variables)} variables."
            )
        dtype = self._flat.dtype
        flat_grad = flatten([ops.zeros(shape, dtype) if g is None else ops.cast(g, dtype)
                             for g, shape in zip(grads, self._shapes)])
        self._flat.assign(flatten(trainable_variables))
        self.inner_optimizer.apply([flat_grad], [self._flat])
        pieces = split(self._flat, self._sizes)
        for variable, piece, shape in zip(trainable_variables, pieces, self._shapes):
            variable.assign(ops.reshape(piece, shape))

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
