"""The super-network: one model whose architecture is an input, equal to each child it holds."""

import json

import keras
import numpy as np
import pytest

from nasnet_tf import Block, CellGenotype, Genotype, build_nasnet
from nasnet_tf.flat_updates import FlatUpdates
from nasnet_tf.supernet import SuperCell, SuperNet

# Identity, a pool and a conv: every kind of branch (exact, projected, conv, reduction).
OPS = ["identity", "sep_conv_3x3", "max_pool_3x3"]
SHAPE = (8, 8, 3)


def _random_cell(rng, num_blocks, combine=("add", "concat"), ops=OPS):
    blocks = [
        Block(int(rng.integers(2 + k)), int(rng.integers(2 + k)),
              ops[rng.integers(len(ops))], ops[rng.integers(len(ops))],
              combine[rng.integers(len(combine))])
        for k in range(num_blocks)
    ]
    return CellGenotype(blocks)


def _random_genotypes(seed, n, num_blocks=2):
    rng = np.random.default_rng(seed)
    return [Genotype(_random_cell(rng, num_blocks), _random_cell(rng, num_blocks))
            for _ in range(n)]


def _perturb(model, seed):
    """Random batch-norm statistics and affine terms, so inference is no identity."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith(("moving_variance", "gamma")):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif w.path.endswith(("moving_mean", "beta")):
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))


@pytest.fixture(scope="module")
def supernet():
    return SuperNet(num_blocks=2, ops=OPS, num_cells=1, penultimate_filters=48,
                    input_shape=SHAPE, classes=4, name="test_supernet")


def test_equals_each_child_it_holds(supernet):
    """Given a child's architecture and weights, the super-network computes the child."""
    x = np.random.default_rng(0).normal(size=(3,) + SHAPE).astype("float32")
    genotypes = _random_genotypes(1, 3)
    # Both combine ops, and both cell types reading the cell inputs and the blocks' outputs.
    assert any(b.combine == "concat" for g in genotypes for b in g.normal.blocks)
    assert any(b.combine == "add" for g in genotypes for b in g.reduction.blocks)
    # And cells that leave an input state unread, so that it is in their output: projected
    # (state 1 of the first cell, the stem's width) and reduced (a Reduction cell's state 0).
    genotypes.append(Genotype(
        CellGenotype([Block(0, 0, "sep_conv_3x3", "identity"), Block(2, 0, "max_pool_3x3",
                                                                      "identity", "concat")]),
        CellGenotype([Block(1, 1, "identity", "max_pool_3x3"), Block(2, 1, "sep_conv_3x3",
                                                                      "identity")]),
    ))
    for i, genotype in enumerate(genotypes):
        child = build_nasnet(genotype, **supernet.child_config())
        _perturb(child, i)
        supernet.load_child_weights(child, genotype)
        expected = child.predict(x, verbose=0)
        got = supernet.predict(supernet.inputs_for(x, genotype), verbose=0)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        # And out again: the path copied into a new standalone model computes the same.
        back = supernet.child_weights(genotype)
        np.testing.assert_allclose(back.predict(x, verbose=0), expected, atol=1e-5, rtol=0)


def test_equals_children_with_the_stem_output_as_a_group_of_its_own(supernet):
    """In an `add`-only space the first cell's state 1 (the stem's output, 3F wide) is read
    through candidates of its own, by every kind of op, on either edge."""
    net = SuperNet(num_blocks=2, ops=OPS, combine_ops=["add"], num_cells=1,
                   penultimate_filters=48, input_shape=SHAPE, classes=4, name="add_only")
    first = next(layer for layer in net.layers if isinstance(layer, SuperCell)).plan
    assert first.wide_state1 and "state1" in first.group_widths
    # With `concat` (blocks 2F wide) the stem's output shares the cell's group.
    assert not next(layer for layer in supernet.layers
                    if isinstance(layer, SuperCell)).plan.wide_state1
    x = np.random.default_rng(4).normal(size=(2,) + SHAPE).astype("float32")
    genotypes = [
        Genotype(CellGenotype([Block(1, 0, a, b, "add"), Block(2, 1, b, a, "add")]),
                 CellGenotype([Block(0, 1, a, b, "add"), Block(1, 2, b, a, "add")]))
        for a, b in zip(OPS, OPS[1:] + OPS[:1])
    ]
    for i, genotype in enumerate(genotypes):
        child = build_nasnet(genotype, **net.child_config())
        _perturb(child, 10 + i)
        net.load_child_weights(child, genotype)
        np.testing.assert_allclose(net.predict_on_batch(net.inputs_for(x, genotype)),
                                   child.predict(x, verbose=0), atol=1e-5, rtol=0,
                                   err_msg=str(genotype))


@pytest.mark.slow
def test_equals_children_over_all_thirteen_ops():
    """Every op of the NASNet space, in both cell types, with add and concat, on the cell
    inputs and on a block's output (in a Reduction cell: stride 2, then 1)."""
    from nasnet_tf import OP_NAMES

    net = SuperNet(num_blocks=2, num_cells=1, penultimate_filters=48, input_shape=SHAPE,
                   classes=4, name="all_ops")
    x = np.random.default_rng(3).normal(size=(2,) + SHAPE).astype("float32")
    names = list(OP_NAMES)
    covered = set()
    for i in range(0, len(names), 2):
        a, b = names[i], names[(i + 1) % len(names)]
        combine, other = ("add", "concat")[(i // 2) % 2], ("concat", "add")[(i // 2) % 2]
        normal = CellGenotype([Block(0, 1, a, b, combine), Block(2, 0, b, a, other)])
        reduction = CellGenotype([Block(1, 0, b, a, other), Block(2, 1, a, b, combine)])
        genotype = Genotype(normal, reduction)
        covered.update((a, b))
        child = build_nasnet(genotype, **net.child_config())
        _perturb(child, i)
        net.load_child_weights(child, genotype)
        expected = child.predict(x, verbose=0)
        got = net.predict_on_batch(net.inputs_for(x, genotype))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0, err_msg=f"{a}, {b}")
    assert covered == set(OP_NAMES)


def test_switching_architectures_traces_once(monkeypatch):
    traces = []
    original = SuperCell._blocks

    def counting(self, *args, **kwargs):
        traces.append(self.name)  # Python runs here only while a function is traced
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SuperCell, "_blocks", counting)
    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=SHAPE, classes=4)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4,) + SHAPE).astype("float32")
    y = rng.integers(4, size=4)
    counts, seen = [], set()
    for i in range(6):
        two = ["identity", "sep_conv_3x3"]
        genotype = Genotype(_random_cell(np.random.default_rng(i), 1, ops=two),
                            _random_cell(np.random.default_rng(i + 10), 1, ops=two))
        seen.add(str(genotype))
        inputs = net.inputs_for(x, genotype)
        net.train_on_batch(inputs, y)
        net.predict_on_batch(inputs)
        counts.append(len(traces))
    assert len(seen) >= 5
    # Traced on the first architecture (train and predict), never again after it.
    assert counts[0] > 0
    assert counts == [counts[0]] * 6, counts


def test_compile_builds_the_optimizer():
    # Left to the first `train_on_batch`, the optimizer's variables would be created inside the
    # traced step, each with a conditional initializer: most of a large network's first step.
    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=SHAPE, classes=4)
    net.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    assert net.optimizer.built and net.optimizer.inner_optimizer.built
    # Adam over one flat vector: a first and a second moment as long as all the weights.
    size = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
    moments = [v for v in net.optimizer.inner_optimizer.variables if tuple(v.shape) == (size,)]
    assert len(moments) == 2


def test_the_optimizer_updates_one_flat_vector_as_the_optimizer_itself_would():
    # Adam over the flat vector against Adam variable by variable (a clipnorm too large to
    # clip keeps Adam out of `FlatUpdates`): the same weights after three steps.
    config = SuperNet(num_blocks=1, ops=OPS[:2], num_cells=1, penultimate_filters=48,
                      input_shape=SHAPE, classes=4).get_config()
    genotype = Genotype(CellGenotype([Block(0, 1, "sep_conv_3x3", "identity", "add")]),
                        CellGenotype([Block(1, 0, "identity", "sep_conv_3x3", "concat")]))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4,) + SHAPE).astype("float32")
    y = rng.integers(4, size=4)
    nets = []
    for optimizer in (keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2, clipnorm=1e30)):
        net = SuperNet.from_config(config)
        net.reinitialize(seed=3)
        net.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        for _ in range(3):
            net.train_on_batch(net.inputs_for(x, genotype), y)
        nets.append(net)
    assert isinstance(nets[0].optimizer, FlatUpdates)
    assert type(nets[1].optimizer) is keras.optimizers.Adam
    for a, b in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   rtol=1e-5, atol=1e-6, err_msg=a.path)
    assert int(keras.ops.convert_to_numpy(nets[0].optimizer.iterations)) == 3


def test_reinitialize_draws_fresh_seeded_weights(supernet):
    net = SuperNet.from_config(supernet.get_config())
    net.reinitialize(seed=7)
    first = [np.array(keras.ops.convert_to_numpy(w)) for w in net.weights]
    net.reinitialize(seed=8)
    other = [np.array(keras.ops.convert_to_numpy(w)) for w in net.weights]
    net.reinitialize(seed=7)
    again = [np.array(keras.ops.convert_to_numpy(w)) for w in net.weights]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    kernels = [i for i, w in enumerate(net.weights) if w.name == "kernel"]
    assert all(not np.array_equal(first[i], other[i]) for i in kernels)
    # Batch-norm statistics start as a new layer's do.
    for w, value in zip(net.weights, first):
        if w.name == "moving_variance":
            np.testing.assert_array_equal(value, 1.0)


def _check_block_slices_drawn_as_child_layers(cell):
    seen = set()
    for part in cell.stacked_variables:
        value, name = np.asarray(part), part.name
        if value.ndim < 3 or value[0].size < 2000:
            continue
        sliced = value.shape[1:]
        fan_in = int(np.prod(sliced[:-1]))
        fan_out = int(np.prod(sliced[:-2])) * sliced[-1]
        expected = (np.sqrt(2.0 / fan_in) if name == "kernel" and value.ndim == 5
                    else np.sqrt(2.0 / (fan_in + fan_out)))
        for k in range(value.shape[0]):
            np.testing.assert_allclose(value[k].std(), expected, rtol=0.06, err_msg=name)
        assert not np.array_equal(value[0], value[1]), name
        seen.add(name)
    assert {"kernel", "pointwise_kernel"} <= seen, seen


def test_block_slices_are_drawn_as_child_layers_are():
    """Stacked over B blocks, every slice has the spread of the op layer's own initializer
    (He normal for convolution kernels, Glorot uniform for separable ones), not 1/sqrt(B) of
    it, and the slices are distinct draws: in a new super-network and after `reinitialize`."""
    net = SuperNet(num_blocks=3, ops=["conv_3x3", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=768, input_shape=SHAPE, classes=4)
    cell = next(layer for layer in net.layers if isinstance(layer, SuperCell))
    _check_block_slices_drawn_as_child_layers(cell)
    net.reinitialize(seed=1)
    _check_block_slices_drawn_as_child_layers(cell)


def test_each_side_of_a_cell_holds_its_candidates_in_two_variables(supernet):
    """Every candidate's weights on one side of a cell are one `[B, size]` variable and its
    moving statistics another, not one variable per op layer variable: a step reads,
    differentiates and updates four tensors per cell, whatever the space."""
    for cell in supernet.layers:
        if not isinstance(cell, SuperCell):
            continue
        own = {id(v) for layer in cell._layers for v in layer.weights}
        flat = [v for v in cell.weights if id(v) not in own]
        assert sorted(v.name for v in flat) == [
            "left_statistics", "left_weights", "right_statistics", "right_weights"], flat
        parts = cell.stacked_variables
        for v in flat:
            mine = [p for p in parts if p.variable is v]
            assert v.shape == (2, sum(p.size for p in mine)), v
            assert np.asarray(mine[-1]).shape[0] == 2


def test_config_round_trip_and_bad_input(supernet):
    config = json.loads(json.dumps(supernet.get_config()))
    assert SuperNet.from_config(config).get_config() == supernet.get_config()
    with pytest.raises(ValueError, match="not among the super-network's ops"):
        cell = CellGenotype([Block(0, 1, "sep_conv_7x7", "identity"), Block(0, 2, "identity",
                                                                            "identity")])
        supernet.encode(Genotype(cell, cell))
    with pytest.raises(ValueError, match="num_blocks=2"):
        cell = CellGenotype([Block(0, 1, "identity", "identity")])
        supernet.encode(Genotype(cell, cell))
    with pytest.raises(ValueError, match="penultimate_filters"):
        SuperNet(penultimate_filters=24)
    with pytest.raises(ValueError, match="ops"):
        SuperNet(ops=["sep_conv_3x3", "nope"])


def test_saves_and_loads_as_a_keras_file(tmp_path):
    net = SuperNet(num_blocks=1, ops=["identity", "max_pool_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=SHAPE, classes=4, name="saved")
    net.reinitialize(seed=3)
    cell = CellGenotype([Block(0, 1, "max_pool_3x3", "identity", "concat")])
    inputs = net.inputs_for(np.ones((2,) + SHAPE, "float32"), Genotype(cell, cell))
    path = tmp_path / "supernet.keras"
    net.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SuperNet)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), net.predict(inputs, verbose=0),
                               atol=1e-6)



@pytest.mark.slow
def test_trains_as_the_child_it_holds():
    """A few SGD steps through the super-network change the child's weights as the child's own
    training does (batch statistics and their updates included)."""
    # Seeded: the weights drawn must not depend on the tests run before in this process.
    keras.utils.set_random_seed(0)
    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], combine_ops=["add"],
                   num_cells=1, penultimate_filters=48, input_shape=SHAPE, classes=3)
    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity")])
    genotype = Genotype(cell, cell)
    child = build_nasnet(genotype, **net.child_config())
    net.load_child_weights(child, genotype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16,) + SHAPE).astype("float32")
    y = rng.integers(0, 3, 16)
    for model in (child, net):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    child_losses = [float(child.train_on_batch(x, y)) for _ in range(3)]
    net_losses = [float(net.train_on_batch(net.inputs_for(x, genotype), y)) for _ in range(3)]
    np.testing.assert_allclose(net_losses, child_losses, atol=1e-5)
    back = net.child_weights(genotype)
    for a, b in zip(back.weights, child.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   atol=1e-5)


def test_a_compiled_metric_does_not_trace_the_step_twice(monkeypatch):
    # Metric variables created while the first step is traced make TensorFlow trace it again.
    calls = []
    original = SuperNet.call

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("training"))  # Python runs here only while tracing
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SuperNet, "call", counting)
    net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
                   penultimate_filters=48, input_shape=SHAPE, classes=4)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4,) + SHAPE).astype("float32")
    y = rng.integers(4, size=4).astype("int32")
    inputs = net.inputs_for(x, _random_genotypes(0, 1, num_blocks=1)[0])
    before = len(calls)
    logs = [net.train_on_batch(inputs, y, return_dict=True) for _ in range(3)]
    assert len(calls) - before == 1, calls
    assert set(logs[0]) == {"loss", "accuracy"}
    net.test_on_batch(inputs, y)
    assert len(calls) - before == 2  # and one for the test step
