"""`FlatUpdates`: an elementwise optimizer over one flat vector gives its own updates."""

import keras
import numpy as np
import pytest

from nasnet_tf.flat_updates import FlatUpdates, flat_updates_apply, split

SHAPES = [(3, 3, 4, 8), (8,), (5, 2), ()]

OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-2),
    "sgd_nesterov_decay": lambda: keras.optimizers.SGD(
        0.05, momentum=0.9, nesterov=True, weight_decay=2e-4),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-2, momentum=0.5),
    "adamw_global_clip": lambda: keras.optimizers.AdamW(1e-2, global_clipnorm=0.5),
}


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_same_updates_as_the_wrapped_optimizer(name):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=s).astype("float32") for s in SHAPES]
    plain = [keras.Variable(x) for x in start]
    flat = [keras.Variable(x) for x in start]
    reference, wrapped = OPTIMIZERS[name](), FlatUpdates(OPTIMIZERS[name]())
    reference.build(plain)
    wrapped.build(flat)
    for _ in range(3):
        grads = [rng.normal(size=s).astype("float32") for s in SHAPES]
        reference.apply(grads, plain)
        wrapped.apply(grads, flat)
    for a, b in zip(_values(plain), _values(flat)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert int(keras.ops.convert_to_numpy(wrapped.iterations)) == 3
    # The weights moved: the comparison is not between two untouched copies.
    assert not np.allclose(_values(flat)[0], start[0])


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="stateless_apply is JAX's path")
def test_stateless_apply_as_the_jax_trainer_calls_it():
    rng = np.random.default_rng(1)
    start = [rng.normal(size=s).astype("float32") for s in SHAPES]
    plain = [keras.Variable(x) for x in start]
    flat = [keras.Variable(x) for x in start]
    reference, wrapped = keras.optimizers.Adam(1e-2), FlatUpdates(keras.optimizers.Adam(1e-2))
    reference.build(plain)
    wrapped.build(flat)
    grads = [rng.normal(size=s).astype("float32") for s in SHAPES]
    reference.apply(grads, plain)
    new_trainable, new_optimizer = wrapped.stateless_apply(
        [v.value for v in wrapped.variables], grads, [v.value for v in flat])
    for a, b in zip(_values(plain), new_trainable):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-6, atol=1e-7)
    assert len(new_optimizer) == len(wrapped.variables)
    # Stateless: the variables themselves are untouched.
    np.testing.assert_array_equal(_values(flat)[0], start[0])


@pytest.mark.parametrize("optimizer, message", [
    (lambda: keras.optimizers.Adam(clipnorm=1.0), "clipnorm"),
    (lambda: keras.optimizers.SGD(use_ema=True), "use_ema"),
    (lambda: keras.optimizers.Lamb(), "not one of the elementwise optimizers"),
    (lambda: keras.optimizers.SGD(gradient_accumulation_steps=2),
     "gradient_accumulation_steps"),
])
def test_refuses_an_optimizer_whose_update_is_per_variable(optimizer, message):
    optimizer = optimizer()
    assert not flat_updates_apply(optimizer)
    with pytest.raises(ValueError, match=message):
        FlatUpdates(optimizer)


def test_refuses_weight_decay_with_exclusions_and_a_built_optimizer():
    decay = keras.optimizers.AdamW(weight_decay=1e-3)
    assert flat_updates_apply(decay)
    decay.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(ValueError, match="excludes some variables"):
        FlatUpdates(decay)
    built = keras.optimizers.Adam()
    built.build([keras.Variable(np.zeros(2, "float32"))])
    with pytest.raises(ValueError, match="built already"):
        FlatUpdates(built)
    with pytest.raises(ValueError, match="inner_optimizer"):
        FlatUpdates("adam")


def test_learning_rate_config_and_a_mismatched_call():
    wrapped = FlatUpdates(keras.optimizers.SGD(0.1, momentum=0.9), name="flat")
    wrapped.learning_rate = 0.25
    assert float(keras.ops.convert_to_numpy(wrapped.inner_optimizer.learning_rate)) == 0.25
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(wrapped))
    assert isinstance(clone, FlatUpdates) and clone.name == "flat"
    assert clone.inner_optimizer.get_config() == wrapped.inner_optimizer.get_config()
    variables = [keras.Variable(np.zeros(3, "float32")), keras.Variable(np.zeros(2, "float32"))]
    wrapped.build(variables)
    with pytest.raises(ValueError, match="built on 2 variables"):
        wrapped.apply([np.ones(3, "float32")])


def test_each_variable_is_held_once():
    variables = [keras.Variable(np.zeros((2, 3), "float32")),
                 keras.Variable(np.zeros(4, "float32"))]
    wrapped = FlatUpdates(keras.optimizers.Adam())
    wrapped.build(variables)
    paths = [v.path for v in wrapped.variables]
    assert len(paths) == len(set(paths)), paths
    # The wrapper's iteration and learning rate, the flat vector; Adam's own iteration and
    # learning rate, and its two moments of the flat vector.
    assert sorted(tuple(v.shape) for v in wrapped.variables if len(v.shape)) == [(10,)] * 3


def test_split_cuts_a_flat_vector_into_its_pieces():
    x = np.arange(10.0, dtype="float32")
    pieces = split(keras.ops.convert_to_tensor(x), [4, 1, 5])
    np.testing.assert_array_equal(
        np.concatenate([keras.ops.convert_to_numpy(p) for p in pieces]), x)
    assert [tuple(p.shape) for p in pieces] == [(4,), (1,), (5,)]
    assert [tuple(p.shape) for p in split(x, [10])] == [(10,)]
    assert split(np.zeros(0, "float32"), []) == []
    with pytest.raises(ValueError, match=r"length 10.*sizes=\[4, 5\]"):
        split(x, [4, 5])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow graphs")
def test_split_is_one_tensorflow_operation_and_its_sizes():
    # `SuperNet` splits a flat vector in every branch of every edge: keras' `ops.split` (cut
    # indices turned back into sizes) made about twenty graph operations of each.
    import tensorflow as tf

    def f(x):
        return split(x, [4, 1, 5])

    graph = tf.function(f).get_concrete_function(tf.TensorSpec([10])).graph
    # Besides the input's placeholder and the outputs' identities: the split and its two
    # constants (sizes, axis).
    types = sorted(op.type for op in graph.get_operations()
                   if op.type not in ("Placeholder", "Identity"))
    assert types == ["Const", "Const", "SplitV"]
