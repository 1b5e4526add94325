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


@pytest.mark.parametrize("name, recipe", [("cell_bench.json", "short"),
                                          ("cell_bench_long.json", "long")])
def test_the_kept_benchmark_has_its_shape(name, recipe):
    bench = json.loads((BENCH.parent / name).read_text())
    assert bench["space"] == cell_recipe.SPACE
    assert bench["recipe"] == cell_recipe.RECIPES[recipe] and bench["split"] == cell_recipe.SPLIT
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


# The long recipe under TensorFlow only: the two recipes differ in settings, not in code
# that depends on the backend (each case is two compiled trainings, about 35 s under JAX).
@pytest.mark.parametrize("recipe", ["short", pytest.param("long", marks=pytest.mark.tf_only)])
def test_standalone_recipe_trains_a_cell_on_generated_images(recipe):
    # The benchmark's own training function, on a small generated case (no ../shared).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype("int32")
    recipe = dict(cell_recipe.RECIPES[recipe], penultimate_filters=48, epochs=2, batch_size=16)
    genotype = cell_recipe.draw_genotypes(1, 0)[0]
    first = cell_recipe.train_standalone(genotype, (x, y), (x, y), 2, seed=0, recipe=recipe)
    again = cell_recipe.train_standalone(genotype, (x, y), (x, y), 2, seed=0, recipe=recipe)
    assert first == again  # same seed, same result
    assert 0.0 <= first[0] <= 1.0 and first[1] > 0


def test_device_bench_resumes_every_shard_from_the_merged_file(tmp_path):
    # A warm machine keeps an earlier call's shard files; resuming must still give each shard
    # every finished run, so no architecture is trained twice.
    import device_bench

    genotypes = [g.to_dict() for g in cell_recipe.draw_genotypes(3, 0)]

    def bench(indices):
        return {"space": cell_recipe.SPACE, "recipe": cell_recipe.LONG_RECIPE,
                "split": cell_recipe.SPLIT, "draw_seed": 0, "seeds": [0],
                "records": [{"index": i, "genotype": genotypes[i], "seed": 0,
                             "heldout_accuracy": 0.5, "seconds": 1.0, "cpu_seconds": 1.0}
                            for i in indices]}

    merged, shard = tmp_path / "merged.json", tmp_path / "shard_0.json"
    merged.write_text(json.dumps(bench([0, 1])))
    shard.write_text(json.dumps(bench([0, 2])))  # the earlier call's own shard
    device_bench.resume_shard(shard, merged)
    held = json.loads(shard.read_text())
    assert sorted(r["index"] for r in held["records"]) == [0, 1, 2]
    assert held["summary"] == cell_bench.summary(held)
    fresh = tmp_path / "shard_1.json"  # a fresh machine: no shard yet
    device_bench.resume_shard(fresh, merged)
    assert sorted(r["index"] for r in json.loads(fresh.read_text())["records"]) == [0, 1]


def test_augment_flips_and_crops_each_image_of_its_padded_self():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    out = cell_recipe.augment(x, np.random.default_rng(1), pad=2)
    assert out.shape == x.shape and not np.array_equal(out, x)
    for image, source in zip(out, x):
        windows = [np.pad(s, ((2, 2), (2, 2), (0, 0)))[dy:dy + 8, dx:dx + 8]
                   for s in (source, source[:, ::-1]) for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(image, w) for w in windows)
    again = cell_recipe.augment(x, np.random.default_rng(1), pad=2)
    assert np.array_equal(out, again)  # seeded


def test_exported_splits_read_back_as_the_image_folder(tmp_path):
    # The .npz a machine without the image folder reads (generated images, no ../shared).
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "images" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype="uint8")).save(
                tmp_path / "images" / c / f"{i}.png")
    sizes = [6, 3, 2]
    cell_recipe.export_splits(tmp_path / "images", tmp_path / "s.npz", sizes, 5, 8)
    folder, classes = cell_recipe.load_cifar_splits(tmp_path / "images", sizes, 5, 8)
    packed, packed_classes = cell_recipe.load_cifar_splits(tmp_path / "s.npz", sizes, 5, 8)
    assert classes == packed_classes == 2
    for (a, b), (c, d) in zip(folder, packed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    with pytest.raises(SystemExit, match="holds splits"):
        cell_recipe.load_cifar_splits(tmp_path / "s.npz", [5, 3, 2], 5, 8)
