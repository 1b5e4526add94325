"""Cell diagrams in the style of the NASNet paper's Fig. 4: the cell graph as data, DOT source, and
PNG / SVG pictures.

A cell is drawn bottom-up: the two inputs `h_i` (state 0) and `h_{i-1}` (state 1), then for each
block its two ops (yellow) feeding its combine node (green, `add` or `concat`), and at the top the
output `concat` of the states no block reads. Graphviz's `dot` lays the picture out when it is on
`PATH`; otherwise matplotlib draws the same graph with a layered layout, so pictures always come
out (graphviz is a system package, absent from a fresh machine).
"""

import dataclasses
import os
import shutil
import subprocess
import tempfile

from nasnet_tf.genotype import CellGenotype, Genotype

__all__ = [
    "CellGraph",
    "cell_graph",
    "draw_cell",
    "draw_genotype",
    "format_cell",
    "format_genotype",
    "to_dot",
]

FORMATS = ("png", "svg")
ENGINES = ("auto", "dot", "matplotlib")

_OP_LABELS = {
    "identity": "identity",
    "conv_1x3_3x1": "1x3 then 3x1 conv",
    "conv_1x7_7x1": "1x7 then 7x1 conv",
    "dil_conv_3x3": "3x3 dilated conv",
    "avg_pool_3x3": "avg 3x3",
    "max_pool_3x3": "max 3x3",
    "max_pool_5x5": "max 5x5",
    "max_pool_7x7": "max 7x7",
    "conv_1x1": "1x1 conv",
    "conv_3x3": "3x3 conv",
    "sep_conv_3x3": "sep 3x3",
    "sep_conv_5x5": "sep 5x5",
    "sep_conv_7x7": "sep 7x7",
}
# Fill colours close to the paper's figure: grey inputs, yellow ops, green combiners, blue output.
_COLORS = {"input": "#d9d9d9", "op": "#ffe699", "combine": "#a9d18e", "output": "#9dc3e6"}
_INPUT_LABELS = ("h_i", "h_{i-1}")


@dataclasses.dataclass(frozen=True)
class CellGraph:
    """A cell as a directed graph.

    Attributes:
        nodes: tuple of `(id, label, kind)`; kind is `"input"`, `"op"`, `"combine"` or
            `"output"`. Ids: `"h0"` / `"h1"` for the cell inputs, `"b{k}_a"` / `"b{k}_b"` for
            block k's ops, `"b{k}"` for its combine node (hidden state 2 + k), `"out"`.
        edges: tuple of `(source_id, target_id)`.
        title: the caption.
    """

    nodes: tuple
    edges: tuple
    title: str = ""

    def node(self, node_id):
        for node in self.nodes:
            if node[0] == node_id:
                return node
        raise KeyError(node_id)


def _state_id(index):
    return f"h{index}" if index < 2 else f"b{index - 2}"


def _as_cell(cell):
    if isinstance(cell, CellGenotype):
        return cell
    return CellGenotype.from_value(cell)


def cell_graph(cell, title=""):
    """Builds the graph of one cell.

    Args:
        cell: a `CellGenotype` (or its dict / list of blocks).
        title: a caption, e.g. `"Normal cell"`.

    Returns:
        A `CellGraph`.

    Example:

    >>> from nasnet_tf import NASNET_A
    >>> graph = cell_graph(NASNET_A.normal)
    >>> len(graph.edges)
    26
    """
    cell = _as_cell(cell)
    nodes = [("h0", _INPUT_LABELS[0], "input"), ("h1", _INPUT_LABELS[1], "input")]
    edges = []
    for k, block in enumerate(cell.blocks):
        for side, index, op in (("a", block.input_a, block.op_a), ("b", block.input_b, block.op_b)):
            nodes.append((f"b{k}_{side}", _OP_LABELS.get(op, op), "op"))
            edges.append((_state_id(index), f"b{k}_{side}"))
            edges.append((f"b{k}_{side}", f"b{k}"))
        nodes.append((f"b{k}", block.combine, "combine"))
    nodes.append(("out", "concat", "output"))
    edges.extend((_state_id(i), "out") for i in cell.concat)
    return CellGraph(tuple(nodes), tuple(edges), title)


def _dot_quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(cell, title=""):
    """Returns Graphviz DOT source for one cell (inputs at the bottom, output on top).

    Example:

    >>> from nasnet_tf import NASNET_A
    >>> to_dot(NASNET_A.normal).startswith("digraph")
    True
    """
    graph = cell if isinstance(cell, CellGraph) else cell_graph(cell, title)
    lines = [
        "digraph cell {",
        "  rankdir=BT;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    if graph.title:
        lines.append(f"  label={_dot_quote(graph.title)}; labelloc=t;")
    for node_id, label, kind in graph.nodes:
        color = _dot_quote(_COLORS[kind])
        lines.append(f"  {node_id} [label={_dot_quote(label)}, fillcolor={color}];")
    lines.append("  { rank=same; h0; h1; }")
    for src, dst in graph.edges:
        lines.append(f"  {src} -> {dst};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(graph):
    """Rank of each node for a bottom-up layered layout: inputs 0, a block's ops one below its
    combine node, the combine node two above the highest state its ops read."""
    rank = {"h0": 0, "h1": 0}
    sources = {}
    for src, dst in graph.edges:
        sources.setdefault(dst, []).append(src)
    for node_id, _, kind in graph.nodes:
        if kind == "combine":
            ops_in = sources[node_id]
            rank[node_id] = 2 + max(rank[sources[op][0]] for op in ops_in)
            for op in ops_in:
                rank[op] = rank[node_id] - 1
    rank["out"] = 1 + max(rank.values())
    return rank


def _layout(graph):
    """Positions for a layered drawing. An edge that spans several rows passes through dummy
    points, one per row it crosses, so it runs between boxes rather than through them; each row
    is ordered by the mean x of what feeds it (the barycenter heuristic) to keep crossings few.

    Returns:
        `(positions, routes)`: node id -> `(x, row)`, and edge -> list of `(x, row)` points.
    """
    rank = _layers(graph)
    rows = {0: ["h1", "h0"]}  # h_{i-1} on the left, as in the paper
    order = {node_id: i for i, (node_id, _, _) in enumerate(graph.nodes)}
    preds = {}
    for src, dst in graph.edges:
        chain = [src]
        for r in range(rank[src] + 1, rank[dst]):
            dummy = ("dummy", src, dst, r)
            rows.setdefault(r, []).append(dummy)
            preds[dummy] = [chain[-1]]
            chain.append(dummy)
        preds.setdefault(dst, []).append(chain[-1])
        chain.append(dst)
    for node_id, _, _ in graph.nodes:
        if rank[node_id]:
            rows.setdefault(rank[node_id], []).append(node_id)

    succs = {}
    for item, sources in preds.items():
        for source in sources:
            succs.setdefault(source, []).append(item)

    def slot(item):
        return 0.45 if isinstance(item, tuple) else 1.0

    def place(rows):
        x = {}
        for items in rows.values():
            widths = [slot(i) for i in items]
            total = sum(widths) - (widths[0] + widths[-1]) / 2
            pos = -total / 2
            for j, item in enumerate(items):
                if j:
                    pos += (widths[j - 1] + widths[j]) / 2
                x[item] = pos
        return x

    def crossings(rows, x):
        count = 0
        for items in rows.values():
            segments = [(x[p], x[item]) for item in items for p in preds.get(item, ())]
            count += sum(
                1
                for i, (a0, a1) in enumerate(segments)
                for b0, b1 in segments[i + 1:]
                if (a0 - b0) * (a1 - b1) < 0
            )
        return count

    def tie(item):
        return order[item[2]] - 0.5 if isinstance(item, tuple) else order[item]

    # Barycenter sweeps, up then down, keeping the ordering with the fewest crossings among
    # those that end a down sweep: these put each block's two ops side by side under their
    # combine node, as the paper draws them.
    rows = {r: sorted(rows[r], key=tie) if r else rows[r] for r in sorted(rows)}
    x = place(rows)
    best = (float("inf"), None)
    for _ in range(4):
        for r_order, neighbours in ((sorted(rows)[1:], preds), (sorted(rows)[-2:0:-1], succs)):
            for r in r_order:
                rows[r] = sorted(
                    rows[r],
                    key=lambda i, n=neighbours: (
                        round(sum(x[j] for j in n[i]) / len(n[i]), 6) if n.get(i) else 0.0,
                        tie(i),
                    ),
                )
                x = place(rows)
        count = crossings(rows, x)
        if count < best[0]:
            best = (count, {r: list(items) for r, items in rows.items()})
    rows = best[1]
    x = _straighten(rows, place(rows), preds, succs, slot)
    positions = {node_id: (x[node_id], float(rank[node_id])) for node_id, _, _ in graph.nodes}
    routes = {}
    for src, dst in graph.edges:
        points = [positions[src]]
        points += [(x[("dummy", src, dst, r)], float(r)) for r in range(rank[src] + 1, rank[dst])]
        routes[(src, dst)] = points + [positions[dst]]
    return positions, routes


def _straighten(rows, x, preds, succs, slot, iterations=10):
    """Moves each node towards the mean x of its neighbours, keeping the row order and a
    minimum gap (half the two slots' widths), so edges through dummy points run straight."""
    neighbours = {i: preds.get(i, []) + succs.get(i, []) for items in rows.values() for i in items}
    order = sorted(rows)
    for it in range(iterations):
        for r in order if it % 2 == 0 else order[::-1]:
            items = rows[r]
            want = [sum(x[n] for n in neighbours[i]) / len(neighbours[i]) if neighbours[i]
                    else x[i] for i in items]
            gaps = [(slot(a) + slot(b)) / 2 for a, b in zip(items, items[1:])]
            left, right = list(want), list(want)
            for j in range(1, len(items)):
                left[j] = max(left[j], left[j - 1] + gaps[j - 1])
            for j in range(len(items) - 2, -1, -1):
                right[j] = min(right[j], right[j + 1] - gaps[j])
            # Both passes keep the gaps; so does their mean, which does not favour a side.
            for item, a, b in zip(items, left, right):
                x[item] = (a + b) / 2
    return x


def _draw_matplotlib(graph, paths):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import patches
    from matplotlib import pyplot as plt

    positions, routes = _layout(graph)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    dx, dy, box_w, box_h = 2.0, 1.1, 1.7, 0.5
    fig_w = max(4.0, (max(xs) - min(xs)) * dx * 0.75 + 2.5)
    fig_h = max(3.0, (max(ys) - min(ys)) * dy * 0.75 + 1.8)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))

    # Spread the ends of several edges along a box's top / bottom side.
    def spread(edges_at, key):
        offsets = {}
        for edges in edges_at.values():
            edges = sorted(edges, key=key)
            step = min(0.25, 0.8 * box_w / max(1, len(edges)))
            for j, edge in enumerate(edges):
                offsets[edge] = (j - (len(edges) - 1) / 2) * step
        return offsets

    outgoing, incoming = {}, {}
    for edge in graph.edges:
        outgoing.setdefault(edge[0], []).append(edge)
        incoming.setdefault(edge[1], []).append(edge)
    out_off = spread(outgoing, key=lambda e: routes[e][1][0])
    in_off = spread(incoming, key=lambda e: routes[e][-2][0])
    try:
        ax.set_axis_off()
        for edge in graph.edges:
            points = [(px * dx, py * dy) for px, py in routes[edge]]
            points[0] = (points[0][0] + out_off[edge], points[0][1] + box_h / 2)
            points[-1] = (points[-1][0] + in_off[edge], points[-1][1] - box_h / 2)
            line = dict(color="#404040", lw=0.9)
            if len(points) > 2:
                ax.plot(*zip(*points[:-1]), zorder=1, **line)
            ax.annotate(
                "",
                xy=points[-1],
                xytext=points[-2],
                arrowprops=dict(arrowstyle="-|>", shrinkA=0, shrinkB=0, **line),
                zorder=1,
            )
        for node_id, label, kind in graph.nodes:
            x, y = positions[node_id]
            ax.add_patch(
                patches.FancyBboxPatch(
                    (x * dx - box_w / 2, y * dy - box_h / 2),
                    box_w,
                    box_h,
                    boxstyle="round,pad=0.02,rounding_size=0.12",
                    facecolor=_COLORS[kind],
                    edgecolor="#404040",
                    zorder=2,
                )
            )
            text = f"${label}$" if kind == "input" else label
            size = 9 if len(label) <= 13 else 7
            ax.text(x * dx, y * dy, text, ha="center", va="center", fontsize=size, zorder=3)
        ax.set_xlim(min(xs) * dx - box_w, max(xs) * dx + box_w)
        ax.set_ylim(min(ys) * dy - box_h, max(ys) * dy + box_h)
        if graph.title:
            ax.set_title(graph.title)
        for path in paths:
            fig.savefig(path, format=os.path.splitext(path)[1][1:], bbox_inches="tight", dpi=120)
    finally:
        plt.close(fig)


def _draw_dot(graph, paths, dot_binary):
    source = to_dot(graph)
    for path in paths:
        fmt = os.path.splitext(path)[1][1:]
        subprocess.run(
            [dot_binary, f"-T{fmt}", "-o", path],
            input=source.encode(),
            check=True,
            capture_output=True,
        )


def draw_cell(cell, path, formats=FORMATS, title="", engine="auto"):
    """Draws one cell to `path + "." + fmt` for each format, and writes `path + ".dot"`.

    Every file is written whole or not at all (temp file, then `os.replace`).

    Args:
        cell: a `CellGenotype`.
        path: the output path without extension, e.g. `"runs/normal_cell"`.
        formats: any of `"png"`, `"svg"`.
        title: a caption.
        engine: `"auto"` (`dot` when on `PATH`, else matplotlib), `"dot"` or `"matplotlib"`.

    Returns:
        The list of written file paths (the `.dot` source first).

    Example:

    >>> import tempfile, os
    >>> from nasnet_tf import NASNET_A
    >>> d = tempfile.mkdtemp()
    >>> [os.path.basename(p) for p in draw_cell(NASNET_A.normal, os.path.join(d, "normal"))]
    ['normal.dot', 'normal.png', 'normal.svg']
    """
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"Unknown diagram format {bad[0]!r}. Accepted: {list(FORMATS)}")
    if engine not in ENGINES:
        raise ValueError(f"Unknown diagram engine {engine!r}. Accepted: {list(ENGINES)}")
    dot_binary = shutil.which("dot") if engine in ("auto", "dot") else None
    if engine == "dot" and dot_binary is None:
        raise ValueError("engine='dot' needs Graphviz's `dot` on PATH. Received: engine='dot'")
    graph = cell_graph(cell, title)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    finals = [path + ".dot"] + [f"{path}.{fmt}" for fmt in formats]
    with tempfile.TemporaryDirectory(dir=directory, prefix=".draw-") as tmp:
        temps = [os.path.join(tmp, os.path.basename(p)) for p in finals]
        with open(temps[0], "w") as f:
            f.write(to_dot(graph))
        if dot_binary:
            _draw_dot(graph, temps[1:], dot_binary)
        else:
            _draw_matplotlib(graph, temps[1:])
        for tmp_path, final in zip(temps, finals):
            os.replace(tmp_path, final)
    return finals


def draw_genotype(genotype, directory, formats=FORMATS, engine="auto"):
    """Draws a genotype's Normal and Reduction cells into `directory`.

    Writes `normal_cell.{dot,png,svg}` and `reduction_cell.{dot,png,svg}`.

    Returns:
        A dict `{"normal": [paths], "reduction": [paths]}`.

    Example:

    >>> import tempfile
    >>> from nasnet_tf import NASNET_A
    >>> sorted(draw_genotype(NASNET_A, tempfile.mkdtemp(), formats=["svg"]))
    ['normal', 'reduction']
    """
    if not isinstance(genotype, Genotype):
        raise ValueError(f"`genotype` must be a nasnet_tf.Genotype. Received: {genotype!r}")
    directory = os.fspath(directory)
    return {
        kind: draw_cell(
            getattr(genotype, kind),
            os.path.join(directory, f"{kind}_cell"),
            formats=formats,
            title=f"{kind.capitalize()} cell",
            engine=engine,
        )
        for kind in ("normal", "reduction")
    }


def _state_name(index):
    return _INPUT_LABELS[index] if index < 2 else str(index)


def format_cell(cell):
    """One line per block, e.g. `  2 = sep_conv_5x5(h_i) + sep_conv_3x3(h_{i-1})`, then the
    output. Used by `nasnet-tf show` where pictures are not wanted.

    Example:

    >>> from nasnet_tf import NASNET_A
    >>> print(format_cell(NASNET_A.normal).splitlines()[0])
      2 = sep_conv_5x5(h_i) + sep_conv_3x3(h_{i-1})
    """
    cell = _as_cell(cell)
    lines = []
    for k, b in enumerate(cell.blocks):
        sign = "+" if b.combine == "add" else "||"
        lines.append(
            f"  {2 + k} = {b.op_a}({_state_name(b.input_a)}) {sign} "
            f"{b.op_b}({_state_name(b.input_b)})"
        )
    lines.append("  output = concat(" + ", ".join(_state_name(i) for i in cell.concat) + ")")
    return "\n".join(lines)


def format_genotype(genotype):
    """Both cells as text (`format_cell`), with headers."""
    return (
        "Normal cell:\n" + format_cell(genotype.normal)
        + "\nReduction cell (stride 2 on ops that read h_i or h_{i-1}):\n"
        + format_cell(genotype.reduction)
    )
