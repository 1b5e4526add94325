"""The cell benchmark: the data the project keeps, and the code that builds and reads it."""

import json
import sys

import numpy as np
import pytest
from conftest import ROOT

from nasnet_tf import Genotype

sys.path.insert(0, str(ROOT / "benchmarks"))

import cell_bench  # noqa: E402
import cell_recipe  # noqa: E402

BENCH = ROOT / "benchmarks" / "cell_bench.json"


def test_the_kept_benchmark_has_its_shape():
    bench = json.loads(BENCH.read_text())
    assert bench["space"] == cell_recipe.SPACE
    assert bench["recipe"] == cell_recipe.RECIPE and bench["split"] == cell_recipe.SPLIT
    split = bench["split"]
    # Training and held-out images are disjoint slices of one permutation, held out >= 2,000.
    assert split["train"][1] - split["train"][0] >= 10_000
    assert split["heldout"][0] >= split["train"][1]
    assert split["heldout"][1] - split["heldout"][0] >= 2_000
    assert len(bench["seeds"]) >= 2
    space = cell_recipe.space()
    drawn = [g.to_dict() for g in cell_recipe.draw_genotypes(30, bench["draw_seed"])]
    seen = set()
    for record in bench["records"]:
        assert set(record) >= {"genotype", "seed", "heldout_accuracy"}
        assert record["seed"] in bench["seeds"]
        assert 0.0 <= record["heldout_accuracy"] <= 1.0
        # Every architecture is one of the stated space's uniform draw, in the draw's order.
        assert record["genotype"] == drawn[record["index"]]
        space.encode(Genotype.from_dict(record["genotype"]))  # valid in the stated space
        key = (json.dumps(record["genotype"], sort_keys=True), record["seed"])
        assert key not in seen
        seen.add(key)
    assert bench["summary"] == cell_bench.summary(bench)


def test_draw_is_fixed_and_uniform_over_the_space():
    a = cell_recipe.draw_genotypes(40, 0)
    assert [g.to_json() for g in a] == [g.to_json() for g in cell_recipe.draw_genotypes(40, 0)]
    assert len({g.to_json() for g in a}) == 40
    ops = [b.op_a for g in a for b in g.normal.blocks + g.reduction.blocks]
    assert set(ops) == set(cell_recipe.SPACE["ops"])
    combines = {b.combine for g in a for b in g.normal.blocks}
    assert combines == {"add", "concat"}


def test_rank_statistics_and_percentile():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert cell_recipe.rank_stats(truth, truth)["kendall_tau"] == pytest.approx(1.0)
    reverse = cell_recipe.rank_stats(truth[::-1], truth)
    assert reverse["kendall_tau"] == pytest.approx(-1.0) and reverse["top5_overlap"] == 4
    assert cell_recipe.percentile(0.45, truth) == pytest.approx(100 * 4 / 6)
    assert cell_recipe.percentile(0.4, truth) == pytest.approx(100 * 3.5 / 6)


def test_summary_gives_the_noise_ceiling_over_complete_architectures():
    genotypes = [g.to_dict() for g in cell_recipe.draw_genotypes(4, 0)]
    scores = {0: [0.3, 0.4, 0.5, 0.6], 1: [0.31, 0.42, 0.48, 0.61]}
    records = [{"genotype": g, "seed": s, "heldout_accuracy": scores[s][i], "seconds": 1.0,
                "cpu_seconds": 2.0} for i, g in enumerate(genotypes) for s in (0, 1)]
    records.append({"genotype": genotypes[0], "seed": 2, "heldout_accuracy": 0.9,
                    "seconds": 1.0, "cpu_seconds": 2.0})
    summary = cell_bench.summary({"seeds": [0, 1], "records": records})
    assert summary["architectures_complete"] == 4 and summary["runs"] == 9
    assert summary["seed_kendall_tau"] == pytest.approx(1.0)
    assert summary["seed_abs_diff_mean"] == pytest.approx(0.015)


def test_standalone_recipe_trains_a_cell_on_generated_images():
    # The benchmark's own training function, on a small generated case (no ../shared).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype("int32")
    recipe = dict(cell_recipe.RECIPE, penultimate_filters=48, epochs=2, batch_size=16)
    genotype = cell_recipe.draw_genotypes(1, 0)[0]
    first = cell_recipe.train_standalone(genotype, (x, y), (x, y), 2, seed=0, recipe=recipe)
    again = cell_recipe.train_standalone(genotype, (x, y), (x, y), 2, seed=0, recipe=recipe)
    assert first == again  # same seed, same result
    assert 0.0 <= first[0] <= 1.0 and first[1] > 0
