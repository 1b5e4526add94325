"""`SuperNet`: one Keras model for a whole NASNet cell space, whose architecture is an input.

Every (block, side) edge of every cell holds every candidate op (Reduction cells hold the
stride-2 variants for edges that read the cell inputs); the architecture arrives as an int32
input tensor, and each edge runs only its selected branch through `keras.ops.switch`. One
traced (TensorFlow) or compiled (JAX) graph thus trains and evaluates any child, and a search
pays tracing and compilation once instead of once per child. `nasnet_tf.supernet_plan` holds
the bookkeeping: how states are padded to fixed widths, and how a genotype is encoded.

A cell's blocks run as one loop (`keras.ops.fori_loop`) whose body holds the two edges'
switches, so each candidate branch is traced and compiled once per cell instead of once per
block: tracing, compilation and their memory grow with the candidates, not with the blocks.
The weights of every candidate op on one side (left or right) of a cell are one `[B, size]`
variable, row k block k's (the moving statistics another), and each iteration runs the
selected op's code (`Layer.stateless_call` of one op layer kept as a template) with its
part of its block's row; the block's output is written into the stack of the cell's states
(`keras.ops.scatter_update`, which has a gradient on every backend). A few variables, not
one per op layer variable: a step reads, differentiates and updates a few tensors.

Under TensorFlow, an edge's switch is differentiated by recomputing its selected branch
(`nasnet_tf.tf_switch`): TensorFlow's own switch gradient carries every branch's
intermediate tensors out of the switch and the loop, which was most of the graph. And in a
cell with large states, the stack of states is a tensor list (`nasnet_tf.tf_stack`): as one
tensor, each write copies it and each read's gradient is a whole stack.

Batch normalization inside a selected branch: under JAX, `lax.switch` branches cannot assign
variables (the moving statistics would leak tracers out of the branch). In training every
branch returns its op's new moving statistics through the switch; they are carried through
the loop and assigned after it. The same code runs under TensorFlow. Drop path and the
auxiliary head are left out: search children have neither.

With a child's weights loaded (`load_child_weights`), the super-network given that child's
architecture computes the child's function (`nasnet_tf.build_nasnet` with the same layout);
`child_weights` copies the path back out into a standalone model, e.g. to start its training
from shared weights.
"""

import math
import random

import keras
import numpy as np
from keras import layers, ops

from nasnet_tf import validators
from nasnet_tf.compiled_state import build_compiled_state, label_row
from nasnet_tf.flat_updates import FlatUpdates, flat_updates_apply
from nasnet_tf.flat_updates import flatten as _flat
from nasnet_tf.flat_updates import split as _split
from nasnet_tf.genotype import COMBINE_OPS, Genotype, check_names
from nasnet_tf.ops import (
    BN_EPSILON,
    OP_NAMES,
    OPS,
    FactorizedReduction,
    PoolOp,
    ReLUConvBN,
    SeparableConvOp,
    slice_sizes,
)
from nasnet_tf.supernet_plan import (
    CONV,
    EXACT,
    P_DYNAMIC,
    P_NONE,
    P_PROJECT,
    P_REDUCE,
    PROJECT,
    REDUCE,
    CellPlan,
    check_cell,
    encode_network,
    network_plan,
)

__all__ = ["SuperCell", "SuperNet"]

# Values per example in a cell's output states from which a cell is large under TensorFlow:
# its switches lowered (below, function calls: `nasnet_tf.tf_switch`) and its states a tensor
# list (below, one tensor: `nasnet_tf.tf_stack`). 2-core CPU, batch 64: 8x8x2 and smaller
# faster as calls and one tensor (the launch of each op costs more than its arithmetic),
# 16x16x4 and larger faster lowered and as a list.
_LARGE_FROM_VALUES = 256


def _pad(x, width):
    extra = width - x.shape[-1]
    if extra == 0:
        return x
    return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])


def _select(stack, index):
    """`stack[index]` for a scalar tensor `index`: a dynamic slice (its gradient pads, where
    a gather's gradient scatters)."""
    sizes = slice_sizes(stack)
    sizes[0] = 1
    return ops.squeeze(ops.slice(stack, [index] + [0] * (len(sizes) - 1), sizes), axis=0)


def _channels(x, width):
    """The first `width` channels of `x` (a slice: its gradient pads)."""
    if x.shape[-1] == width:
        return x
    sizes = slice_sizes(x)
    sizes[-1] = width
    return ops.slice(x, [0] * len(sizes), sizes)


def _spans(variables, start):
    """`(offset, size, shape)` of each variable in a flat vector, from `start` on."""
    spans = []
    for v in variables:
        shape = tuple(v.shape)
        size = int(np.prod(shape))
        spans.append((start, size, shape))
        start += size
    return spans, start


def _layer_spans(layer_list):
    """For each layer (or `None`), the spans of its trainable and of its non-trainable
    variables in two flat vectors of all of them; and the second vector's size."""
    t_spans, s_spans, t_end, s_end = [], [], 0, 0
    for layer in layer_list:
        t_vars = [] if layer is None else layer.trainable_variables
        s_vars = [] if layer is None else layer.non_trainable_variables
        spans, t_end = _spans(t_vars, t_end)
        t_spans.append(spans)
        spans, s_end = _spans(s_vars, s_end)
        s_spans.append(spans)
    return t_spans, s_spans, s_end


def _unflat(flat, spans):
    """The tensors of `spans` (contiguous, in order) out of `flat`: one slice and one split."""
    if not spans:
        return []
    start = spans[0][0]
    total = spans[-1][0] + spans[-1][1] - start
    part = flat if (start == 0 and total == flat.shape[0]) else ops.slice(flat, (start,), (total,))
    pieces = _split(part, [n for _, n, _ in spans])
    # A vector (batch norm's) is its piece already: no reshape, nor its gradient's.
    return [piece if len(shape) == 1 else ops.reshape(piece, shape)
            for piece, (_, _, shape) in zip(pieces, spans)]


def _replaced(flat, spans, values):
    """`flat` with its contiguous `spans` (see `_spans`) replaced by `values`, in order."""
    if not values:
        return flat
    first, last = spans[0][0], spans[-1][0] + spans[-1][1]
    parts = [ops.slice(flat, (0,), (first,))] if first else []
    parts += [value if len(value.shape) == 1 else ops.reshape(value, (-1,)) for value in values]
    if last < flat.shape[0]:
        parts.append(ops.slice(flat, (last,), (flat.shape[0] - last,)))
    return ops.concatenate(parts, axis=0)


def _run_branches(index, branches, training, lowered):
    """Runs the branch `index` of `branches`, a list of `(make_input, layer)` pairs
    (`layer` `None` for the input itself).

    Only the selected branch runs. In training, a branch's layer runs statelessly and its new
    non-trainable values (moving statistics) come back through the switch, to be assigned
    outside it (see the module docstring).

    The switch takes every branch's weights as one flat vector and returns every moving
    statistic as one flat vector: a switch's gradient (TensorFlow) and its outputs (both
    backends) hold one tensor per input and output of every branch, so per-variable tensors
    would make the graph grow with the square of the branch count.
    """
    layer_list = [layer for _, layer in branches]
    stateful = bool(training) and any(
        layer is not None and layer.non_trainable_variables for layer in layer_list
    )
    if not stateful:

        def plain(make_input, layer):
            def run():
                x = make_input()
                return x if layer is None else layer(x, training=training)

            return run

        return _case(index, [plain(*branch) for branch in branches], lowered)

    t_spans, s_spans, _ = _layer_spans(layer_list)
    state_vars = [v for layer in layer_list if layer is not None
                  for v in layer.non_trainable_variables]
    flat_trainable = _flat([
        ops.convert_to_tensor(v.value) for layer in layer_list if layer is not None
        for v in layer.trainable_variables
    ])
    flat_state = _flat([ops.convert_to_tensor(v.value) for v in state_vars])

    def stateless(i):
        make_input, layer = branches[i]

        def run():
            x = make_input()
            if layer is None:
                return x, flat_state
            y, new = layer.stateless_call(
                _unflat(flat_trainable, t_spans[i]), _unflat(flat_state, s_spans[i]), x,
                training=True,
            )
            return y, _replaced(flat_state, s_spans[i], new)

        return run

    y, new_state = _case(index, [stateless(i) for i in range(len(branches))], lowered)
    spans = [span for layer_spans in s_spans for span in layer_spans]
    for variable, value in zip(state_vars, _unflat(new_state, spans)):
        variable.assign(value)
    return y


def _listed(large):
    """Whether a cell's stack of states is a tensor list: under TensorFlow, where the cell is
    `large` (see `_LARGE_FROM_VALUES`)."""
    return large and keras.backend.backend() == "tensorflow"


def _stack(tensors, large):
    """`tensors` (of one shape) as a stack of states, for `_write_and_read` and `_read_stack`:
    one tensor, or under TensorFlow in a `large` cell a tensor list (`nasnet_tf.tf_stack`),
    whose writes and reads, gradients included, do not copy the stack."""
    if _listed(large):
        from nasnet_tf.tf_stack import stack

        return stack(tensors)
    return ops.stack(tensors, axis=0)


def _write_and_read(stack, slot, value, indices, large):
    """`stack` (see `_stack`) with `value` written at `slot`, and its entries at `indices`
    once written."""
    if _listed(large):
        from nasnet_tf.tf_stack import write_and_read

        return write_and_read(stack, slot, value, indices)
    stack = ops.scatter_update(stack, ops.reshape(slot, (1, 1)), ops.expand_dims(value, 0))
    return stack, [_select(stack, i) for i in indices]


def _read_stack(stack, indices, like, large):
    """The entries of `stack` (see `_stack`) at `indices`, each of the shape of `like`."""
    if _listed(large):
        from nasnet_tf.tf_stack import read

        return read(stack, indices, like)
    if all(isinstance(i, int) for i in indices):
        # One unstack (its gradient one stack), not a slice per entry (each a gradient as
        # large as the stack).
        entries = ops.unstack(stack, axis=0)
        return [entries[i] for i in indices]
    return [_select(stack, i) for i in indices]


def _case(index, branches, lowered):
    """`keras.ops.switch(index, branches)`; under TensorFlow through
    `nasnet_tf.tf_switch.switch`, which unless `lowered` a step runs as a call of the
    selected branch (not lowered into every branch's operations)."""
    if keras.backend.backend() == "tensorflow":
        from nasnet_tf.tf_switch import switch

        return switch(index, branches, lowered)
    return ops.switch(index, branches)


def _switch(index, branches, operands, training, lowered):
    """`branches[index](*operands)`. In a TensorFlow training step, through
    `nasnet_tf.tf_switch.recomputing_switch`, whose gradient recomputes the selected branch
    instead of carrying every branch's intermediate tensors out of the switch and the loop."""
    if training and keras.backend.backend() == "tensorflow":
        from nasnet_tf.tf_switch import recomputing_switch

        return recomputing_switch(index, branches, operands, lowered)
    return _case(index, [lambda b=b: b(*operands) for b in branches], lowered)


class _Slice:
    """One op layer variable's part of a cell's flat `[B, size]` variable (columns `start`
    to `start + size`): block `index`'s, read and written as a variable of its own of shape
    `shape`, or with `index` None every block's, of shape `(B,) + shape`. Has `name` (the op
    layer's own name for it), `shape`, `dtype`, `path`, `assign`, and NumPy conversion."""

    def __init__(self, variable, index, name, start, size, shape):
        self.variable = variable
        self.index = index
        self.name = name
        self.start = start
        self.size = size
        self._shape = tuple(shape)

    def block(self, index):
        """Block `index`'s part."""
        return _Slice(self.variable, index, self.name, self.start, self.size, self._shape)

    @property
    def _index(self):
        """Where the part lies in the flat variable (a NumPy index)."""
        rows = slice(None) if self.index is None else self.index
        return rows, slice(self.start, self.start + self.size)

    @property
    def shape(self):
        if self.index is None:
            return (self.variable.shape[0],) + self._shape
        return self._shape

    @property
    def dtype(self):
        return self.variable.dtype

    @property
    def path(self):
        rows = ":" if self.index is None else self.index
        return f"{self.variable.path}[{rows}, {self.start}:{self.start + self.size}]"

    def numpy(self):
        return self._part(np.asarray(ops.convert_to_numpy(self.variable)))

    def _part(self, flat):
        return np.array(flat[self._index]).reshape(self.shape)

    def _put(self, flat, value):
        flat[self._index] = np.reshape(value, flat[self._index].shape)

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value if dtype is None else value.astype(dtype)

    def assign(self, value):
        _write([(self, value)])


class _BlockOp:
    """One candidate op of one edge of one block, as a child's op layer: its `weights` and
    `non_trainable_variables` (`_Slice`s, in the order of the layer's own)."""

    def __init__(self, name, weights, non_trainable):
        self.name = name
        self.weights = weights
        self.non_trainable_variables = non_trainable


def _read(variable):
    if isinstance(variable, _Slice):
        return variable.numpy()
    return np.array(ops.convert_to_numpy(variable))


def _write(assignments):
    """Assigns each `(variable, value)` pair; the slices of one flat variable in one write."""
    flat = {}
    for variable, value in assignments:
        value = np.asarray(ops.convert_to_numpy(value))
        if isinstance(variable, _Slice):
            key = id(variable.variable)
            if key not in flat:
                flat[key] = (variable.variable, _read(variable.variable))
            variable._put(flat[key][1], value)
        else:
            variable.assign(value)
    for variable, value in flat.values():
        variable.assign(value)


class _FlatInitializer:
    """Draws a cell's flat `[B, size]` variable: each block's row holds every op layer
    variable in `columns` (`(name, shape)`, in order) drawn as the op layer's own would be
    (`_host_draw`), seeded from Python's `random` (which `keras.utils.set_random_seed`
    seeds)."""

    def __init__(self, columns):
        self.columns = columns

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(random.getrandbits(64))
        blocks = shape[0]
        return np.concatenate([
            _host_draw(name, part, rng, blocks=blocks, dtype=dtype).reshape(blocks, -1)
            for name, part in self.columns
        ], axis=1)


def _build_template(layer, shape):
    """Builds `layer` for `shape` with weights that are never drawn at random.

    A template's own weights are never read (each call maps them to a block's slice), but
    Keras draws every new variable from its initializer, and under JAX each new shape of a
    random draw is an XLA compilation: 236 of them, 95 s of the 13-op space's build on a
    2-core CPU. The weights are created inside a `keras.StatelessScope` that defers their
    initialization, then initialized as zeros on the host.
    """
    with keras.StatelessScope(initialize_variables=False):
        layer.build(shape)
    for variable in layer.weights:
        # A deferred variable is initialized from this at the next top-level scope's exit
        # (the empty scope below, or an enclosing one).
        variable._initializer = _host_zeros
    with keras.StatelessScope():
        pass


def _host_zeros(shape, dtype=None):
    return np.zeros(shape, dtype=keras.backend.standardize_dtype(dtype))


@keras.saving.register_keras_serializable(package="nasnet_tf")
class SuperCell(layers.Layer):
    """One cell position of a `SuperNet`: every candidate op on every edge.

    The blocks run as one loop (`keras.ops.fori_loop`), so that each edge's candidate
    branches are traced once per cell, not once per block: each side's candidate weights
    are one `[B, size]` variable, each iteration takes its block's row, and the block's
    output is written into a stack of the cell's states.

    Args:
        plan: the cell's `nasnet_tf.supernet_plan.CellPlan` config (a dict).
        bn_momentum: momentum of the cell's batch normalizations.

    Call arguments:
        inputs: `[h_i, h_{i-1}, architecture]`, or `[h_i, architecture]` for the first cell;
            `architecture` is the int32 `[batch, A]` architecture input (row 0 is read).
        training: whether batch normalization uses batch statistics (and updates its own).

    Example:

    >>> from nasnet_tf.supernet_plan import network_plan
    >>> plans, _ = network_plan(2, ["identity", "sep_conv_3x3"], ["add"], 1, 8, 24)
    >>> cell = SuperCell(plans[0].get_config())
    >>> arch = keras.ops.zeros((2, plans[-1].offset + plans[-1].size), dtype="int32")
    >>> tuple(cell([keras.ops.ones((2, 8, 8, 24)), arch]).shape)
    (2, 8, 8, 32)
    """

    def __init__(self, plan, bn_momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        if isinstance(plan, CellPlan):
            plan = plan.get_config()
        bn_momentum = validators.momentum(bn_momentum)
        self.plan_config = dict(plan)
        self.plan = CellPlan(**self.plan_config)
        self.bn_momentum = float(bn_momentum)

    def _conv1x1(self, name):
        return ReLUConvBN(self.plan.filters, 1, bn_momentum=self.bn_momentum, name=name)

    def build(self, input_shape):
        plan, f, b = self.plan, self.plan.filters, self.plan.num_blocks
        ip_shape = tuple(input_shape[0])
        p_shape = None if plan.p_kind == P_NONE else tuple(input_shape[1])
        self.base = self._conv1x1("base")
        self.base.build(ip_shape)
        self.adjust = None
        if plan.p_kind == P_REDUCE:
            self.adjust = FactorizedReduction(f, bn_momentum=self.bn_momentum,
                                              name="adjust_reduction")
        elif plan.p_kind in (P_PROJECT, P_DYNAMIC):
            self.adjust = self._conv1x1("adjust_projection")
        if self.adjust is not None:
            self.adjust.build(p_shape)

        batch, height, width = ip_shape[0], ip_shape[1], ip_shape[2]
        half = (None if height is None else -(-height // 2),
                None if width is None else -(-width // 2))
        spatial = {"all": (height, width), "state1": (height, width), "inputs": (height, width),
                   "blocks": half}
        out_h, out_w = half if plan.reduction else (height, width)
        # Under TensorFlow, a small cell keeps its switches function calls and its states one
        # tensor (its ops' launches outweigh their arithmetic); a large one lowers its
        # switches into the step's graph, where oneDNN's kernels pay, and keeps its states
        # in a tensor list, which copies no stack (`_LARGE_FROM_VALUES`).
        self._large = (out_h is None or out_w is None
                       or out_h * out_w * f >= _LARGE_FROM_VALUES)
        # One op layer per candidate, never called: the code (`stateless_call`) each block
        # runs with its own slice of the flat weights. Kept out of Keras' tracking, so its
        # own variables are neither trained nor saved.
        templates = []
        for i, (group, op, variant) in enumerate(plan.candidates):
            # An exact pooling reads the first F channels (its input's real ones).
            channels = f if variant == EXACT else plan.group_widths[group]
            shape = (batch,) + spatial[group] + (channels,)
            template = self._candidate(op, variant, plan.group_strides(group),
                                       f"{i}_{op}_{variant}_{group}")
            if template is not None and not template.built:
                _build_template(template, shape)
            templates.append(template)
        object.__setattr__(self, "_templates", templates)
        self._t_spans, self._s_spans, self._s_size = _layer_spans(templates)
        # For each candidate, each op layer variable in the order of the layer's `weights`:
        # `(name, kind, start, size, shape)`, its columns in the side's flat variable of
        # `kind` ("trainable" or "state").
        layout, columns = [], {"trainable": [], "state": []}
        for i, template in enumerate(templates):
            if template is None:
                layout.append(None)
                continue
            where = {}
            for kind, variables, spans in (
                ("trainable", template.trainable_variables, self._t_spans[i]),
                ("state", template.non_trainable_variables, self._s_spans[i]),
            ):
                for v, (start, size, shape) in zip(variables, spans):
                    where[id(v)] = (v.name, kind, start, size, shape)
                    columns[kind].append((v.name, shape))
            layout.append([where[id(v)] for v in template.weights])
        object.__setattr__(self, "_layout", layout)
        # Each side's candidates' weights (and moving statistics) as one `[B, size]`
        # variable: row k is block k's, in the order of the spans. One variable per side and
        # kind, not one per op layer variable: a step reads, differentiates and updates a
        # few tensors instead of a thousand.
        flat = []
        for side_name in ("left", "right"):
            side = {}
            for kind, suffix in (("trainable", "weights"), ("state", "statistics")):
                side[kind] = None if not columns[kind] else self.add_weight(
                    shape=(b, sum(math.prod(shape) for _, shape in columns[kind])),
                    initializer=_FlatInitializer(columns[kind]),
                    trainable=kind == "trainable", name=f"{side_name}_{suffix}",
                )
            flat.append(side)
        object.__setattr__(self, "_flat", flat)

        self.output_adjust = {}
        if plan.reduction:
            for i, channels in ((0, f), (1, plan.state1_width)):
                layer = FactorizedReduction(f, bn_momentum=self.bn_momentum,
                                            name=f"output_reduction_{i}")
                layer.build((batch, height, width, channels))
                self.output_adjust[str(i)] = layer
        elif plan.state1_projected:
            layer = self._conv1x1("output_projection_1")
            layer.build((batch, height, width, plan.state1_width))
            self.output_adjust["1"] = layer

    def _candidate(self, op, variant, strides, name):
        f = self.plan.filters
        if variant == EXACT and op == "identity":
            return None
        if variant in (EXACT, CONV, PROJECT, REDUCE):
            make = OPS[op]
            extra = ({"recompute_gradient": True} if make.op_class is PoolOp
                     else {"tap_depthwise_gradient": True} if make.op_class is SeparableConvOp
                     else {})
            return make.op_class(f, strides=strides, name=name, bn_momentum=self.bn_momentum,
                                 fused_batch_norm=True, **make.fixed, **extra)
        raise ValueError(f"Unknown branch variant {variant!r}.")

    @property
    def traced_branches(self):
        """The switch branches a traced step holds for the cell's edges (both sides)."""
        return 2 * len(self.plan.candidates)

    @property
    def stacked_variables(self):
        """Every op layer variable of every candidate on both sides, as a `_Slice` of every
        block's part (shape `(B,) + the layer's shape`); its `name` is the layer's own."""
        return [
            _Slice(self._flat[side][kind], None, name, start, size, shape)
            for side in (0, 1) for entries in self._layout if entries is not None
            for name, kind, start, size, shape in entries
        ]

    def block_op(self, block, side, candidate):
        """Candidate `candidate` of edge `side` (0 left, 1 right) of block `block`, as a
        `_BlockOp` (`None` for an identity without weights)."""
        entries = self._layout[candidate]
        if entries is None:
            return None
        weights = [_Slice(self._flat[side][kind], block, name, start, size, shape)
                   for name, kind, start, size, shape in entries]
        group, op, variant = self.plan.candidates[candidate]
        return _BlockOp(
            f"{self.name}/block_{block + 1}_{('left', 'right')[side]}_{op}_{variant}_{group}",
            weights, [w for w, entry in zip(weights, entries) if entry[1] == "state"],
        )

    def compute_output_shape(self, input_shape):
        ip_shape = tuple(input_shape[0])
        h, w = ip_shape[1:3]
        if self.plan.reduction:
            h = None if h is None else -(-h // 2)
            w = None if w is None else -(-w // 2)
        return (ip_shape[0], h, w, self.plan.output_width)

    def _rows(self, side, kind):
        """One side's flat `kind` ("trainable" or "state") variable as a tensor (row k is
        block k's), or None where the space has none."""
        variable = self._flat[side][kind]
        return None if variable is None else ops.convert_to_tensor(variable.value)

    def _branch(self, i, names, state, stateful, training):
        """Candidate `i` as a function of the edge's selected inputs (one per group in
        `names`) and, where the space has weights, one block's flat weights; `state` is the
        block's flat statistics. Returns the op's output (and in training its new statistics
        row)."""
        group, _, variant = self.plan.candidates[i]
        template = self._templates[i]

        def run(*operands):
            x = operands[names.index(group)]
            weights = operands[len(names)] if len(operands) > len(names) else None
            if variant == EXACT:  # an exact pooling or identity reads F real channels
                x = _channels(x, self.plan.filters)
            if template is None:
                return (x, state) if stateful else x
            spans = self._s_spans[i]
            y, new = template.stateless_call(
                _unflat(weights, self._t_spans[i]), _unflat(state, spans), x,
                training=training,
            )
            if not stateful:
                return y
            return y, _replaced(state, spans, new)

        return run

    def _blocks(self, arch, fixed, states, zero, training):
        """Runs the blocks as one loop and returns their outputs, each as wide as `zero`.

        `states` are the states the blocks write after (all the states in a Normal cell, the
        blocks' zero states in a Reduction cell), `zero` a zero state of their shape, and
        `fixed` a Reduction cell's two inputs, or the state 1 of a Normal cell whose state 1
        is a group of its own (otherwise None). Each iteration writes the previous block's
        output into the stack of states, then reads its own inputs (`_write_and_read`)."""
        plan, b = self.plan, self.plan.num_blocks
        entries = ops.reshape(arch[: 5 * b], (b, 5))
        stateful = bool(training) and self._s_size > 0
        weights = [self._rows(side, "trainable") for side in (0, 1)]
        statistics = [self._rows(side, "state") for side in (0, 1)]
        groups = {group for k in range(b) for group in plan.groups_of(k)}
        first_slot = 0 if plan.reduction else 2
        # The carry: the stack of states, the pending block output, a Reduction cell's stack
        # of inputs, and in training the statistics.
        lead = 3 if plan.reduction else 2

        def body(k, carry):
            stack, pending = carry[:2]
            entry = _select(entries, k)
            sources = [entry[0], entry[2]]
            # Block k - 1's output into its slot (block 0 rewrites its own zero slot).
            slot = first_slot + ops.maximum(k - 1, 0)
            inputs = [{}, {}]
            if plan.reduction:
                reads = _read_stack(carry[2], [ops.minimum(s, 1) for s in sources], fixed[0],
                                    self._large)
                for side in (0, 1):
                    inputs[side]["inputs"] = reads[side]
                stack, reads = _write_and_read(
                    stack, slot, pending,
                    [ops.minimum(s, b - 1) for s in sources] if "blocks" in groups else [],
                    self._large)
                for side, read in enumerate(reads):
                    inputs[side]["blocks"] = read
            else:
                stack, reads = _write_and_read(stack, slot, pending, sources, self._large)
                for side in (0, 1):
                    inputs[side]["all"] = reads[side]
                    if "state1" in groups:  # the stem's output, read as it is
                        inputs[side]["state1"] = fixed
            outputs, new_statistics = [], list(carry[lead:])
            for side in (0, 1):
                names = sorted(inputs[side])
                operands = [inputs[side][name] for name in names]
                if weights[side] is not None:
                    operands.append(_select(weights[side], k))
                row_s = None if statistics[side] is None else _select(statistics[side], k)
                result = _switch(entry[2 * side + 1], [
                    self._branch(i, names, row_s, stateful, training)
                    for i in range(len(plan.candidates))
                ], operands, training, self._large)
                if stateful:
                    y, row = result
                    new_statistics[side] = ops.scatter_update(
                        new_statistics[side], ops.reshape(k, (1, 1)), ops.expand_dims(row, 0))
                else:
                    y = result
                outputs.append(y)
            left, right = outputs
            if plan.block_width == plan.filters:
                y = left + right
            else:
                y = ops.where(
                    ops.equal(entry[4], 1),
                    ops.concatenate([left, right], axis=-1),
                    _pad(left + right, plan.block_width),
                )
            return (stack, _pad(y, zero.shape[-1]), *carry[2:lead],
                    *new_statistics)

        # Block 0's write leaves its own slot zero.
        carry = (_stack(states, self._large), zero)
        if plan.reduction:
            carry += (_stack(fixed, self._large),)
        if stateful:
            carry += tuple(statistics)
        carry = ops.fori_loop(0, b, body, carry)
        if stateful:
            for side in (0, 1):
                self._flat[side]["state"].assign(carry[lead + side])
        stack, last = carry[:2]
        return _read_stack(stack, list(range(first_slot, first_slot + b - 1)), zero,
                           self._large) + [last]

    def call(self, inputs, training=None):
        plan, f, b = self.plan, self.plan.filters, self.plan.num_blocks
        if plan.p_kind == P_NONE:
            ip, architecture = inputs
            p = None
        else:
            ip, p, architecture = inputs
        arch = ops.cast(architecture[0, plan.offset: plan.offset + plan.size], "int32")
        h = self.base(ip, training=training)
        if plan.p_kind == P_NONE:
            s1 = ip
        elif plan.p_kind == P_DYNAMIC:
            take = arch[6 * b + 3:]
            s1 = _run_branches(
                arch[6 * b + 2],
                [(lambda: p, self.adjust),
                 (lambda: ops.take(p, take, axis=-1), None)],
                training, self._large,
            )
        elif self.adjust is not None:
            s1 = self.adjust(p, training=training)
        else:
            s1 = p
        if plan.reduction:
            width = plan.group_widths["inputs"]
            fixed = [_pad(h, width), _pad(s1, width)]
            # A zero state at half resolution (a stride-2 "same" output's size).
            zero = _pad(ops.zeros_like(h[:, ::2, ::2, :]), plan.block_width)
            states = [zero] * b
        else:
            width = plan.group_widths["all"]
            zero = ops.zeros_like(_pad(h, width))
            # With a group of its own, state 1 is read as it is and its slot stays zero.
            fixed = s1 if plan.wide_state1 else None
            states = [_pad(h, width), zero if plan.wide_state1 else _pad(s1, width)] + [zero] * b
        block_outputs = [_channels(state, plan.block_width)
                         for state in self._blocks(arch, fixed, states, zero, training)]
        used = arch[5 * b: 5 * b + 2 + b]
        # An input state's slot is reduced or projected only where no block reads it (a read
        # slot is zeroed below), as the child computes it only then.
        shape_of = _channels(block_outputs[0], f) if plan.reduction else h
        slots = [h, s1]
        for i, layer in self.output_adjust.items():
            j = int(i)
            slots[j] = _run_branches(
                used[j],
                [(lambda x=slots[j]: x, layer),
                 (lambda: ops.zeros_like(shape_of), None)],
                training, self._large,
            )
        slots += block_outputs
        keep = 1.0 - ops.cast(used, slots[0].dtype)
        return ops.concatenate([s * keep[i] for i, s in enumerate(slots)], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"plan": dict(self.plan_config), "bn_momentum": self.bn_momentum})
        return config


@keras.saving.register_keras_serializable(package="nasnet_tf")
class SuperNet(keras.Model):
    """A CIFAR-layout NASNet super-network for a cell space; the architecture is an input.

    The layout is that of the search's children (`nasnet_tf.build_nasnet` with `stem="cifar"`,
    no auxiliary head, no drop path): stem -> N normal -> reduction -> N normal -> reduction
    -> N normal -> classifier. Inputs are `{"images": [batch, H, W, C], "architecture":
    [batch, A]}` (int32; every row the same, from `encode`).

    Args:
        num_blocks: B, blocks per cell.
        ops: the candidate op names (default: all 13).
        combine_ops: the candidate combine ops, from `("add", "concat")` (default: both).
        num_cells: N, normal cells per stage.
        penultimate_filters: P = 24 x F.
        stem_multiplier: the stem conv has F x this many filters.
        input_shape: `(height, width, channels)`.
        classes: number of classes.
        batch_norm_momentum: momentum of every batch normalization.
        classifier_activation: activation of the classifier (`None` for logits).

    Example:

    >>> from nasnet_tf import Block, CellGenotype, Genotype
    >>> net = SuperNet(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
    ...                penultimate_filters=48, input_shape=(8, 8, 3), classes=4)
    >>> cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity")])
    >>> arch = net.encode(Genotype(cell, cell))
    >>> x = {"images": keras.ops.ones((2, 8, 8, 3)), "architecture": np.stack([arch] * 2)}
    >>> net.predict(x, verbose=0).shape
    (2, 4)
    """

    def __init__(
        self,
        num_blocks=5,
        ops=None,
        combine_ops=None,
        num_cells=2,
        penultimate_filters=96,
        stem_multiplier=3,
        input_shape=(32, 32, 3),
        classes=10,
        batch_norm_momentum=0.9,
        classifier_activation="softmax",
        name="supernet",
        **kwargs,
    ):
        ops_ = check_names(OP_NAMES if ops is None else ops, "ops", OP_NAMES)
        combine = check_names(
            COMBINE_OPS if combine_ops is None else combine_ops, "combine_ops", COMBINE_OPS
        )
        for value, label in ((num_blocks, "num_blocks"), (num_cells, "num_cells"),
                             (penultimate_filters, "penultimate_filters"), (classes, "classes")):
            validators.positive_int(value, label)
        if penultimate_filters % 48:
            raise ValueError(
                "`penultimate_filters` must be a multiple of 48 (24 x F, with F even for the "
                f"factorized reductions). Received: penultimate_filters={penultimate_filters}"
            )
        validators.positive_float(stem_multiplier, "stem_multiplier")
        input_shape = validators.input_shape(input_shape)
        validators.momentum(batch_norm_momentum, "batch_norm_momentum")

        filters = penultimate_filters // 24
        stem_width = int(filters * stem_multiplier)
        plans, sources = network_plan(num_blocks, ops_, combine, num_cells, filters, stem_width)
        arch_size = plans[-1].offset + plans[-1].size

        images = keras.Input(shape=input_shape, name="images")
        architecture = keras.Input(shape=(arch_size,), dtype="int32", name="architecture")
        x = layers.Conv2D(stem_width, 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name="stem_conv1")(images)
        x = layers.BatchNormalization(momentum=batch_norm_momentum, epsilon=BN_EPSILON,
                                      name="stem_bn1")(x)
        stem = x
        outputs = []
        for plan, source in zip(plans, sources):
            cell = SuperCell(plan, bn_momentum=batch_norm_momentum, name=plan.name)
            if plan.p_kind == P_NONE:
                x = cell([x, architecture])
            else:
                x = cell([x, stem if source == -1 else outputs[source], architecture])
            outputs.append(x)
        x = layers.ReLU(name="final_relu")(x)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        predictions = layers.Dense(classes, activation=classifier_activation, dtype="float32",
                                   name="predictions")(x)
        super().__init__(inputs={"images": images, "architecture": architecture},
                         outputs=predictions, name=name, **kwargs)

        self.num_blocks = num_blocks
        self.candidate_ops = ops_
        self.combine_ops = combine
        self.num_cells = num_cells
        self.penultimate_filters = penultimate_filters
        self.stem_multiplier = stem_multiplier
        self.image_shape = input_shape
        self.classes = classes
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.classifier_activation = classifier_activation
        self.plans = plans
        self.sources = sources
        self.stem_width = stem_width
        self.architecture_size = arch_size

        self._batch_statistics = False
        self._predict_functions = {}

    def compile(self, optimizer="rmsprop", *args, **kwargs):
        """`keras.Model.compile`, with the optimizer's update over one flat vector where that
        is exact, and its variables created at once.

        An elementwise optimizer (see `nasnet_tf.flat_updates`) is wrapped in `FlatUpdates`:
        the same update over the concatenation of the thousands of variables of the
        candidate ops, instead of a few dozen operations for each variable in every step.
        `self.optimizer.inner_optimizer` is then the optimizer passed here.

        The optimizer is built here: built on the first `train_on_batch` instead (Keras
        builds it lazily there), each of its variables costs a conditional initializer
        inside the traced training function: with thousands of variables that is most of
        the first step under TensorFlow (77 -> 44 s for 5 ops, B=2 on a 2-core CPU).
        """
        optimizer = keras.optimizers.get(optimizer)
        if flat_updates_apply(optimizer) and not _distributed(self):
            optimizer = FlatUpdates(optimizer)
        super().compile(optimizer, *args, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        self._compiled_state_built = False

    def _build_compiled_state(self, y):
        """Creates the compiled loss' and metrics' variables from one label row.

        TensorFlow's trainer otherwise creates them while tracing the first step, and a
        `tf.function` that creates variables is traced twice: with `metrics=["accuracy"]`
        the first step of `cifar5` took 151 s instead of 73 s. (JAX's trainer builds them
        with a symbolic pass over the whole network, which this makes unnecessary.)
        """
        if getattr(self, "_compiled_state_built", True) or y is None:
            return
        build_compiled_state(self, label_row(y=y))
        self._compiled_state_built = True

    def train_on_batch(self, x, y=None, *args, **kwargs):
        self._build_compiled_state(y)
        return super().train_on_batch(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        self._build_compiled_state(y)
        return super().test_on_batch(x, y, *args, **kwargs)

    # Under TensorFlow, the compiled functions run without Grappler's graph rewrites
    # (`nasnet_tf.tf_graph_rewrites`): they cost a third of the first step, and win nothing
    # on a graph that is mostly branches a step does not run.
    def make_train_function(self, force=False):
        super().make_train_function(force)
        self.train_function = _tf_rewrite("without_graph_rewrites", self.train_function)
        return self.train_function

    def make_test_function(self, force=False):
        super().make_test_function(force)
        self.test_function = _tf_rewrite("without_graph_rewrites", self.test_function)
        return self.test_function

    def make_predict_function(self, force=False):
        super().make_predict_function(force)
        self.predict_function = _tf_rewrite("without_graph_rewrites", self.predict_function)
        return self.predict_function

    def call(self, inputs, training=None, mask=None, **kwargs):
        # `predict_with_batch_statistics` traces its own predict function with this flag on.
        if self._batch_statistics:
            training = True
        # Under TensorFlow, a traced step sees the batch size as unknown: the zero gradients
        # of the inputs a branch does not read then stay operations instead of constants
        # folded into the graph (`nasnet_tf.tf_graph_rewrites`).
        inputs = _tf_rewrite("unknown_batch", inputs)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    # -- scoring without pooled statistics ----------------------------------------------------
    def _predict_function_for(self, batch_statistics):
        """Swaps in the compiled predict function of one mode (each traced once)."""
        mode = bool(batch_statistics)
        current = self._batch_statistics
        if self.predict_function is not None:
            self._predict_functions[current] = self.predict_function
        self._batch_statistics = mode
        self.predict_function = self._predict_functions.get(mode)

    def predict_with_batch_statistics(self, inputs):
        """Like `predict_on_batch`, with every batch normalization on the batch's own statistics.

        This is how ENAS scores architectures under shared weights: the moving statistics
        hold an average over every architecture trained, which fits none of them. As in
        training, the moving statistics of the architecture's path move towards the batch's;
        keep them with `moving_statistics()` / `restore_moving_statistics()` where that
        matters. Compiled once (a second predict function beside the ordinary one).

        Args:
            inputs: `{"images", "architecture"}` as for `predict_on_batch`.

        Returns:
            The class probabilities, a NumPy array.
        """
        self._predict_function_for(True)
        try:
            return self.predict_on_batch(inputs)
        finally:
            self._predict_function_for(False)

    def moving_statistics(self):
        """A copy of every non-trainable value (the batch normalizations' moving statistics)."""
        return [np.array(ops.convert_to_numpy(v)) for v in self.non_trainable_variables]

    def restore_moving_statistics(self, values):
        """Puts back what `moving_statistics()` returned."""
        for variable, value in zip(self.non_trainable_variables, values):
            variable.assign(value)

    def recalibrate(self, genotype, batches):
        """Sets the moving statistics on `genotype`'s path to their mean over `batches`.

        Single-path one-shot NAS' batch-norm recalibration (Guo et al. 2019): statistics
        pooled over many architectures fit none, so before a candidate is scored with moving
        statistics, its own are measured on a few training batches (each with the
        candidate's batch statistics, as in training). Weights are untouched; the
        statistics off the path too.

        Args:
            genotype: the architecture (a `Genotype`, its dict, or its `encode` vector).
            batches: an iterable of image batches, each of the batch size the network is
                used with (one compiled function serves every batch).
        """
        if isinstance(genotype, np.ndarray):
            raise ValueError("`recalibrate` needs the genotype, not its encoding.")
        genotype = self._check_genotype(genotype)
        arch = self.encode(genotype)
        stats = [
            v for layer in self.path_layers(genotype) for v in layer.non_trainable_variables
            if v.name in ("moving_mean", "moving_variance")
        ]
        m = self.batch_norm_momentum
        initial = [0.0 if v.name == "moving_mean" else 1.0 for v in stats]
        totals, count = None, 0
        for images in batches:
            _write([(variable, np.full(variable.shape, value, variable.dtype))
                    for variable, value in zip(stats, initial)])
            self.predict_with_batch_statistics(self.inputs_for(images, arch))
            # After one update from (0, 1): moving = m * initial + (1 - m) * batch statistic.
            measured = [(_read(v).astype("float64") - m * value) / (1 - m)
                        for v, value in zip(stats, initial)]
            totals = measured if totals is None else [a + b for a, b in zip(totals, measured)]
            count += 1
        if count == 0:
            raise ValueError("`recalibrate` needs at least one batch of images.")
        _write([(variable, (total / count).astype(variable.dtype))
                for variable, total in zip(stats, totals)])

    # -- architectures ------------------------------------------------------------------------
    def _check_genotype(self, genotype):
        if isinstance(genotype, dict):
            genotype = Genotype.from_dict(genotype)
        if not isinstance(genotype, Genotype):
            raise ValueError(
                "`genotype` must be a nasnet_tf.Genotype or its dict. "
                f"Received: genotype={genotype!r}"
            )
        for cell_type in ("normal", "reduction"):
            check_cell(getattr(genotype, cell_type), self.num_blocks, self.candidate_ops,
                       self.combine_ops, cell_type)
        return genotype

    def encode(self, genotype):
        """The architecture input of `genotype`: an int32 vector of length
        `architecture_size` (feed it as every row of the `"architecture"` input)."""
        arch, _ = encode_network(self.plans, self.sources, self._check_genotype(genotype))
        return arch

    def inputs_for(self, images, genotype_or_arch):
        """`{"images": images, "architecture": ...}` with the architecture on every row."""
        arch = genotype_or_arch
        if not isinstance(arch, np.ndarray):
            arch = self.encode(arch)
        n = int(ops.shape(images)[0])
        return {"images": images, "architecture": np.tile(arch[None, :], (n, 1))}

    def child_config(self):
        """The `nasnet_tf.build_nasnet` arguments of the children this network stands for."""
        return {
            "preset": "cifar",
            "num_cells": self.num_cells,
            "penultimate_filters": self.penultimate_filters,
            "stem_multiplier": self.stem_multiplier,
            "input_shape": self.image_shape,
            "classes": self.classes,
            "auxiliary_head": False,
            "drop_path_keep_prob": 1.0,
            "batch_norm_momentum": self.batch_norm_momentum,
            "classifier_activation": self.classifier_activation,
        }

    # -- weights in and out -------------------------------------------------------------------
    def load_child_weights(self, child, genotype):
        """Copies a standalone child's weights into this network's path for `genotype`.

        Args:
            child: a `nasnet_tf.NASNet` of `genotype` with this network's layout (e.g.
                `build_nasnet(genotype, **supernet.child_config())`).
            genotype: the child's `Genotype`.
        """
        self._transfer(child, self._check_genotype(genotype), into_supernet=True)

    def child_weights(self, genotype, child=None):
        """Copies this network's path for `genotype` into a standalone child model.

        Args:
            genotype: the architecture.
            child: the model to fill; by default a new `build_nasnet(genotype,
                **child_config())`.

        Returns:
            The child model, computing what this network computes for `genotype`.
        """
        from nasnet_tf.builder import build_nasnet

        genotype = self._check_genotype(genotype)
        if child is None:
            child = build_nasnet(genotype, **self.child_config())
        self._transfer(child, genotype, into_supernet=False)
        return child

    def _transfer(self, child, genotype, into_supernet):
        _, layouts = encode_network(self.plans, self.sources, genotype)
        arch = self.encode(genotype)
        assignments = []

        def copy(child_layer, super_layer, rows):
            if into_supernet:
                assignments.extend(_copy_into_supernet(child_layer, super_layer, rows))
            else:
                assignments.extend(_copy_into_child(child_layer, super_layer, rows))
        for name in ("stem_conv1", "stem_bn1"):
            copy(child.get_layer(name), self.get_layer(name), None)
        stem_layout = np.arange(self.stem_width)
        for index, (plan, source) in enumerate(zip(self.plans, self.sources)):
            cell = genotype.reduction if plan.reduction else genotype.normal
            mine, theirs = self.get_layer(plan.name), child.get_layer(plan.name)
            ip_layout = stem_layout if index == 0 else layouts[index - 1]
            copy(theirs.base, mine.base, ip_layout)
            if theirs.adjust is not None:
                p_layout = stem_layout if source == -1 else layouts[source]
                copy(theirs.adjust, mine.adjust, p_layout)
            entries = arch[plan.offset: plan.offset + plan.size]
            widths = plan.child_widths(cell)
            for k, block in enumerate(cell.blocks):
                for side, state in ((0, block.input_a), (1, block.input_b)):
                    target = mine.block_op(k, side, int(entries[5 * k + 2 * side + 1]))
                    if target is not None:
                        copy(theirs.block_ops[k][side], target, np.arange(widths[state]))
            for key, layer in theirs.output_adjust.items():
                copy(layer, mine.output_adjust[key], np.arange(widths[int(key)]))
        copy(child.get_layer("predictions"), self.get_layer("predictions"), layouts[-1])
        _write(assignments)

    # -- fresh weights ------------------------------------------------------------------------
    def path_layers(self, genotype):
        """The layers a child of `genotype` runs through (stem, cells' parts, classifier)."""
        arch = self.encode(genotype)
        path = [self.get_layer("stem_conv1"), self.get_layer("stem_bn1")]
        for plan in self.plans:
            cell = self.get_layer(plan.name)
            path.append(cell.base)
            if cell.adjust is not None:
                path.append(cell.adjust)
            entries = arch[plan.offset: plan.offset + plan.size]
            for k in range(self.num_blocks):
                for side in (0, 1):
                    layer = cell.block_op(k, side, int(entries[5 * k + 2 * side + 1]))
                    if layer is not None:
                        path.append(layer)
            path.extend(cell.output_adjust.values())
        path.append(self.get_layer("predictions"))
        return path

    def reinitialize(self, seed=None, genotype=None):
        """Draws weights afresh (as a new network would start), in place.

        The compiled train and predict functions stay valid, so a search can give each child
        fresh weights without tracing or compiling again.

        Args:
            seed: int or None; the same seed draws the same weights.
            genotype: if given, only the weights on this architecture's path are drawn.
        """
        rng = np.random.default_rng(seed)
        if genotype is None:
            variables = self._block_weights()
        else:
            variables = [w for layer in self.path_layers(genotype) for w in layer.weights]
        assignments = []
        for variable in variables:
            draw = np.random.default_rng(int(rng.integers(2**31 - 1)))
            assignments.append((variable, _host_draw(variable.name, tuple(variable.shape), draw,
                                                     dtype=variable.dtype)))
        _write(assignments)

    def _block_weights(self):
        """`self.weights`, each cell's flat variable as its op layer variables' block
        slices."""
        slices = {}
        for cell in self.layers:
            if isinstance(cell, SuperCell):
                for part in cell.stacked_variables:
                    slices.setdefault(id(part.variable), []).extend(
                        part.block(k) for k in range(cell.plan.num_blocks))
        return [s for w in self.weights for s in slices.get(id(w), [w])]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_blocks": self.num_blocks,
            "ops": list(self.candidate_ops),
            "combine_ops": list(self.combine_ops),
            "num_cells": self.num_cells,
            "penultimate_filters": self.penultimate_filters,
            "stem_multiplier": self.stem_multiplier,
            "input_shape": list(self.image_shape),
            "classes": self.classes,
            "batch_norm_momentum": self.batch_norm_momentum,
            "classifier_activation": self.classifier_activation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _distributed(model):
    """Whether `model` is placed by a distribution (a `tf.distribute` strategy it was built
    under, or a `keras.distribution`): `FlatUpdates` is for one device."""
    return (keras.distribution.distribution() is not None
            or getattr(model, "_distribute_strategy", None) is not None)


def _tf_rewrite(name, value):
    """`nasnet_tf.tf_graph_rewrites.<name>(value)` under TensorFlow, `value` as it is else."""
    if keras.backend.backend() != "tensorflow":
        return value
    from nasnet_tf import tf_graph_rewrites

    return getattr(tf_graph_rewrites, name)(value)


def _initializer_for(name, rank):
    """The initializer the layers of this package give a variable of this name and rank."""
    if name in ("gamma", "moving_variance"):
        return keras.initializers.Ones()
    if name in ("beta", "moving_mean", "bias"):
        return keras.initializers.Zeros()
    if name == "kernel" and rank == 4:
        return keras.initializers.HeNormal()
    if name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
        return keras.initializers.GlorotUniform()
    raise ValueError(f"No initializer known for a variable named {name!r} of rank {rank}.")


def _fans(shape):
    """`(fan_in, fan_out)` of a weight shape, as Keras' variance-scaling initializers count."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def _host_draw(name, shape, rng, blocks=None, dtype=None):
    """A NumPy draw from the distribution of `_initializer_for(name, len(shape))`.

    The same distribution as the Keras initializer's (a truncated normal is cut at two
    standard deviations, as Keras' is), drawn on the host: under JAX each new shape of a
    Keras random draw is a compilation. With `blocks`, `blocks` independent draws stacked on
    a new leading axis.

    Args:
        name: the variable's name in its layer (e.g. `"kernel"`, `"gamma"`).
        shape: the layer's variable shape.
        rng: a `numpy.random.Generator`.
        blocks: None, or the number of draws to stack.
        dtype: the float dtype of the result (default: Keras' float type).
    """
    initializer = _initializer_for(name, len(shape))
    full = tuple(shape) if blocks is None else (int(blocks),) + tuple(shape)
    dtype = keras.backend.standardize_dtype(dtype)
    if isinstance(initializer, keras.initializers.Ones):
        return np.ones(full, dtype)
    if isinstance(initializer, keras.initializers.Zeros):
        return np.zeros(full, dtype)
    fan_in, fan_out = _fans(tuple(shape))
    fan = {"fan_in": fan_in, "fan_out": fan_out}.get(initializer.mode, (fan_in + fan_out) / 2)
    scale = initializer.scale / max(1.0, fan)
    if initializer.distribution == "truncated_normal":
        values = rng.standard_normal(full)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        values *= math.sqrt(scale) / 0.87962566103423978
    else:  # uniform: `_initializer_for` gives He normal (truncated) or Glorot uniform
        limit = math.sqrt(3.0 * scale)
        values = rng.uniform(-limit, limit, full)
    return values.astype(dtype)


def _pairs(source, target):
    mine, theirs = source.weights, target.weights
    if len(mine) != len(theirs):
        raise ValueError(
            f"Cannot copy weights from {source.name!r} ({len(mine)} weights) to "
            f"{target.name!r} ({len(theirs)} weights): the layers differ."
        )
    return zip(mine, theirs)


def _row_axis(array):
    return 2 if array.ndim == 4 else 0


def _copy_into_supernet(child_layer, super_layer, rows):
    """The `(variable, value)` assignments that put `child_layer`'s weights into
    `super_layer`'s (its input rows at `rows` where the super-network's input is wider)."""
    assignments = []
    for src, dst in _pairs(child_layer, super_layer):
        value = _read(src)
        if tuple(src.shape) != tuple(dst.shape):
            full = _read(dst)
            index = [slice(None)] * full.ndim
            index[_row_axis(full)] = rows
            full[tuple(index)] = value
            value = full
        assignments.append((dst, value))
    return assignments


def _copy_into_child(child_layer, super_layer, rows):
    """The assignments that put `super_layer`'s weights (rows `rows`) into `child_layer`'s."""
    assignments = []
    for dst, src in _pairs(child_layer, super_layer):
        value = _read(src)
        if tuple(src.shape) != tuple(dst.shape):
            value = np.take(value, rows, axis=_row_axis(value))
        assignments.append((dst, value))
    return assignments
