"""The first training step is traced once: `train` and the `train` estimator create the
optimizer's and the compiled metrics' variables before it (`nasnet_tf.compiled_state`)."""

import keras
import numpy as np
import pytest

from nasnet_tf import Block, CellGenotype, Genotype, build_nasnet
from nasnet_tf.compiled_state import build_compiled_state, label_row
from nasnet_tf.training import TrainConfig, train
from tuners.estimation import Child, TrainAndEvaluate

CELL = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity")])
TINY = dict(preset="cifar", num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
            classes=4, auxiliary_head=False, drop_path_keep_prob=1.0)


def _data():
    rng = np.random.RandomState(0)
    return rng.uniform(-1, 1, (32, 8, 8, 3)).astype("float32"), np.arange(32) % 4


def _count_traces(model):
    """The list that gets one entry each time `model.train_step` runs in Python: once per
    trace of a compiled step."""
    calls, step = [], model.train_step

    def train_step(*args):
        calls.append(1)
        return step(*args)

    model.train_step = train_step
    return calls


def test_train_traces_its_first_step_once():
    model = build_nasnet(Genotype(CELL, CELL), **TINY)
    calls = _count_traces(model)
    config = TrainConfig(epochs=1, batch_size=8, steps_per_epoch=2, verbose=0,
                         tensorboard=False)
    history = train(model, _data(), config)
    assert len(history.history["loss"]) == 1
    assert len(calls) == 1


def test_a_nasnet_s_own_fit_traces_its_first_step_once():
    # A user's plain `model.fit`, without `train`: the model builds its compiled state itself.
    model = build_nasnet(Genotype(CELL, CELL), **TINY)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    calls = _count_traces(model)
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert history.history["accuracy"]
    assert len(calls) == 1


def test_the_train_estimator_traces_a_child_s_first_step_once(tmp_path):
    calls = []

    def build():
        model = build_nasnet(Genotype(CELL, CELL), **TINY)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        calls.append(_count_traces(model))
        return model

    x, y = _data()
    child = Child(Genotype(CELL, CELL), None, build, "0", str(tmp_path))
    history = TrainAndEvaluate(seed=0).estimate(child, x, y, batch_size=8, epochs=1,
                                                validation_data=(x, y), verbose=0)
    assert "val_accuracy" in history.history
    assert [len(c) for c in calls] == [1]


def test_label_row_of_arrays_of_a_dataset_and_of_neither():
    x, y = _data()
    assert label_row(x, y).tolist() == [0]
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices((x, y.astype("int32"))).batch(8)
    row = label_row(dataset)
    assert row.shape == (1,) and row.dtype == np.int32
    assert label_row(x) is None and label_row(None) is None


def test_build_compiled_state_picks_the_accuracy_the_labels_need():
    # One-hot labels: Keras' "accuracy" becomes categorical accuracy, as fit would choose.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    build_compiled_state(model, label_row(y=np.eye(3, dtype="float32")))
    x = np.eye(4, dtype="float32")[:3]
    logs = model.evaluate(x, np.eye(3, dtype="float32"), verbose=0, return_dict=True)
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    assert logs["accuracy"] == pytest.approx(np.mean(predicted == np.arange(3)))
