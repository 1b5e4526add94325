"""`nasnet-tf demo` (`make demo`): controller search, training of the best cell, SavedModel
export and reload, on the built-in digits data (offline, resumable)."""

import argparse
import os
import shutil

from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import search, train, utils
from nasnet_tf.io_utils import write_json


def register(subparsers):
    p = subparsers.add_parser(
        "demo", help="the main job: search, train, export, reload (offline)",
        description="A small but real controller search on the built-in digits data (each "
        "child scored from fresh weights through one compiled super-network; trained on its "
        "own in the layer-wise space), training of the best cell into a small NASNet, "
        "SavedModel export, reload and accuracy. Resumable: run it again to continue.")
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "demo"))
    search.add_search_args(p)
    train.add_train_args(p, epochs=15, num_cells=1, penultimate_filters=96, prefix="train-")
    cli_args.add_data_args(p, batch_size=64)
    p.add_argument("--overwrite", action="store_true", help="start the search afresh")
    # Flips and cutout would destroy 8x8 digits; the demo trains on them as they are.
    p.set_defaults(func=run, needs_backend=True, augment="none")


def evaluate_saved_model(path, data):
    """Accuracy of a SavedModel reloaded with plain `tf.saved_model.load` on the raw
    validation images (the served model does its own preprocessing)."""
    import numpy as np
    import tensorflow as tf

    from nasnet_tf import augment, serving

    loaded = tf.saved_model.load(path)
    serve = loaded.signatures[serving.SIGNATURE_KEY]
    size = tuple(data.image_shape[:2])
    center_crop = data.augment == "imagenet"

    def resize(image, label):
        return augment.eval_resize(image, size, center_crop), label

    ds = data.validation_examples.map(resize).batch(256)
    correct = total = 0
    for images, labels in ds:
        probs = serve(images=tf.cast(images, "float32"))[serving.OUTPUT_KEY].numpy()
        correct += int((np.argmax(probs, -1) == labels.numpy()).sum())
        total += int(labels.shape[0])
    return correct / max(total, 1), total


def run(args):
    import time

    from nasnet_tf import serving

    start = time.time()
    out = os.path.abspath(args.output_dir)
    utils.check_writable(out)
    utils.require_tensorflow("the demo (it ends with a SavedModel export)")
    if args.overwrite:  # afresh: the old training run and export belong to the old search
        for name in ("train", "saved_model"):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    data = utils.load_data(args, args.batch_size)
    print(f"nasnet-tf demo: search -> train -> export -> reload, in {out}", flush=True)

    search_args = argparse.Namespace(**vars(args))
    search_args.output_dir = os.path.join(out, "search")
    # Children scored from fresh weights through one compiled super-network where the space
    # has one (NASNet cells, --penultimate-filters a multiple of 48), else each built and
    # trained: on the demo's digits search the super-network picks the same cell in about
    # half the search time (`benchmarks/RESULTS.md`, "The main job"). No final selection:
    # the demo trains its pick for --train-epochs next.
    fresh = args.space == "nasnet" and args.penultimate_filters % 48 == 0
    search_args.estimator = "fresh" if fresh else "train"
    search_args.finalists = 0 if fresh else None
    print("\n== 1. Controller search ==", flush=True)
    best, search_summary = search.run_search(search_args, data)

    print("\n== 2. Training the best cell ==", flush=True)
    train_args = argparse.Namespace(**vars(args))
    train_args.output_dir = os.path.join(out, "train")
    train_args.epochs = args.train_epochs
    train_args.num_cells = args.train_num_cells
    train_args.penultimate_filters = args.train_penultimate_filters
    train_args.steps_per_epoch = None
    model, train_summary = train.run_train(train_args, best, data, name="the best genotype")

    print("\n== 3. Export and reload ==", flush=True)
    saved = os.path.join(out, "saved_model")
    meta = utils.read_json(train_summary["metadata"])
    serving.export_saved_model(
        model, saved, preset=args.preset, class_names=list(data.class_names), overwrite=True,
        metadata={k: meta[k] for k in ("dataset", "augment", "training") if k in meta},
    )
    accuracy, n = evaluate_saved_model(saved, data)
    print(f"Reloaded SavedModel ({saved}) with tf.saved_model.load: accuracy {accuracy:.4f} on "
          f"{n} validation images (Keras model after training: "
          f"{train_summary['val_accuracy']:.4f})")
    write_json(os.path.join(out, "demo.json"), {
        "search": search_summary, "train": train_summary,
        "saved_model": saved, "saved_model_accuracy": accuracy, "validation_images": n,
    })
    print(f"\nDone in {time.time() - start:.0f} s.")
    utils.print_artefacts({**search_summary,
                           **{f"train_{k}": v for k, v in train_summary.items()},
                           "saved_model": saved, "summary": os.path.join(out, "demo.json")})
    return 0
