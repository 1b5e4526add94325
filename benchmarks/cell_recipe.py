"""What the cell benchmark and the benchmarks judged against it share: the space, the splits of
the shared CIFAR-10 images, the standalone training recipe, and rank statistics.

`cell_bench.py` trains cells of `SPACE` standalone with `RECIPE` on the `train` split and scores
them on the `heldout` split; `estimator_rank.py` and `search_efficiency.py` give the estimators
the `train` split to train on and the `search_val` split to score on, never `heldout`.
"""

import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10" / "train"
BENCH_JSON = ROOT / "benchmarks" / "cell_bench.json"

SPACE = {
    "num_blocks": 3,
    "ops": ["identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"],
    "combine_ops": ["add", "concat"],
}
"""The benchmark's NASNet cell space (ENAS' five ops, B=3, add and concat)."""

SPLIT = {
    "source": "shared/data/cifar10/train (20,000 JPEG images, 2,000 per class)",
    "permutation_seed": 1234,
    "image_size": 32,
    "train": [0, 10000],
    "heldout": [10000, 12000],
    "search_val": [12000, 14000],
    "normalization": "per-channel mean and sd of the train split",
}
"""Disjoint slices of one seeded permutation of the image files."""

RECIPE = {
    "num_cells": 1,
    "penultimate_filters": 96,
    "stem_multiplier": 3,
    "batch_norm_momentum": 0.99,
    "optimizer": "adam",
    "learning_rate": 3e-3,
    "schedule": "cosine decay to 0 over all steps",
    "epochs": 5,
    "batch_size": 64,
    "augmentation": "none",
}
"""The short standalone recipe: a 1@96 NASNet of the cell, trained from scratch on the train
split (about 195 CPU seconds a run on the project's 2-core machine)."""

LONG_RECIPE = dict(RECIPE, epochs=20, batch_size=256, augmentation="flip_crop4")
"""The long standalone recipe: the same child trained 4x the images, with random horizontal
flips and random 32 px crops of the 4-pixel zero-padded image, drawn per run and epoch from the
run's seed. Its purpose is a lower seed noise than `RECIPE`'s (measured in
`benchmarks/RESULTS.md`). It is meant for an accelerator: 43 s a run on an H200 beside seven
other runs; here its 780 steps of 256 images are about 4x the short recipe's compute."""

RECIPES = {"short": RECIPE, "long": LONG_RECIPE}


def quiet():
    """Imports TensorFlow and Keras as the command line does: no start-up log."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from nasnet_tf.cli.utils import prepare_backend

    prepare_backend()


def load_cifar_splits(data_dir, sizes, seed=1234, image_size=32):
    """Consecutive slices of sizes `sizes` of one seeded permutation of the class folders'
    files, normalized by the first slice's per-channel mean and sd: `[(x, y), ...]`, classes.

    `data_dir` may also be an `.npz` file written by `export_splits` (the same images, already
    permuted and sliced), for a machine without the image folder."""
    data_dir = pathlib.Path(data_dir)
    if data_dir.suffix == ".npz":
        return _load_npz(data_dir, sizes, seed, image_size)
    pixels, y, classes = _read_images(data_dir, sizes, seed, image_size)
    return _normalized(pixels, y, sizes), len(classes)


def _read_images(data_dir, sizes, seed, image_size):
    from PIL import Image

    if not data_dir.is_dir():
        raise SystemExit(f"No image folder at {data_dir} (pass --data-dir)")
    classes = sorted(d.name for d in data_dir.iterdir() if d.is_dir())
    if not classes:
        raise SystemExit(f"No class folders under {data_dir}")
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((data_dir / name).glob("*"))]
    total = sum(sizes)
    if total > len(files):
        raise SystemExit(f"Asked for {total} images; {data_dir} holds {len(files)}")
    picked = np.random.default_rng(seed).permutation(len(files))[:total]
    pixels = np.empty((total, image_size, image_size, 3), "uint8")
    y = np.empty((total,), "int32")
    for i, k in enumerate(picked):
        path, label = files[k]
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.BILINEAR)
            pixels[i] = np.asarray(im)
        y[i] = label
    return pixels, y, classes


def _normalized(pixels, y, sizes):
    x = pixels.astype("float32") / 255.0
    mean, std = x[: sizes[0]].mean(axis=(0, 1, 2)), x[: sizes[0]].std(axis=(0, 1, 2))
    x = (x - mean) / std
    bounds = np.cumsum([0] + list(sizes))
    return [(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def export_splits(data_dir, path, sizes=None, seed=None, image_size=None):
    """Writes the benchmark's images (every split, permuted and sliced as `SPLIT` says, as
    8-bit pixels) to the `.npz` file `path`: `bench_splits(path)` then reads them without the
    image folder, e.g. on a machine the folder is not copied to. `sizes`, `seed` and
    `image_size` default to `SPLIT`'s."""
    if sizes is None:
        sizes = [SPLIT[n][1] - SPLIT[n][0] for n in ("train", "heldout", "search_val")]
    seed = SPLIT["permutation_seed"] if seed is None else seed
    pixels, y, classes = _read_images(pathlib.Path(data_dir), sizes, seed,
                                      image_size or SPLIT["image_size"])
    np.savez_compressed(path, pixels=pixels, labels=y, classes=np.asarray(classes),
                        sizes=np.asarray(sizes), seed=seed)


def _load_npz(path, sizes, seed, image_size):
    with np.load(path) as f:
        pixels, y, classes = f["pixels"], f["labels"], [str(c) for c in f["classes"]]
        stored_sizes, stored_seed = [int(n) for n in f["sizes"]], int(f["seed"])
    if (stored_sizes, stored_seed, pixels.shape[1]) != (list(sizes), seed, image_size):
        raise SystemExit(f"{path} holds splits {stored_sizes} of permutation {stored_seed} at "
                         f"{pixels.shape[1]} px; asked for {list(sizes)} of {seed} at "
                         f"{image_size} px")
    return _normalized(pixels, y, sizes), len(classes)


def bench_splits(data_dir=DEFAULT_DATA, image_size=None, limit=None):
    """`{"train": (x, y), "heldout": ..., "search_val": ...}` and the number of classes; with
    `limit`, only the first `limit` images of each (a quick try of the machinery)."""
    names = ("train", "heldout", "search_val")
    sizes = [SPLIT[n][1] - SPLIT[n][0] for n in names]
    parts, classes = load_cifar_splits(data_dir, sizes, seed=SPLIT["permutation_seed"],
                                       image_size=image_size or SPLIT["image_size"])
    if limit:
        parts = [(x[:limit], y[:limit]) for x, y in parts]
    return dict(zip(names, parts)), classes


def device():
    """The backend and the device that runs the models, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"jax {jax.__version__} on {jax.devices()[0].device_kind}"
    return f"{backend} on CPU"


def space():
    from tuners.nasnet_space import NASNetSearchSpace

    return NASNetSearchSpace(**SPACE)


def uniform_values(search_space, rng):
    """One architecture drawn uniformly, decision by decision, as hyperparameter values."""
    from tuners.nasnet_space import BLOCK_FIELDS, CELL_TYPES, hp_name

    values = {}
    for cell in CELL_TYPES:
        for k in range(search_space.num_blocks):
            for field in BLOCK_FIELDS:
                options = search_space.options(k, field)
                values[hp_name(cell, k, field)] = options[int(rng.integers(len(options)))]
    return values


def draw_genotypes(n, seed=0):
    """`n` distinct architectures of `SPACE` drawn uniformly with `seed` (as `Genotype`s)."""
    search_space = space()
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        genotype = search_space.decode(uniform_values(search_space, rng))
        key = genotype.to_json()
        if key not in seen:
            seen.add(key)
            out.append(genotype)
    return out


def augment(x, rng, pad=4):
    """Random horizontal flips and random crops of the `pad`-pixel zero-padded images."""
    n, h, w, _ = x.shape
    flip = rng.random(n) < 0.5
    out = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
    padded = np.pad(out, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    for i in range(n):
        out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def train_standalone(genotype, train, evaluate_on, classes, seed, recipe=None, epochs=None):
    """Trains `genotype` from scratch with `recipe` on `train`; accuracy on `evaluate_on`."""
    import keras

    from nasnet_tf import build_nasnet

    recipe = dict(RECIPE if recipe is None else recipe)
    epochs = recipe["epochs"] if epochs is None else epochs
    keras.utils.set_random_seed(seed)
    model = build_nasnet(
        genotype, preset="cifar", num_cells=recipe["num_cells"],
        penultimate_filters=recipe["penultimate_filters"],
        stem_multiplier=recipe["stem_multiplier"], input_shape=train[0].shape[1:],
        classes=classes, auxiliary_head=False, drop_path_keep_prob=1.0,
        batch_norm_momentum=recipe["batch_norm_momentum"], seed=seed,
    )
    steps = epochs * (len(train[0]) // recipe["batch_size"])
    schedule = keras.optimizers.schedules.CosineDecay(recipe["learning_rate"], steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng([seed, 7])
    x, y = train
    n = (len(x) // recipe["batch_size"]) * recipe["batch_size"]
    for _ in range(epochs):  # seeded order, full batches only: one traced step
        order = rng.permutation(len(x))[:n]
        images = x[order]
        if recipe.get("augmentation", "none") == "flip_crop4":
            images = augment(images, rng)
        elif recipe.get("augmentation", "none") != "none":
            raise ValueError(f"Unknown augmentation: {recipe['augmentation']!r}")
        model.fit(images, y[order], batch_size=recipe["batch_size"], epochs=1,
                  shuffle=False, verbose=0)
    result = model.evaluate(evaluate_on[0], evaluate_on[1], batch_size=250, verbose=0,
                            return_dict=True)
    return float(result["accuracy"]), model.count_params()


def rank_stats(scores, truth, top=5):
    """Kendall tau-b, Spearman rho and the top-`top` overlap of `scores` against `truth`."""
    from scipy import stats

    scores, truth = np.asarray(scores, "float64"), np.asarray(truth, "float64")
    tau = stats.kendalltau(scores, truth).statistic
    rho = stats.spearmanr(scores, truth).statistic
    best_s = set(np.argsort(-scores, kind="stable")[:top])
    best_t = set(np.argsort(-truth, kind="stable")[:top])
    return {"kendall_tau": float(tau), "spearman_rho": float(rho),
            f"top{top}_overlap": len(best_s & best_t)}


def load_bench(path=BENCH_JSON):
    """The cell benchmark: its JSON, and `{genotype json: mean held-out accuracy}` over the
    architectures trained with every seed."""
    import json

    with open(path) as f:
        bench = json.load(f)
    by_arch = {}
    for record in bench["records"]:
        key = _key(record["genotype"])
        by_arch.setdefault(key, {})[record["seed"]] = record["heldout_accuracy"]
    seeds = set(bench["seeds"])
    means = {k: float(np.mean(list(v.values()))) for k, v in by_arch.items() if set(v) >= seeds}
    return bench, means


def _key(genotype_dict):
    import json

    return json.dumps(genotype_dict, sort_keys=True)


def percentile(value, population):
    """The percentage of `population` strictly below `value`, plus half of the ties."""
    population = np.asarray(population, "float64")
    below = (population < value).sum() + 0.5 * (population == value).sum()
    return float(100.0 * below / len(population))
