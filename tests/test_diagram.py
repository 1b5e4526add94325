"""Cell diagrams: the graph must be NASNet-A's published structure (Zoph et al. 2018, Fig. 4);
pictures must come out as real PNG / SVG files without Graphviz."""

import os
import xml.etree.ElementTree as ET

import pytest

from nasnet_tf import NASNET_A, Block, CellGenotype, Genotype
from nasnet_tf.diagram import (
    _layout,
    cell_graph,
    draw_cell,
    draw_genotype,
    format_cell,
    format_genotype,
    to_dot,
)

# The paper's Fig. 4, written out by hand from the figure (not from the genotype code):
# each block as (input of op A, op A, input of op B, op B); inputs named as in the figure.
PAPER_NORMAL = [
    ("h_i", "sep 5x5", "h_{i-1}", "sep 3x3"),
    ("h_{i-1}", "sep 5x5", "h_{i-1}", "sep 3x3"),
    ("h_i", "avg 3x3", "h_{i-1}", "identity"),
    ("h_{i-1}", "avg 3x3", "h_{i-1}", "avg 3x3"),
    ("h_i", "sep 3x3", "h_i", "identity"),
]
PAPER_NORMAL_CONCAT = {"h_{i-1}", "block0", "block1", "block2", "block3", "block4"}
PAPER_REDUCTION = [
    ("h_i", "sep 5x5", "h_{i-1}", "sep 7x7"),
    ("h_i", "max 3x3", "h_{i-1}", "sep 7x7"),
    ("h_i", "avg 3x3", "h_{i-1}", "sep 5x5"),
    ("block1", "identity", "block0", "avg 3x3"),
    ("block0", "sep 3x3", "h_i", "max 3x3"),
]
PAPER_REDUCTION_CONCAT = {"block1", "block2", "block3", "block4"}


def _named(graph):
    """Maps the graph's ids to the figure's names (h_i, h_{i-1}, blockK, concat)."""
    labels = {node_id: label for node_id, label, _ in graph.nodes}

    def name(node_id):
        if node_id in ("h0", "h1"):
            return labels[node_id]
        if node_id == "out":
            return "concat"
        return "block" + node_id[1:]

    return name, labels


def _check_against_paper(graph, blocks, concat):
    name, labels = _named(graph)
    kinds = {node_id: kind for node_id, _, kind in graph.nodes}
    assert sorted(kinds.values()).count("op") == 2 * len(blocks)
    assert sorted(kinds.values()).count("combine") == len(blocks)
    assert [labels[i] for i in ("h0", "h1")] == ["h_i", "h_{i-1}"]
    edges = set(graph.edges)
    assert len(edges) == len(graph.edges)  # no duplicates
    for k, (in_a, op_a, in_b, op_b) in enumerate(blocks):
        assert labels[f"b{k}"] == "add"  # NASNet-A only adds
        found = set()
        for side in ("a", "b"):
            op_id = f"b{k}_{side}"
            (source,) = [s for s, d in edges if d == op_id]
            assert (op_id, f"b{k}") in edges
            found.add((name(source), labels[op_id]))
        assert found == {(in_a, op_a), (in_b, op_b)}, f"block {k}"
    assert {name(s) for s, d in edges if d == "out"} == concat
    # Every edge is accounted for: 2 per op and one per concatenated state.
    assert len(edges) == 4 * len(blocks) + len(concat)


def test_nasnet_a_normal_cell_matches_the_paper():
    _check_against_paper(cell_graph(NASNET_A.normal), PAPER_NORMAL, PAPER_NORMAL_CONCAT)


def test_nasnet_a_reduction_cell_matches_the_paper():
    _check_against_paper(
        cell_graph(NASNET_A.reduction), PAPER_REDUCTION, PAPER_REDUCTION_CONCAT
    )


def test_concat_combine_and_dot_source():
    cell = CellGenotype([Block(0, 1, "conv_1x7_7x1", "max_pool_5x5", "concat"),
                         Block(2, 2, "identity", "dil_conv_3x3")])
    graph = cell_graph(cell, "Searched")
    assert graph.node("b0") == ("b0", "concat", "combine")
    assert graph.node("b0_a")[1] == "1x7 then 7x1 conv"
    # block 1 reads block 0 twice; the inputs that no block reads form the output
    assert ("b0", "b1_a") in graph.edges and ("b0", "b1_b") in graph.edges
    assert {s for s, d in graph.edges if d == "out"} == {"b1"}
    dot = to_dot(graph)
    assert dot.startswith("digraph cell {") and dot.rstrip().endswith("}")
    assert dot.count("->") == len(graph.edges)
    assert 'label="Searched"' in dot


def test_layout_keeps_rows_and_routes_long_edges_between_rows():
    graph = cell_graph(NASNET_A.reduction)
    positions, routes = _layout(graph)
    ys = {node_id: y for node_id, (x, y) in positions.items()}
    assert ys["h0"] == ys["h1"] == 0 and ys["out"] == max(ys.values())
    for (src, dst), points in routes.items():
        assert points[0] == positions[src] and points[-1] == positions[dst]
        rows = [y for _, y in points]
        assert rows == list(range(int(rows[0]), int(rows[-1]) + 1))  # one point per row
    # no two nodes share a position
    assert len(set(positions.values())) == len(positions)


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_draw_genotype_writes_png_svg_and_dot(tmp_path):
    paths = draw_genotype(NASNET_A, tmp_path, engine="matplotlib")
    assert sorted(paths) == ["normal", "reduction"]
    for kind in ("normal", "reduction"):
        dot, png, svg = paths[kind]
        assert dot.endswith(f"{kind}_cell.dot") and os.path.getsize(dot) > 0
        width, height = _png_size(png)
        assert width > 300 and height > 150
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        text = open(svg).read()
        assert "concat" in text or "<path" in text
    # no temporary files left behind
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{k}_cell.{e}" for k in ("normal", "reduction") for e in ("dot", "png", "svg")
    )


def test_draw_cell_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown diagram format 'pdf'"):
        draw_cell(NASNET_A.normal, tmp_path / "x", formats=["pdf"])
    with pytest.raises(ValueError, match="Unknown diagram engine 'neato'"):
        draw_cell(NASNET_A.normal, tmp_path / "x", engine="neato")
    with pytest.raises(ValueError, match="must be a nasnet_tf.Genotype"):
        draw_genotype({"normal": []}, tmp_path)
    assert os.listdir(tmp_path) == []


def test_format_genotype_text():
    text = format_genotype(NASNET_A)
    assert "Normal cell:" in text and "Reduction cell" in text
    assert "  5 = identity(3) + avg_pool_3x3(2)" in text
    assert format_cell(NASNET_A.normal).splitlines()[-1] == (
        "  output = concat(h_{i-1}, 2, 3, 4, 5, 6)"
    )
    g = Genotype([Block(0, 1, "identity", "conv_3x3", "concat")],
                 [Block(1, 0, "max_pool_7x7", "conv_1x1")])
    assert "2 = identity(h_i) || conv_3x3(h_{i-1})" in format_genotype(g)


def test_dot_engine_uses_graphviz_when_present(tmp_path):
    import shutil

    if shutil.which("dot") is None:
        with pytest.raises(ValueError, match="needs Graphviz's `dot` on PATH"):
            draw_cell(NASNET_A.normal, tmp_path / "normal", engine="dot")
        assert os.listdir(tmp_path) == []
    else:
        paths = draw_cell(NASNET_A.normal, tmp_path / "normal", engine="dot")
        assert _png_size(paths[1])[0] > 100
        assert ET.parse(paths[2]).getroot().tag.endswith("svg")
