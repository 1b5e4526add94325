import h5py
import keras
import numpy as np
import pytest
from layer_checks import check_layer

from nasnet_tf import NASNET_A, CellGenotype, NASNetCell, set_drop_path_progress


def _x(shape, seed=0):
    return keras.ops.convert_to_tensor(
        np.random.RandomState(seed).uniform(-1, 1, shape).astype("float32")
    )


def test_nasnet_a_normal_cell(tmp_path):
    cell = NASNetCell(NASNET_A.normal, filters=8, name="normal")
    # h_{i-1} at twice the resolution: the cell adjusts it with a factorized reduction.
    out = check_layer(cell, [_x((2, 6, 6, 12)), _x((2, 12, 12, 10), 1)], tmp_path,
                      expected_shape=(2, 6, 6, 48))
    assert cell.adjust.name == "adjust_reduction"
    assert out.shape[-1] == 6 * 8


def test_nasnet_a_reduction_cell(tmp_path):
    cell = NASNetCell(NASNET_A.reduction, filters=8, reduction=True, name="reduction")
    check_layer(cell, [_x((2, 7, 7, 16)), _x((2, 7, 7, 12), 1)], tmp_path,
                expected_shape=(2, 4, 4, 32))
    assert cell.adjust.name == "adjust_projection"


def test_first_cell_reads_its_input_twice(tmp_path):
    cell = NASNetCell(NASNET_A.normal, filters=8, name="first")
    # Without h_{i-1}, state 1 is the raw input (slim and keras.applications do this); it is
    # in the Normal cell's output, so it is projected to F channels there.
    check_layer(cell, _x((2, 6, 6, 5)), tmp_path, expected_shape=(2, 6, 6, 48))
    assert "1" in cell.output_adjust


def test_concat_combine_and_unused_cell_inputs_in_a_reduction_cell(tmp_path):
    genotype = CellGenotype(
        [(0, 0, "conv_3x3", "max_pool_5x5", "concat"), (2, 2, "identity", "dil_conv_3x3")]
    )
    assert genotype.concat == (1, 3)
    cell = NASNetCell(genotype, filters=4, reduction=True, name="mixed")
    # State 1 is unused, so it is reduced to the blocks' resolution before the concat;
    # block 2 reads the 8-channel concat state and its identity projects it to 4.
    check_layer(cell, [_x((1, 8, 8, 4)), _x((1, 8, 8, 4), 1)], tmp_path,
                expected_shape=(1, 4, 4, 8))
    assert "1" in cell.output_adjust


def _drop_cell(genotype, keep=0.5):
    return NASNetCell(genotype, filters=4, drop_path_keep_prob=keep, cell_index=0,
                      total_cells=1, seed=1)


def _progress(cell):
    return float(keras.ops.convert_to_numpy(cell.drop_path_progress))


def test_drop_path_is_active_in_training_only_once_progress_rises():
    # Pools over state 1 have no batch norm, so training and inference differ by drop path only.
    cell = _drop_cell(CellGenotype([(1, 1, "avg_pool_3x3", "max_pool_3x3")]))
    x = [_x((64, 4, 4, 4)), _x((64, 4, 4, 4), 1)]

    def block(training):
        return keras.ops.convert_to_numpy(cell(x, training=training))[..., 4:]

    inference = block(False)
    np.testing.assert_array_equal(inference, block(False))
    # A new cell's progress is 0 (no DropPathScheduler yet): training drops nothing.
    assert _progress(cell) == 0.0
    np.testing.assert_allclose(block(True), inference, atol=1e-6)
    inputs = [keras.Input((4, 4, 4)), keras.Input((4, 4, 4))]
    set_drop_path_progress(keras.Model(inputs, cell(inputs)), 1.0)
    assert not np.allclose(block(True), inference)
    np.testing.assert_array_equal(block(False), inference)


def test_compiled_train_step_reads_the_progress_it_is_given():
    # The progress is a model variable (state the jitted JAX step takes as input), so one
    # compiled train function sees every new value: at lr 0 a step's loss depends on progress
    # only, and returns to the same value when the progress does.
    cell = _drop_cell(CellGenotype([(1, 1, "avg_pool_3x3", "max_pool_3x3")]), keep=0.1)
    inputs = [keras.Input((4, 4, 4)), keras.Input((4, 4, 4))]
    model = keras.Model(inputs, cell(inputs))
    assert any(v is cell.drop_path_progress for v in model.non_trainable_variables)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=True)
    x = [keras.ops.convert_to_numpy(_x((16, 4, 4, 4), s)) for s in (0, 1)]
    y = np.zeros((16, 4, 4, 8), "float32")
    losses = []
    for progress in (0.0, 1.0, 0.0):
        set_drop_path_progress(model, progress)
        losses.append(float(model.train_on_batch(x, y)))
    train_function = model.train_function
    assert losses[0] == pytest.approx(losses[2], rel=1e-6)
    assert abs(losses[1] - losses[0]) > 0.1 * losses[0]
    set_drop_path_progress(model, 1.0)
    model.train_on_batch(x, y)
    assert model.train_function is train_function


def test_drop_path_never_drops_identity():
    cell = _drop_cell(CellGenotype([(1, 1, "identity", "identity")]), keep=0.1)
    x = [_x((32, 4, 4, 4)), _x((32, 4, 4, 4), 1)]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(cell(x, training=True))[..., 4:],
        2 * keras.ops.convert_to_numpy(x[1]),
        atol=1e-6,
    )


def test_drop_rate_scales_with_depth_and_progress():
    genotype = CellGenotype([(1, 1, "conv_1x1", "identity")])
    x = [_x((2000, 1, 1, 4)), _x((2000, 1, 1, 4), 1)]

    def dropped_fraction(cell_index, progress):
        cell = NASNetCell(genotype, filters=4, drop_path_keep_prob=0.5, cell_index=cell_index,
                          total_cells=4, seed=3)
        cell(x)
        cell.drop_path_progress.assign(progress)
        y = keras.ops.convert_to_numpy(cell(x, training=True))[..., 4:]  # the block's state
        identity = keras.ops.convert_to_numpy(x[1])
        kept = np.abs(y - identity).reshape(2000, -1).max(axis=1) > 1e-6
        return 1.0 - kept.mean()

    # Last cell at full progress: drop 1 - 0.5; first of four: a quarter of that.
    assert abs(dropped_fraction(3, 1.0) - 0.5) < 0.05
    assert abs(dropped_fraction(0, 1.0) - 0.125) < 0.04
    assert abs(dropped_fraction(3, 0.5) - 0.25) < 0.04
    assert dropped_fraction(3, 0.0) == 0.0


def test_drop_path_progress_is_state_not_a_weight(tmp_path):
    genotype = CellGenotype([(0, 1, "conv_1x1", "avg_pool_3x3")])
    off = NASNetCell(genotype, filters=4)
    x = [_x((1, 4, 4, 4)), _x((1, 4, 4, 4))]
    off(x)
    assert off.drop_path_progress is None
    assert not any("drop_path" in v.path for v in off.variables)
    on = NASNetCell(genotype, filters=4, drop_path_keep_prob=0.5, seed=1, name="on")
    on(x)
    # Outside the weights and the parameter count; among the variables, saved with the cell.
    assert not any("drop_path" in w.path for w in on.weights)
    assert on.count_params() == off.count_params()
    assert any(v is on.drop_path_progress for v in on.non_trainable_variables)
    inputs = [keras.Input((4, 4, 4)), keras.Input((4, 4, 4))]
    model = keras.Model(inputs, on(inputs))
    set_drop_path_progress(model, 0.25)
    model.save(tmp_path / "cell.keras")
    loaded = keras.models.load_model(tmp_path / "cell.keras")
    assert _progress(loaded.get_layer("on")) == 0.25

    # `.weights.h5` files hold it too; those written when it was the cell's one weight
    # (key "0") still load.
    path = tmp_path / "cell.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r+") as f:
        (group,) = [g for name, g in f["layers"].items() if "drop_path_progress" in g["vars"]]
        group["vars"].move("drop_path_progress", "0")
    set_drop_path_progress(model, 1.0)
    model.load_weights(path)
    assert _progress(on) == 0.25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filters": 0}, r"filters=0"),
        ({"filters": 4, "drop_path_keep_prob": 0.0}, r"drop_path_keep_prob=0.0"),
        ({"filters": 4, "cell_index": 3, "total_cells": 3}, r"cell_index=3"),
    ],
)
def test_bad_cell_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NASNetCell(NASNET_A.normal, **kwargs)


def test_previous_input_of_another_scale_is_refused():
    cell = NASNetCell(NASNET_A.normal, filters=4)
    with pytest.raises(ValueError, match="twice it"):
        cell([_x((1, 4, 4, 4)), _x((1, 16, 16, 4))])
