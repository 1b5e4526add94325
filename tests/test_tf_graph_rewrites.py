"""TensorFlow functions run without Grappler (on while they run, the caller's setting after),
and see the batch size as unknown."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_tf.tf_graph_rewrites import unknown_batch, without_graph_rewrites

OPTION = "disable_meta_optimizer"


def _option():
    return tf.config.optimizer.get_experimental_options().get(OPTION, False)


@pytest.fixture
def restore_options():
    before = tf.config.optimizer.get_experimental_options()
    yield
    tf.config.optimizer.set_experimental_options({OPTION: before.get(OPTION, False)})


def test_rewrites_are_off_during_the_call_only(restore_options):
    seen = []
    wrapped = without_graph_rewrites(lambda x: seen.append(_option()) or x + 1)
    assert not _option()
    assert wrapped(1) == 2
    assert seen == [True]
    assert not _option()
    assert without_graph_rewrites(wrapped) is wrapped
    assert without_graph_rewrites(None) is None


def test_an_error_inside_restores_the_setting(restore_options):
    def fails():
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        without_graph_rewrites(fails)()
    assert not _option()


def test_a_caller_who_turned_them_off_keeps_them_off(restore_options):
    tf.config.optimizer.set_experimental_options({OPTION: True})
    without_graph_rewrites(lambda: None)()
    assert _option()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="Grappler is TensorFlow's; XLA compiles JAX's functions")
def test_supernet_functions_run_without_rewrites(restore_options):
    from nasnet_tf.supernet import SuperNet

    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=(8, 8, 3), classes=3)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.zeros((2, 8, 8, 3), "float32")
    inputs = net.inputs_for(x, net_genotype(net))
    net.train_on_batch(inputs, np.zeros(2, "int32"))
    net.predict_on_batch(inputs)
    net.test_on_batch(inputs, np.zeros(2, "int32"))
    for function in (net.train_function, net.predict_function, net.test_function):
        assert getattr(function, "_without_graph_rewrites", False), function
    assert not _option()


def test_unknown_batch_hides_the_batch_size_inside_a_traced_function_only():
    x = tf.reshape(tf.range(6.0), (2, 3))
    assert unknown_batch(x) is x  # eager: as it is
    seen = []

    @tf.function
    def hide(x, y):
        hidden = unknown_batch({"x": x, "y": y, "none": None})
        seen.append((hidden["x"].shape.as_list(), hidden["y"].shape.as_list(), hidden["none"]))
        return hidden["x"] * 2.0, hidden["y"]

    doubled, y = hide(x, tf.constant(3.0))
    np.testing.assert_array_equal(doubled.numpy(), 2.0 * x.numpy())
    assert float(y) == 3.0
    assert seen == [([None, 3], [], None)]  # a scalar has no batch dimension to hide


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow's constant folding; XLA compiles JAX's functions")
def test_supernet_steps_are_traced_with_an_unknown_batch(monkeypatch):
    from nasnet_tf.supernet import SuperCell, SuperNet

    seen = []
    call = SuperCell.call

    def recording(self, inputs, training=None):
        seen.append((bool(training), inputs[0].shape[0]))
        return call(self, inputs, training=training)

    monkeypatch.setattr(SuperCell, "call", recording)
    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=(8, 8, 3), classes=3)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    inputs = net.inputs_for(np.zeros((2, 8, 8, 3), "float32"), net_genotype(net))
    seen.clear()
    net.train_on_batch(inputs, np.zeros(2, "int32"))
    net.predict_on_batch(inputs)
    assert {s for s in seen} == {(True, None), (False, None)}, seen


def net_genotype(net):
    from nasnet_tf import Block, CellGenotype, Genotype

    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity", "add")])
    return Genotype(cell, cell)
