"""One generic cell layer that runs any `CellGenotype`, as a Normal or a Reduction cell."""

import math

import keras
from keras import layers, ops

from nasnet_tf import validators
from nasnet_tf.genotype import CellGenotype
from nasnet_tf.ops import BN_MOMENTUM, FactorizedReduction, ReLUConvBN, get_op

_PROGRESS_KEY = "drop_path_progress"


class DropPathProgress(keras.random.SeedGenerator):
    """ScheduledDropPath's training progress: a float32 scalar variable, `state`, in [0, 1].

    Keras tracks a `keras.random.SeedGenerator` set as a layer attribute as *state*, not as
    a *weight*: its `state` variable is in the layer's `variables` and
    `non_trainable_variables` (so a jitted JAX train step takes it as an input and a new value
    needs no retrace), but not in `weights`, `count_params()` or `get_weights()`. This holds
    the progress that way, so a NASNet with drop path has the published parameter count.
    It draws no seeds. `NASNetCell` saves and loads it with its own variables (`.keras` and
    `.weights.h5` files).

    Args:
        value: the initial progress (0.0: no drop until a scheduler raises it).
        name: the progress variable's name.

    Example:

    >>> progress = DropPathProgress(0.25)
    >>> float(keras.ops.convert_to_numpy(progress.state))
    0.25
    """

    def __init__(self, value=0.0, name=_PROGRESS_KEY):
        # Not `super().__init__`: that would make an integer seed variable; this holds a float.
        self.name = name
        self._initial_seed = None
        self._initial_value = float(value)
        self.state = keras.Variable(
            self._initial_value, shape=(), dtype="float32", trainable=False, name=name
        )

    def next(self, ordered=True):
        raise ValueError(
            "`DropPathProgress` holds ScheduledDropPath's progress and draws no seeds: pass "
            "the cell's `seed_generator` to random ops instead."
        )

    def get_config(self):
        return {"value": self._initial_value, "name": self.name}


@keras.saving.register_keras_serializable(package="nasnet_tf")
class NASNetCell(layers.Layer):
    """A NASNet cell driven by a cell genotype.

    The cell reads two inputs, `h_i` (the previous cell's output) and `h_{i-1}` (the one
    before). `h_i` goes through ReLU -> 1x1 conv -> BN to `filters` channels (state 0);
    `h_{i-1}` is adjusted to match (state 1): a factorized reduction where its resolution is
    twice `h_i`'s, a 1x1 projection where only its channels differ. Each block applies its two
    ops and combines them (add, or concat along channels) into a new state. In a Reduction cell
    every op reading state 0 or 1 has stride 2. The output concatenates the genotype's `concat`
    states (by default those no block reads; cell inputs among them are reduced / projected to
    match).

    ScheduledDropPath: in training, each op output except identity is dropped per example with
    probability `progress * (cell_index + 1) / total_cells * (1 - drop_path_keep_prob)`, where
    `progress` in [0, 1] is the variable `drop_path_progress`. Off at inference. The progress
    is **0.0 (nothing dropped) until something raises it**: `nasnet_tf.training.train` adds
    `nasnet_tf.DropPathScheduler`, which ramps it from 0 to 1 over the run; for a plain
    `model.fit`, pass `callbacks=[nasnet_tf.DropPathScheduler(total_steps)]`, or call
    `nasnet_tf.set_drop_path_progress(model, p)`. The progress is layer state, not a weight
    (see `DropPathProgress`): it is outside `count_params()` and `get_weights()`, in
    `variables`, and saved in `.keras` and `.weights.h5` files.

    Args:
        genotype: a `CellGenotype` (or its list of blocks).
        filters: the cell's filters F (even where a factorized reduction is needed).
        reduction: whether this is a Reduction cell.
        drop_path_keep_prob: keep probability of the last cell, in (0, 1]; 1.0 disables
            drop path (and adds no progress variable).
        cell_index: this cell's 0-based position in the network (for drop path scaling).
        total_cells: the number of cells in the network.
        seed: seed of the drop-path noise.
        bn_momentum: momentum of the cell's batch normalizations.
        sync_batch_norm: whether the batch normalizations are synchronized across the
            replicas of a `tf.distribute` strategy (`BatchNormalization(synchronized=True)`;
            TensorFlow only, ignored under JAX).

    Call arguments:
        inputs: `h_i`, or the list `[h_i, h_{i-1}]`. With `h_i` alone, state 1 is `h_i` itself
            (the first cell of a network, as in slim and `keras.applications`).
        training: whether drop path is active.

    Example:

    >>> from nasnet_tf import NASNET_A
    >>> cell = NASNetCell(NASNET_A.normal, filters=8)
    >>> x = keras.ops.ones((2, 16, 16, 8))
    >>> tuple(cell([x, x]).shape)
    (2, 16, 16, 48)
    """

    def __init__(
        self,
        genotype,
        filters,
        reduction=False,
        drop_path_keep_prob=1.0,
        cell_index=0,
        total_cells=1,
        seed=None,
        bn_momentum=BN_MOMENTUM,
        sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Each check returns its value normalised (an int, a float), stored as it is.
        self.genotype = CellGenotype.from_value(genotype)
        self.bn_momentum = validators.momentum(bn_momentum)
        self.filters = validators.positive_int(filters, "filters")
        self.drop_path_keep_prob = validators.probability(
            drop_path_keep_prob, "drop_path_keep_prob")
        self.total_cells = validators.positive_int(total_cells, "total_cells")
        if isinstance(cell_index, bool) or not isinstance(cell_index, int) or not (
            0 <= cell_index < self.total_cells
        ):
            raise ValueError(
                "`cell_index` must be in [0, total_cells). "
                f"Received: cell_index={cell_index}, total_cells={self.total_cells}"
            )
        self.cell_index = cell_index
        self.reduction = bool(reduction)
        self.seed = seed
        self.sync_batch_norm = bool(sync_batch_norm)
        self.seed_generator = (
            keras.random.SeedGenerator(seed) if self.drop_path_keep_prob < 1.0 else None
        )
        self._progress = None

    @property
    def drop_path_progress(self):
        """The ScheduledDropPath progress variable (a float32 scalar in [0, 1], 0.0 when
        built), or `None` without drop path or before the cell is built."""
        return None if self._progress is None else self._progress.state

    def _norm(self):
        return {"bn_momentum": self.bn_momentum, "sync_batch_norm": self.sync_batch_norm}

    # -- shapes ------------------------------------------------------------------------------
    @staticmethod
    def _split_shapes(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and not isinstance(
            input_shape[0], (int, type(None))
        ):
            if len(input_shape) != 2:
                raise ValueError(
                    "A cell takes `h_i` or `[h_i, h_{i-1}]`. "
                    f"Received {len(input_shape)} inputs."
                )
            return tuple(input_shape[0]), tuple(input_shape[1])
        return tuple(input_shape), None

    def _block_channels(self, block):
        return self.filters if block.combine == "add" else 2 * self.filters

    def build(self, input_shape):
        ip_shape, p_shape = self._split_shapes(input_shape)
        f = self.filters
        spatial = ip_shape[1:3]
        self.base = ReLUConvBN(f, 1, name="base", **self._norm())
        self.base.build(ip_shape)
        self.adjust = None
        p_out = ip_shape if p_shape is None else p_shape
        if p_shape is None:
            pass
        elif tuple(p_shape[1:3]) != tuple(spatial):
            if any(
                a is not None and b is not None and math.ceil(a / 2) != b
                for a, b in zip(p_shape[1:3], spatial)
            ):
                raise ValueError(
                    "The previous input's spatial size must equal the current input's, or be "
                    f"twice it. Received: h_i {ip_shape}, h_(i-1) {p_shape}"
                )
            self.adjust = FactorizedReduction(f, name="adjust_reduction", **self._norm())
        elif p_shape[-1] != f:
            self.adjust = ReLUConvBN(f, 1, name="adjust_projection", **self._norm())
        if self.adjust is not None:
            self.adjust.build(p_shape)
            p_out = self.adjust.compute_output_shape(p_shape)
        states = [self.base.compute_output_shape(ip_shape), p_out]

        self.block_ops = []
        self.combiners = []
        for k, block in enumerate(self.genotype.blocks):
            pair = []
            for side, name, index in (
                ("left", block.op_a, block.input_a),
                ("right", block.op_b, block.input_b),
            ):
                strides = 2 if self.reduction and index < 2 else 1
                op = get_op(name, f, strides, f"block_{k + 1}_{side}", **self._norm())
                op.build(states[index])
                pair.append(op)
            self.block_ops.append(pair)
            combine = layers.Add if block.combine == "add" else layers.Concatenate
            self.combiners.append(combine(name=f"block_{k + 1}_{block.combine}"))
            out = pair[0].compute_output_shape(states[block.input_a])
            states.append(out[:-1] + (self._block_channels(block),))

        final_spatial = states[-1][1:3]
        self.output_adjust = {}
        for i in self.genotype.output_states:
            if i >= 2:
                continue
            if tuple(states[i][1:3]) != tuple(final_spatial):
                layer = FactorizedReduction(f, name=f"output_reduction_{i}", **self._norm())
            elif states[i][-1] != f:
                layer = ReLUConvBN(f, 1, name=f"output_projection_{i}", **self._norm())
            else:
                continue
            layer.build(states[i])
            self.output_adjust[str(i)] = layer
        self.concat = layers.Concatenate(name="concat")
        if self.seed_generator is not None:
            self._progress = DropPathProgress(0.0)

    # -- saving: the progress is state, not a weight, so it is saved here --------------------
    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self._progress is not None:
            store[_PROGRESS_KEY] = self._progress.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        value = None
        if _PROGRESS_KEY in keys:
            value = store[_PROGRESS_KEY]
            keys.remove(_PROGRESS_KEY)
        elif self._progress is not None and keys == ["0"]:
            value = store["0"]  # a file from before: the progress was the cell's one weight
            keys = []
        if keys:
            raise ValueError(
                f"Layer '{self.name}' holds no variables of its own but its sublayers', yet "
                f"the file lists {len(keys)} for it: {keys}. Was it saved from another layout?"
            )
        if value is not None and self._progress is not None:
            self._progress.state.assign(value)

    def compute_output_shape(self, input_shape):
        ip_shape, _ = self._split_shapes(input_shape)
        h, w = ip_shape[1:3]
        if self.reduction:
            h = None if h is None else math.ceil(h / 2)
            w = None if w is None else math.ceil(w / 2)
        channels = sum(
            self.filters if i < 2 else self._block_channels(self.genotype.blocks[i - 2])
            for i in self.genotype.output_states
        )
        return (ip_shape[0], h, w, channels)

    # -- forward -----------------------------------------------------------------------------
    def _drop_path(self, x, training):
        if not training or self.seed_generator is None:
            return x
        layer_keep = 1.0 - (self.cell_index + 1) / self.total_cells * (
            1.0 - self.drop_path_keep_prob
        )
        progress = ops.cast(self.drop_path_progress, x.dtype)
        keep = 1.0 - progress * (1.0 - layer_keep)
        noise = keras.random.uniform(
            (ops.shape(x)[0], 1, 1, 1), seed=self.seed_generator, dtype=x.dtype
        )
        return x / keep * ops.floor(keep + noise)

    def call(self, inputs, training=None):
        if isinstance(inputs, (list, tuple)):
            ip, p = inputs
        else:
            ip, p = inputs, None
        h = self.base(ip, training=training)
        if p is None:
            p = ip
        elif self.adjust is not None:
            p = self.adjust(p, training=training)
        states = [h, p]
        for block, pair, combine in zip(self.genotype.blocks, self.block_ops, self.combiners):
            outs = []
            for name, index, op in (
                (block.op_a, block.input_a, pair[0]),
                (block.op_b, block.input_b, pair[1]),
            ):
                y = op(states[index], training=training)
                if name != "identity":
                    y = self._drop_path(y, training)
                outs.append(y)
            states.append(combine(outs))
        outputs = []
        for i in self.genotype.output_states:
            layer = self.output_adjust.get(str(i))
            outputs.append(states[i] if layer is None else layer(states[i], training=training))
        return self.concat(outputs) if len(outputs) > 1 else outputs[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "genotype": self.genotype.to_dict(),
                "filters": self.filters,
                "reduction": self.reduction,
                "drop_path_keep_prob": self.drop_path_keep_prob,
                "cell_index": self.cell_index,
                "total_cells": self.total_cells,
                "seed": self.seed,
                "bn_momentum": self.bn_momentum,
                "sync_batch_norm": self.sync_batch_norm,
            }
        )
        return config


def drop_path_cells(model):
    """The `NASNetCell`s of `model` (in nested models too) whose drop path is on.

    Walks `model.layers` (and the `layers` of nested models): a functional NASNet holds its
    cells there.

    Example:

    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=48)
    >>> len(drop_path_cells(model)) > 0
    True
    """
    found, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, NASNetCell):
            if layer.seed_generator is not None:
                found.append(layer)
        elif isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return found


def set_drop_path_progress(model, progress):
    """Sets the ScheduledDropPath training progress (0 = no drop, 1 = full) of every cell.

    A new model's progress is 0.0; `nasnet_tf.DropPathScheduler` calls this at each batch.

    Example:

    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=48)
    >>> set_drop_path_progress(model, 0.5)
    """
    if not 0.0 <= float(progress) <= 1.0:
        raise ValueError(f"`progress` must be in [0, 1]. Received: progress={progress}")
    for layer in drop_path_cells(model):
        if layer.drop_path_progress is not None:
            layer.drop_path_progress.assign(float(progress))
