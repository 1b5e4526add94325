"""The static plan of a NASNet super-network, and the encoding of a genotype as its input.

A super-network (`nasnet_tf.supernet.SuperNet`) holds every candidate op on every edge of a
NASNet cell space; a child architecture selects one path through it. This module is the pure
bookkeeping behind that: for each cell position of the network, the widths of its hidden states,
the candidate branches of each edge, and where each channel of a child's tensors sits in the
super-network's fixed-width tensors. It holds no layers and imports no backend.

Fixed shapes for every child (the cell's output is read by two later cells, whatever its
architecture):

- Inside a cell, the states an edge may read are padded with zero channels to one width per
  group (a Reduction cell has two groups: its inputs at full resolution, read with stride 2, and
  its block outputs at half resolution; the first Normal cell's state 1, the stem's output,
  is a group of its own where it is at least twice as wide as the cell's other states). A
  block state is `F` channels wide after `add` and `2F` after `concat`: the super-network
  carries every block state at `2F` channels when the space has `concat`, the real channels
  first, so a child's concat block is computed exactly.
- A cell's output concatenates every state in a fixed slot (`F` for the two inputs, the block
  width for each block), multiplied by 0 where a block reads the state. The child's output
  (only the unused states, in index order) is thus the super-network's output with the zero
  slots removed; the next cell's 1x1 convs see the same numbers once their kernel rows are
  placed at the slots' channels (see `SuperNet.load_child_weights`).
- Pooling and identity in the child add a 1x1 projection only where their input is not `F`
  channels wide; each edge holds both variants and the encoding picks the one the child has.
"""

import numpy as np

from nasnet_tf.genotype import CellGenotype

# Branch variants: how a candidate op is applied to a padded input.
CONV = "conv"  # ops whose first layer reads every input channel (rows mapped by the layout)
EXACT = "exact"  # pooling / identity on an input of exactly F channels: no projection
PROJECT = "project"  # pooling / identity on an input of another width: 1x1 projection
REDUCE = "reduce"  # identity with stride 2: a factorized reduction

_POOL_OR_IDENTITY = ("identity", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7")

# What the cell's previous input `p` goes through before it is state 1.
P_NONE = "none"  # the first cell: state 1 is its own input, as in slim and keras.applications
P_REDUCE = "reduce"  # p has twice the resolution: a factorized reduction
P_PROJECT = "project"  # p has a fixed width other than F: a 1x1 projection
P_IDENTITY = "identity"  # p has a fixed width of F: used as it is
P_DYNAMIC = "dynamic"  # p is a cell output at this resolution: its width depends on the child


class CellPlan:
    """Static facts of one cell position of a super-network.

    Args:
        name: the cell's layer name (as `nasnet_tf.NASNet` names it).
        reduction: whether it is a Reduction cell.
        filters: F, the cell's filters.
        num_blocks: B.
        ops: the candidate op names.
        combine_ops: the candidate combine ops.
        ip_width: channels of the cell's input h_i in the super-network.
        p_kind: one of the `P_*` kinds.
        p_width: channels of the previous input in the super-network (0 for `P_NONE`).
        offset: where this cell's entries start in the architecture vector.
    """

    def __init__(
        self, name, reduction, filters, num_blocks, ops, combine_ops, ip_width, p_kind, p_width,
        offset,
    ):
        self.name = name
        self.reduction = bool(reduction)
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.ops = tuple(ops)
        self.combine_ops = tuple(combine_ops)
        self.ip_width = int(ip_width)
        self.p_kind = p_kind
        self.p_width = int(p_width)
        self.offset = int(offset)
        f = self.filters
        self.block_width = 2 * f if "concat" in self.combine_ops else f
        # State 1 is the raw input (the stem's output) in the first cell, F channels elsewhere.
        self.state1_width = self.ip_width if p_kind == P_NONE else f
        # Channel offset of each state's slot in the cell's output.
        widths = [f, f] + [self.block_width] * self.num_blocks
        self.slot_offsets = np.cumsum([0] + widths[:-1]).tolist()
        self.output_width = int(sum(widths))
        self.state1_projected = self.state1_width != f  # output slot 1 needs a projection
        # The first Normal cell's state 1 (the stem's output, 3F wide) has a group of its
        # own where the cell's other states are at most half as wide (an `add`-only space):
        # in the group of every state, the state stack and every op reading a state would
        # be padded to 3F channels. The group costs a branch per op (compilation and
        # memory); with `concat` (blocks 2F wide) the padding it saves is too small to pay
        # for them (`benchmarks/RESULTS.md`, "state 1 as a group of its own").
        self.wide_state1 = (not self.reduction
                            and self.state1_width >= 2 * max(f, self.block_width))
        if self.reduction:
            self.group_widths = {"inputs": max(f, self.state1_width), "blocks": self.block_width}
        elif self.wide_state1:
            self.group_widths = {"all": max(f, self.block_width), "state1": self.state1_width}
        else:
            self.group_widths = {"all": max(f, self.state1_width, self.block_width)}
        self.candidates = self._candidates()

    # -- groups and branches -----------------------------------------------------------------
    def group_of(self, state):
        """The group (name) of a state index, and the state's index within it."""
        if not self.reduction:
            return ("state1", 0) if self.wide_state1 and state == 1 else ("all", state)
        if state < 2:
            return "inputs", state
        return "blocks", state - 2

    def group_strides(self, group):
        return 2 if group == "inputs" else 1

    def _possible_widths(self, group, block):
        f = self.filters
        if group == "inputs":
            return {f, self.state1_width}
        if group == "state1":
            return {self.state1_width}
        inputs = {f} if self.wide_state1 else {f, self.state1_width}
        if group == "all" and block == 0:  # block 0 reads the cell inputs only
            return inputs
        widths = {self.block_width if "concat" in self.combine_ops else f}
        if "add" in self.combine_ops:
            widths.add(f)
        if group == "all":
            widths |= inputs
        return widths

    def groups_of(self, block):
        """The groups block `block` may read."""
        if not self.reduction:
            return ["all", "state1"] if self.wide_state1 else ["all"]
        return ["inputs"] if block == 0 else ["inputs", "blocks"]

    def _candidates(self):
        """The candidate branches of every edge: `(group, op, variant)` triples.

        One list for all the blocks of the cell (their union), as the super-network runs the
        blocks as one loop whose body holds every branch any block may take.
        """
        widths = {}
        for block in range(self.num_blocks):
            for group in self.groups_of(block):
                widths.setdefault(group, set()).update(self._possible_widths(group, block))
        candidates = []
        for group, group_widths in widths.items():
            strides = self.group_strides(group)
            for op in self.ops:
                if op == "identity" and strides == 2:
                    candidates.append((group, op, REDUCE))
                elif op in _POOL_OR_IDENTITY:
                    if self.filters in group_widths:
                        candidates.append((group, op, EXACT))
                    if any(w != self.filters for w in group_widths):
                        candidates.append((group, op, PROJECT))
                else:
                    candidates.append((group, op, CONV))
        return candidates

    def variant_for(self, op, group, width):
        if op == "identity" and self.group_strides(group) == 2:
            return REDUCE
        if op in _POOL_OR_IDENTITY:
            return EXACT if width == self.filters else PROJECT
        return CONV

    # -- the architecture vector --------------------------------------------------------------
    @property
    def p_index_size(self):
        return self.filters if self.p_kind == P_DYNAMIC else 0

    @property
    def size(self):
        """Entries of this cell in the architecture vector."""
        return 5 * self.num_blocks + (2 + self.num_blocks) + 1 + self.p_index_size

    def child_widths(self, cell):
        """Channels of each state of a child whose cell genotype is `cell`."""
        f = self.filters
        return [f, self.state1_width] + [
            2 * f if b.combine == "concat" else f for b in cell.blocks
        ]

    def output_layout(self, cell):
        """For each channel of the child's cell output, its channel in the super-network's."""
        positions = []
        for i in cell.output_states:
            width = self.filters if i < 2 else self.child_widths(cell)[i]
            positions.extend(range(self.slot_offsets[i], self.slot_offsets[i] + width))
        return np.asarray(positions, dtype="int64")

    def encode(self, cell, p_layout=None):
        """This cell's entries of the architecture vector for cell genotype `cell`.

        Args:
            cell: a `CellGenotype` of this space (its output is the "unused states" rule).
            p_layout: for a `P_DYNAMIC` previous input, the output layout of the cell it
                comes from (see `output_layout`).
        """
        widths = self.child_widths(cell)
        entries = []
        for block in cell.blocks:
            for state, op in ((block.input_a, block.op_a), (block.input_b, block.op_b)):
                group, index = self.group_of(state)
                variant = self.variant_for(op, group, widths[state])
                entries += [index, self.candidates.index((group, op, variant))]
            entries.append(1 if block.combine == "concat" else 0)
        used = cell.used_states
        entries += [1 if i in used else 0 for i in range(2 + self.num_blocks)]
        if self.p_kind == P_DYNAMIC:
            if p_layout is not None and len(p_layout) == self.filters:
                entries += [1] + [int(c) for c in p_layout]
            else:
                entries += [0] + [0] * self.filters
        else:
            entries.append(0)
        assert len(entries) == self.size
        return entries

    def get_config(self):
        return {
            "name": self.name,
            "reduction": self.reduction,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "ops": list(self.ops),
            "combine_ops": list(self.combine_ops),
            "ip_width": self.ip_width,
            "p_kind": self.p_kind,
            "p_width": self.p_width,
            "offset": self.offset,
        }


def network_plan(num_blocks, ops, combine_ops, num_cells, filters, stem_width, filter_multiplier=2):
    """The `CellPlan`s of a CIFAR-layout NASNet (stem, 3 stages of N normal cells, 2 reductions).

    Cell names, order and inputs follow `nasnet_tf.NASNet` with `stem="cifar"` and
    `skip_reduction=False`.

    Returns:
        `(plans, sources)`: the plans in network order, and for each the index of the plan its
        previous input comes from (`-1` for the stem, `None` for none).
    """
    plans, sources = [], []
    offset = 0
    # (width, producer index, resolution level) of the current and previous inputs.
    x = (stem_width, -1, 0)
    p = None

    def add(name, reduction, cell_filters):
        nonlocal offset, x, p
        level = x[2]
        if p is None:
            p_kind, p_width, source = P_NONE, 0, None
        elif p[2] != level:
            p_kind, p_width, source = P_REDUCE, p[0], p[1]
        elif p[1] >= 0:
            p_kind, p_width, source = P_DYNAMIC, p[0], p[1]
        elif p[0] != cell_filters:
            p_kind, p_width, source = P_PROJECT, p[0], p[1]
        else:
            p_kind, p_width, source = P_IDENTITY, p[0], p[1]
        plan = CellPlan(
            name, reduction, cell_filters, num_blocks, ops, combine_ops, x[0], p_kind, p_width,
            offset,
        )
        offset += plan.size
        plans.append(plan)
        sources.append(source)
        p = x
        x = (plan.output_width, len(plans) - 1, level + (1 if reduction else 0))

    for stage in range(3):
        stage_filters = filters * filter_multiplier**stage
        if stage:
            add(f"reduction_cell_reduce_{stage * num_cells}", True, stage_filters)
        for i in range(num_cells):
            add(f"normal_cell_{stage * num_cells + i + (stage > 0)}", False, stage_filters)
    return plans, sources


def encode_network(plans, sources, genotype):
    """The architecture vector of `genotype` for a network plan (int32, one entry per plan
    entry), and the output layout of the last cell (for the classifier's rows)."""
    entries, layouts = [], []
    for plan, source in zip(plans, sources):
        cell = genotype.reduction if plan.reduction else genotype.normal
        p_layout = layouts[source] if plan.p_kind == P_DYNAMIC else None
        entries += plan.encode(cell, p_layout)
        layouts.append(plan.output_layout(cell))
    return np.asarray(entries, dtype="int32"), layouts


def check_cell(cell, num_blocks, ops, combine_ops, cell_type):
    """Raises a `ValueError` if `cell` is not in the space of a super-network."""
    cell = CellGenotype.from_value(cell)
    if cell.num_blocks != num_blocks:
        raise ValueError(
            f"The {cell_type} cell has {cell.num_blocks} blocks; the super-network has "
            f"num_blocks={num_blocks}. Received: {cell}"
        )
    if cell.concat != CellGenotype(cell.blocks).concat:
        raise ValueError(
            f"The {cell_type} cell lists its output states {list(cell.concat)}; the "
            "super-network holds cells whose output is every state no block reads "
            f"({list(CellGenotype(cell.blocks).concat)}). Received: {cell}"
        )
    for k, block in enumerate(cell.blocks):
        for name in ("op_a", "op_b"):
            if getattr(block, name) not in ops:
                raise ValueError(
                    f"Block {k} of the {cell_type} cell uses {name}={getattr(block, name)!r}, "
                    f"which is not among the super-network's ops {list(ops)}."
                )
        if block.combine not in combine_ops:
            raise ValueError(
                f"Block {k} of the {cell_type} cell combines with {block.combine!r}; the "
                f"super-network's combine ops are {list(combine_ops)}."
            )
        for name in ("input_a", "input_b"):
            if getattr(block, name) > k + 1:
                raise ValueError(
                    f"Block {k} of the {cell_type} cell reads state {getattr(block, name)}; "
                    f"block {k} may read states 0..{k + 1}."
                )
    return cell
