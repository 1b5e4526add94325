"""The `nasnet-tf` command: search, train, export, show, predict, demo.

Every user error (a missing file, bad JSON, an unknown preset or dataset, an output that cannot
be written) prints one line, `nasnet-tf <command>: error: ...`, to stderr and exits with status 2;
outputs are written whole or not at all.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from nasnet_tf.io_utils import write_json

PROG = "nasnet-tf"
DEFAULT_RUNS = "nasnet_runs"


class CLIError(Exception):
    """A user error the command reports in one line (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# -- shared helpers ----------------------------------------------------------------------------
def _named_genotypes():
    from nasnet_tf import NASNET_A

    return {"nasnet_a": NASNET_A}


def load_genotype(spec):
    """A `Genotype` from a name (`nasnet_a`) or a JSON file: a genotype, or any JSON object with
    a `"genotype"` entry (search results, export metadata)."""
    from nasnet_tf import Genotype

    named = _named_genotypes()
    if spec.lower() in named:
        return named[spec.lower()]
    if not os.path.isfile(spec):
        raise CLIError(
            f"genotype file not found: {spec!r} (give a genotype JSON file or one of "
            f"{sorted(named)})"
        )
    data = _read_json(spec)
    if isinstance(data, dict) and "genotype" in data and "normal" not in data:
        data = data["genotype"]
    try:
        return Genotype.from_dict(data)
    except ValueError as e:
        raise CLIError(f"{spec!r} is not a valid genotype: {e}") from e


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CLIError(f"invalid JSON in {path!r}: {e}") from e
    except OSError as e:
        raise CLIError(f"cannot read {path!r}: {e.strerror}") from e


def check_writable(path, what="output"):
    """Fails early, before any work, when files cannot be created at `path` (a directory that
    may not exist yet): its nearest existing ancestor must be a writable directory."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CLIError(f"cannot write the {what} {path!r}: {probe!r} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".nasnet-tf-probe-")
    except OSError as e:
        raise CLIError(f"cannot write the {what} {path!r}: {e.strerror}") from e
    os.close(fd)
    os.remove(tmp)


def _draw(genotype, directory, formats=("png", "svg"), engine="auto"):
    from nasnet_tf.diagram import draw_genotype

    paths = draw_genotype(genotype, directory, formats=formats, engine=engine)
    return [p for kind in ("normal", "reduction") for p in paths[kind]]


def _infer_format(output):
    if output.endswith(".keras"):
        return "keras"
    if output.endswith(".tflite"):
        return "tflite"
    return "saved_model"


# -- show --------------------------------------------------------------------------------------
def cmd_show(args):
    from nasnet_tf.diagram import format_genotype

    genotype = load_genotype(args.genotype)
    if not args.no_draw:
        check_writable(args.output_dir)
    print(f"Genotype {args.genotype}: {genotype}")
    print(format_genotype(genotype))
    if args.no_draw:
        return 0
    for path in _draw(genotype, args.output_dir, args.formats, args.engine):
        print(f"wrote {path}")
    return 0


# -- export ------------------------------------------------------------------------------------
def _check_model_file(path):
    if not os.path.exists(path):
        raise CLIError(f"model not found: {path!r} (give a .keras file)")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise CLIError(f"expected a .keras model file, got {path!r}")


def _load_model_for_export(path):
    from nasnet_tf import export

    _check_model_file(path)
    meta = {}
    if os.path.isfile(export.metadata_path(path)):
        meta = _read_json(export.metadata_path(path))
    return export.load_keras(path), meta


def _require_tensorflow(what):
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise CLIError(f"{what} needs the TensorFlow backend (run with KERAS_BACKEND=tensorflow);"
                       f" the current backend is {backend!r}")


def cmd_export(args):
    from nasnet_tf import export

    fmt = args.format or _infer_format(args.output)
    if os.path.exists(args.output) and not args.overwrite:
        raise CLIError(f"{args.output!r} already exists (pass --overwrite to replace it)")
    check_writable(os.path.dirname(os.path.abspath(args.output)))
    _check_model_file(args.model)
    if fmt != "keras":
        _require_tensorflow(f"{fmt} export")
    model, meta = _load_model_for_export(args.model)
    kwargs = dict(
        preprocessing=meta.get("preprocessing"),
        preset=meta.get("preset"),
        class_names=(meta.get("output") or {}).get("class_names"),
        overwrite=args.overwrite,
        metadata={k: v for k, v in meta.items() if k in ("dataset", "augment", "training")},
    )
    if fmt != "keras":
        kwargs["input_dtype"] = args.input_dtype
    path = export.export_model(model, args.output, format=fmt, **kwargs)
    print(f"exported {fmt} to {path}")
    print(f"metadata: {export.metadata_path(path)}")
    return 0


# -- predict -----------------------------------------------------------------------------------
def load_predictor(path):
    """Returns `(predict, metadata)` for a SavedModel directory, a `.tflite` or a `.keras` file:
    `predict(images)` maps raw [0, 255] images at the model's size to probabilities."""
    import numpy as np

    from nasnet_tf import export

    if not os.path.exists(path):
        raise CLIError(f"model not found: {path!r}")
    meta = _read_json(export.metadata_path(path)) if os.path.exists(
        export.metadata_path(path)) else {}
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise CLIError(f"{path!r} is not a SavedModel directory (no saved_model.pb)")
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        serve = loaded.signatures[export.SIGNATURE_KEY]
        spec = serve.structured_input_signature[1]["images"]
        meta.setdefault("input", {"shape": list(spec.shape[1:]), "dtype": spec.dtype.name})

        def predict(images, _loaded=loaded):  # the signature needs `loaded` alive
            return serve(images=tf.constant(images))[export.OUTPUT_KEY].numpy()
    elif path.endswith(".tflite"):
        predict = export.load_tflite(path)
        if not meta:
            raise CLIError(f"no metadata beside {path!r} (expected {export.metadata_path(path)!r})")
    elif path.endswith(".keras"):
        model = export.load_keras(path)
        pre = export._check_preprocessing(meta.get("preprocessing"))
        meta.setdefault("input", {"shape": list(model.inputs[0].shape[1:]), "dtype": "float32"})
        meta["input"]["dtype"] = "float32"

        def predict(images):
            x = np.asarray(images, "float32") * np.asarray(pre["scale"], "float32") + np.asarray(
                pre["offset"], "float32")
            return np.asarray(model.predict(x, verbose=0))
    else:
        raise CLIError(f"unknown model type {path!r} (give a SavedModel directory, a .tflite "
                       "or a .keras file)")
    return predict, meta


def _open_image(path, mode=None):
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise CLIError(f"image not found: {path!r}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode) if mode else img.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise CLIError(f"cannot read image {path!r}: {e}") from e


def read_images(paths, shape, dtype, center_crop=False):
    """Reads image files as a `(n, h, w, c)` batch at the model's size, [0, 255] pixels."""
    import numpy as np

    from nasnet_tf import augment

    h, w, c = shape
    batch = []
    for path in paths:
        array = np.asarray(_open_image(path, "L" if c == 1 else "RGB"), dtype="uint8")
        if array.ndim == 2:
            array = array[..., None]
        batch.append(np.asarray(augment.eval_resize(array, (h, w), center_crop)))
    batch = np.stack(batch)
    if dtype == "uint8":
        batch = np.clip(np.round(batch), 0, 255).astype("uint8")
    return batch.astype(dtype)


def cmd_predict(args):
    import numpy as np

    if not os.path.exists(args.model):
        raise CLIError(f"model not found: {args.model!r}")
    for path in args.images:  # every image readable before the model loads
        _open_image(path)
    predict, meta = load_predictor(args.model)
    shape = meta["input"]["shape"]
    images = read_images(args.images, shape, meta["input"].get("dtype", "float32"),
                         center_crop=meta.get("augment") == "imagenet")
    probs = np.asarray(predict(images))
    names = (meta.get("output") or {}).get("class_names") or [
        str(i) for i in range(probs.shape[-1])
    ]
    k = min(args.top_k, probs.shape[-1])
    results = []
    for path, p in zip(args.images, probs):
        top = np.argsort(-p)[:k]
        results.append({"image": path, "top": [
            {"class": names[i], "index": int(i), "probability": float(p[i])} for i in top
        ]})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            top = "  ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
            print(f"{r['image']}: {top}")
    return 0


# -- data ------------------------------------------------------------------------------------
def load_data(args, batch_size):
    """The dataset named by `--dataset` through `nasnet_tf.data.load_dataset` (no download
    unless `--download`)."""
    from nasnet_tf.data import load_dataset

    source = args.dataset
    if source != "digits" and (os.sep in source or source.startswith(".")) and not os.path.isdir(
            source):
        raise CLIError(f"dataset directory not found: {source!r}")
    return load_dataset(
        source, data_dir=args.data_dir, download=args.download, image_size=args.image_size,
        batch_size=batch_size, validation_split=args.validation_split, seed=args.seed,
        augment=args.augment,
    )


def _add_data_args(p, batch_size):
    p.add_argument("--dataset", default="digits",
                   help="'digits' (built in, offline), a TFDS name, or a directory of class "
                   "folders (default: %(default)s)")
    p.add_argument("--data-dir", help="TFDS data directory")
    p.add_argument("--download", action="store_true",
                   help="let TFDS download a missing dataset (off: never touch the network)")
    p.add_argument("--image-size", type=_positive_int, help="resize images to this square size")
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--augment", choices=("auto", "cifar", "imagenet", "none"), default="auto",
                   help="training augmentation; 'auto': CIFAR-style (pad, crop, flip, cutout) "
                   "up to 64 pixels, ImageNet-style above (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=batch_size)
    p.add_argument("--seed", type=_non_negative_int, default=0)


# -- batch-norm momentum for short runs -------------------------------------------------------
def bn_momentum(setting, total_steps):
    """The batch-norm momentum for a run of `total_steps`: `setting` if given, else ("auto")
    NASNet's 0.9997 for long runs and, for short ones, `1 - 10 / total_steps` (at least 0.9),
    so the moving statistics that inference uses average over about a tenth of the run. With
    0.9997 a 250-step run would evaluate with statistics still ~93% at their initial values."""
    if setting is not None:
        return setting
    return min(0.9997, max(0.9, 1.0 - 10.0 / max(total_steps, 1)))


def _momentum_arg(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


# -- search ------------------------------------------------------------------------------------
SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.json"
BEST_FILE = "best_genotype.json"
TOP_FILE = "best_genotypes.json"
_TABLE = "{:>5}  {:<58}  {:>9}  {:>8}  {:>7}  {:>8}"


def _search_settings(args, data):
    return {
        "space": args.space, "dataset": args.dataset, "image_shape": list(data.image_shape),
        "classes": data.num_classes, "trials": args.trials, "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
        "num_blocks": args.num_blocks, "num_layers": args.num_layers,
        "num_cells": args.num_cells, "penultimate_filters": args.penultimate_filters,
        "update_every": args.update_every, "seed": args.seed, "augment": data.augment,
    }


def _short(text, width=58):
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


class _SearchReport:
    """Collects and prints the per-trial table; rows persist in `trials.json` (resume)."""

    def __init__(self, path, rows):
        self.path = path
        self.rows = rows
        self.params = {}

    def header(self):
        print(_TABLE.format("trial", "genotype", "params", "accuracy", "reward", "entropy"))

    def print_row(self, row):
        def num(value, fmt):
            return "-" if value is None else format(value, fmt)

        print(_TABLE.format(row["trial"], _short(row["genotype"]), num(row["params"], ","),
                            num(row["accuracy"], ".4f"), num(row["reward"], ".4f"),
                            num(row["entropy"], ".3f")), flush=True)

    def trial_ended(self, tuner, trial):
        import numpy as np

        oracle = tuner.oracle
        reward = entropy = None
        for trial_id, value, _ in getattr(oracle, "rewards", []):
            if trial_id == trial.trial_id:
                reward = value
        decisions = getattr(oracle, "trial_decisions", {}).get(trial.trial_id)
        if decisions is not None and getattr(oracle, "controller", None) is not None:
            entropy = float(oracle.controller.entropy(np.array([decisions]))[0])
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            "genotype": str(tuner.hypermodel.decode(trial.hyperparameters)),
            "params": self.params.get(trial.trial_id),
            "accuracy": None if trial.score is None else float(trial.score),
            "reward": reward,
            "entropy": entropy,
        }
        self.rows = [r for r in self.rows if r["trial"] != trial.trial_id] + [row]
        write_json(self.path, self.rows)
        self.print_row(row)


def _make_tuner(args, data, report, directory, overwrite, momentum):
    import dataclasses

    from tuners.estimation import TrainAndEvaluate
    from tuners.nas_tuner import LayerwiseTuner, NASNetTuner

    class CountingEstimator(TrainAndEvaluate):
        """The tuners' own train-and-evaluate, noting each child's parameter count."""

        def estimate(self, child, *fit_args, **fit_kwargs):
            build = child.build

            def counted_build():
                model = build()
                report.params[child.trial_id] = int(model.count_params())
                return model

            return super().estimate(dataclasses.replace(child, build=counted_build),
                                    *fit_args, **fit_kwargs)

    base = NASNetTuner if args.space == "nasnet" else LayerwiseTuner

    class ReportingTuner(base):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            report.trial_ended(self, trial)

    common = dict(
        input_shape=tuple(data.image_shape), classes=data.num_classes,
        max_trials=args.trials, seed=args.seed,
        oracle_kwargs={"update_every": args.update_every},
        estimator=CountingEstimator(), directory=directory, project_name="tuner",
        overwrite=overwrite, max_consecutive_failed_trials=max(3, args.trials),
        batch_norm_momentum=momentum,  # the children's, set by the tuners' hypermodels
    )
    if args.space == "nasnet":
        return ReportingTuner(num_blocks=args.num_blocks, num_cells=args.num_cells,
                              penultimate_filters=args.penultimate_filters, **common)
    return ReportingTuner(num_layers=args.num_layers, **common)


def run_search(args, data=None):
    """Runs (or resumes) a controller search; returns `(best_genotype, summary dict)`."""
    out = os.path.abspath(args.output_dir)
    check_writable(out)
    data = data or load_data(args, args.batch_size)
    settings = _search_settings(args, data)
    settings_path = os.path.join(out, SEARCH_FILE)
    resume = os.path.isfile(settings_path) and not args.overwrite
    if resume:
        previous = _read_json(settings_path)
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise CLIError(
                f"{out!r} holds a search with other settings ({', '.join(changed)}); pass "
                "--overwrite to start afresh or choose another --output-dir"
            )
    os.makedirs(out, exist_ok=True)
    write_json(settings_path, settings)
    rows = _read_json(os.path.join(out, TRIALS_FILE)) if resume and os.path.isfile(
        os.path.join(out, TRIALS_FILE)) else []
    report = _SearchReport(os.path.join(out, TRIALS_FILE), rows)
    steps = min(data.steps_per_epoch, args.steps_per_epoch or data.steps_per_epoch)
    momentum = bn_momentum(args.bn_momentum, steps * args.epochs)
    tuner = _make_tuner(args, data, report, out, overwrite=not resume, momentum=momentum)
    done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    print(f"{'Resuming' if resume else 'Starting'} the {args.space} search in {out}: "
          f"{args.trials} trials on {data.name} {tuple(data.image_shape)}, "
          f"{data.train_size} train / {data.validation_size} validation images"
          + (f" ({done} trials done)" if resume else ""), flush=True)
    report.header()
    for row in report.rows:
        report.print_row(row)
    fit = dict(validation_data=data.validation, epochs=args.epochs, verbose=0)
    if args.steps_per_epoch:
        fit["steps_per_epoch"] = args.steps_per_epoch
    tuner.search(data.train, **fit)
    best = tuner.get_best_genotypes(args.top)
    if not best:
        raise CLIError("no trial completed, so there is no best genotype (see the table above)")
    scored = [t for t in tuner.oracle.get_best_trials(args.top) if t.status == "COMPLETED"]
    write_json(os.path.join(out, BEST_FILE), best[0].to_dict())
    write_json(os.path.join(out, TOP_FILE), [
        {"trial": t.trial_id, "score": float(t.score), "genotype": g.to_dict()}
        for t, g in zip(scored, best)
    ])
    summary = {"best_genotype": os.path.join(out, BEST_FILE),
               "top_genotypes": os.path.join(out, TOP_FILE),
               "trials": os.path.join(out, TRIALS_FILE),
               "best_score": float(scored[0].score), "best_trial": scored[0].trial_id}
    print(f"Best trial {scored[0].trial_id}: val_accuracy {scored[0].score:.4f}")
    print(f"  {best[0]}")
    if args.space == "nasnet":
        from nasnet_tf.diagram import format_genotype

        print(format_genotype(best[0]))
        cells = _draw(best[0], os.path.join(out, "cells"))
        summary["diagrams"] = [p for p in cells if not p.endswith(".dot")]
    return best[0], summary


def cmd_search(args):
    _, summary = run_search(args)
    _print_artefacts(summary)
    return 0


def _print_artefacts(summary):
    print("Artefacts:")
    for key, value in summary.items():
        if isinstance(value, list):
            for item in value:
                print(f"  {key}: {item}")
        elif isinstance(value, str) and os.path.sep in value:
            print(f"  {key}: {value}")


def _add_search_args(p):
    p.add_argument("--space", choices=("nasnet", "layerwise"), default="nasnet",
                   help="NASNet cells (2017) or the layer-wise 2016 space (default: nasnet)")
    p.add_argument("--trials", type=_positive_int, default=6,
                   help="children to train (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, default=3,
                   help="epochs per child (default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=_positive_int, help="cap on a child's steps")
    p.add_argument("--num-blocks", type=_positive_int, default=5, help="B, blocks per cell")
    p.add_argument("--num-layers", type=_positive_int, default=4,
                   help="layers of a layer-wise child")
    p.add_argument("--num-cells", type=_positive_int, default=1,
                   help="N of the child networks")
    p.add_argument("--penultimate-filters", type=_positive_int, default=48,
                   help="P of the child networks, a multiple of 24 (default: %(default)s)")
    p.add_argument("--update-every", type=_positive_int, default=3,
                   help="rewards per controller update (default: %(default)s)")
    p.add_argument("--top", type=_positive_int, default=3, help="best genotypes to keep")
    p.add_argument("--bn-momentum", type=_momentum_arg, help="batch-norm momentum of the "
                   "children (default: from the run's length, see `bn_momentum`)")


# -- train -------------------------------------------------------------------------------------
def run_train(args, genotype, data=None, name=None):
    """Trains `genotype` with `nasnet_tf.training.train` (resumable in `args.output_dir`);
    writes `model.keras` and its metadata there. Returns `(model, summary dict)`."""
    from nasnet_tf import export
    from nasnet_tf.training import TrainConfig, train

    out = os.path.abspath(args.output_dir)
    check_writable(out)
    # `train` resumes from the checkpoints in `out`; they must belong to this genotype.
    genotype_path = os.path.join(out, "genotype.json")
    if os.path.isfile(genotype_path) and _read_json(genotype_path) != genotype.to_dict():
        raise CLIError(
            f"{out!r} holds a training run of another genotype; choose another --output-dir "
            "(or delete that one) to train this genotype"
        )
    data = data or load_data(args, args.batch_size)
    model_kwargs = {"num_cells": args.num_cells, "penultimate_filters": args.penultimate_filters}
    if args.no_aux_head:
        model_kwargs["auxiliary_head"] = False
    if args.drop_path_keep_prob is not None:
        model_kwargs["drop_path_keep_prob"] = args.drop_path_keep_prob
    steps = min(data.steps_per_epoch, args.steps_per_epoch or data.steps_per_epoch)
    model_kwargs["batch_norm_momentum"] = bn_momentum(args.train_bn_momentum, steps * args.epochs)
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, model_kwargs=model_kwargs,
                     strategy=args.strategy, seed=args.seed, verbose=args.verbose,
                     steps_per_epoch=args.steps_per_epoch)
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    config = TrainConfig.for_preset(args.preset, **overrides)
    print(f"Training {name or 'the genotype'} ({args.preset} layout, N={args.num_cells}, "
          f"P={args.penultimate_filters}) on {data.name} {tuple(data.image_shape)} for "
          f"{args.epochs} epochs in {out}", flush=True)
    os.makedirs(out, exist_ok=True)
    write_json(genotype_path, genotype.to_dict())
    history = train(genotype, data, config, out)
    model = history.model
    accuracy = history.history.get("val_accuracy", [None])[-1]
    meta = export.model_metadata(
        model, preset=args.preset, class_names=list(data.class_names),
        extra={"dataset": args.dataset, "augment": data.augment,
               "training": {"epochs": args.epochs, "val_accuracy": accuracy}},
    )
    meta["format"] = "keras"
    keras_path = os.path.join(out, "model.keras")
    write_json(export.metadata_path(keras_path), meta)
    if accuracy is not None:
        print(f"Validation accuracy after {args.epochs} epochs: {accuracy:.4f}")
    return model, {"model": keras_path, "metadata": export.metadata_path(keras_path),
                   "history": os.path.join(out, "history.json"), "val_accuracy": accuracy}


def cmd_train(args):
    genotype = load_genotype(args.genotype)
    _, summary = run_train(args, genotype, name=args.genotype)
    _print_artefacts(summary)
    return 0


def _add_train_args(p, epochs=10, num_cells=1, penultimate_filters=48, prefix=""):
    from nasnet_tf.presets import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS), default="cifar",
                   help="layout and training recipe (default: %(default)s)")
    p.add_argument(f"--{prefix}epochs", type=_positive_int, default=epochs,
                   help="training epochs (default: %(default)s)")
    if not prefix:
        p.add_argument("--steps-per-epoch", type=_positive_int)
    p.add_argument(f"--{prefix}num-cells", type=_positive_int, default=num_cells,
                   help="N of the trained network (default: %(default)s)")
    p.add_argument(f"--{prefix}penultimate-filters", type=_positive_int,
                   default=penultimate_filters,
                   help="P of the trained network, a multiple of 24 (default: %(default)s)")
    p.add_argument("--no-aux-head", action="store_true", help="leave out the auxiliary head")
    p.add_argument("--drop-path-keep-prob", type=float)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--strategy", choices=("auto", "default", "mirrored", "data_parallel"),
                   default="auto", help="'auto' uses every local GPU (MirroredStrategy under "
                   "TensorFlow, DataParallel under JAX)")
    p.add_argument(f"--{prefix}bn-momentum", dest="train_bn_momentum", type=_momentum_arg,
                   help="batch-norm momentum (default: NASNet's 0.9997 for long runs, lower "
                   "for short ones so the inference statistics settle)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)


# -- demo --------------------------------------------------------------------------------------
def _evaluate_saved_model(path, data):
    """Accuracy of a SavedModel reloaded with plain `tf.saved_model.load` on the raw
    validation images (the served model does its own preprocessing)."""
    import numpy as np
    import tensorflow as tf

    from nasnet_tf import augment, export

    loaded = tf.saved_model.load(path)
    serve = loaded.signatures[export.SIGNATURE_KEY]
    size = tuple(data.image_shape[:2])
    center_crop = data.augment == "imagenet"

    def resize(image, label):
        return augment.eval_resize(image, size, center_crop), label

    ds = data.validation_examples.map(resize).batch(256)
    correct = total = 0
    for images, labels in ds:
        probs = serve(images=tf.cast(images, "float32"))[export.OUTPUT_KEY].numpy()
        correct += int((np.argmax(probs, -1) == labels.numpy()).sum())
        total += int(labels.shape[0])
    return correct / max(total, 1), total


def cmd_demo(args):
    import time

    from nasnet_tf import export

    start = time.time()
    out = os.path.abspath(args.output_dir)
    check_writable(out)
    _require_tensorflow("the demo (it ends with a SavedModel export)")
    if args.overwrite:  # afresh: the old training run and export belong to the old search
        for name in ("train", "saved_model"):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    data = load_data(args, args.batch_size)
    print(f"nasnet-tf demo: search -> train -> export -> reload, in {out}", flush=True)

    search_args = argparse.Namespace(**vars(args))
    search_args.output_dir = os.path.join(out, "search")
    print("\n== 1. Controller search ==", flush=True)
    best, search_summary = run_search(search_args, data)

    print("\n== 2. Training the best cell ==", flush=True)
    train_args = argparse.Namespace(**vars(args))
    train_args.output_dir = os.path.join(out, "train")
    train_args.epochs = args.train_epochs
    train_args.num_cells = args.train_num_cells
    train_args.penultimate_filters = args.train_penultimate_filters
    train_args.steps_per_epoch = None
    model, train_summary = run_train(train_args, best, data, name="the best genotype")

    print("\n== 3. Export and reload ==", flush=True)
    saved = os.path.join(out, "saved_model")
    meta = _read_json(train_summary["metadata"])
    export.export_saved_model(
        model, saved, preset=args.preset, class_names=list(data.class_names), overwrite=True,
        metadata={k: meta[k] for k in ("dataset", "augment", "training") if k in meta},
    )
    accuracy, n = _evaluate_saved_model(saved, data)
    print(f"Reloaded SavedModel ({saved}) with tf.saved_model.load: accuracy {accuracy:.4f} on "
          f"{n} validation images (Keras model after training: "
          f"{train_summary['val_accuracy']:.4f})")
    write_json(os.path.join(out, "demo.json"), {
        "search": search_summary, "train": train_summary,
        "saved_model": saved, "saved_model_accuracy": accuracy, "validation_images": n,
    })
    print(f"\nDone in {time.time() - start:.0f} s.")
    _print_artefacts({**search_summary, **{f"train_{k}": v for k, v in train_summary.items()},
                      "saved_model": saved, "summary": os.path.join(out, "demo.json")})
    return 0


# -- the parser --------------------------------------------------------------------------------
def build_parser():
    from nasnet_tf.diagram import ENGINES, FORMATS
    from nasnet_tf.export import EXPORT_FORMATS, INPUT_DTYPES

    parser = _Parser(
        prog=PROG,
        description="Neural architecture search with NASNet cells for Keras: search a cell, "
        "train it, export and serve it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("search", help="run the controller search on a dataset",
                       description="Search the NASNet cell space (or the 2016 layer-wise space) "
                       "with the RNN controller: one small child trained per trial, a per-trial "
                       "table, resumable (run again with the same --output-dir), the best "
                       "genotypes written as JSON and drawn.")
    _add_search_args(p)
    _add_data_args(p, batch_size=64)
    p.add_argument("--output-dir", default=os.path.join(DEFAULT_RUNS, "search"))
    p.add_argument("--overwrite", action="store_true", help="start afresh, discarding a "
                   "search in --output-dir")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train", help="train a genotype with a preset layout",
                       description="Train a genotype (JSON file or nasnet_a) with a preset's "
                       "layout and recipe (auxiliary head, drop path, label smoothing, cosine "
                       "or exponential decay); resumable; writes model.keras and its metadata.")
    p.add_argument("genotype", help="a genotype JSON file (e.g. a search's best_genotype.json) "
                   "or a name: nasnet_a")
    _add_train_args(p)
    _add_data_args(p, batch_size=32)
    p.add_argument("--output-dir", default=os.path.join(DEFAULT_RUNS, "train"))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="the main job: search, train, export, reload (offline)",
                       description="A small but real controller search on the built-in digits "
                       "data, training of the best cell into a small NASNet, SavedModel export, "
                       "reload and accuracy. Resumable: run it again to continue.")
    p.add_argument("--output-dir", default=os.path.join(DEFAULT_RUNS, "demo"))
    _add_search_args(p)
    _add_train_args(p, epochs=15, num_cells=1, penultimate_filters=96, prefix="train-")
    _add_data_args(p, batch_size=64)
    p.add_argument("--overwrite", action="store_true", help="start the search afresh")
    # Flips and cutout would destroy 8x8 digits; the demo trains on them as they are.
    p.set_defaults(func=cmd_demo, augment="none")

    p = sub.add_parser("show", help="print a genotype and draw its cells (PNG, SVG, DOT)",
                       description="Print a genotype's cells and draw them as in the NASNet "
                       "paper (graphviz `dot` when installed, else matplotlib).")
    p.add_argument("genotype", help="a genotype JSON file (or search result / export metadata) "
                   "or a name: nasnet_a")
    p.add_argument("--output-dir", default=os.path.join(DEFAULT_RUNS, "cells"),
                   help="where the drawings go (default: %(default)s)")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--no-draw", action="store_true", help="print only")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="export a .keras model as SavedModel, .keras or TFLite",
                       description="Export a trained .keras model for serving: a TF SavedModel "
                       "(signature `serving_default`: images in [0, 255] -> probabilities, "
                       "preprocessing inside, no auxiliary head), a TFLite file, or a .keras "
                       "copy; metadata JSON (genotype, layout, preprocessing) goes beside it.")
    p.add_argument("model", help="the .keras file (e.g. from `nasnet-tf train`)")
    p.add_argument("--output", "-o", required=True,
                   help="SavedModel directory, or a .tflite / .keras file")
    p.add_argument("--format", choices=EXPORT_FORMATS,
                   help="default: from --output (.keras, .tflite, else saved_model)")
    p.add_argument("--input-dtype", choices=INPUT_DTYPES, default="float32",
                   help="dtype of the served images (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with an exported model",
                       description="Classify image files with a SavedModel directory, a .tflite "
                       "or a .keras file; images are resized to the model's size.")
    p.add_argument("model", help="SavedModel directory, .tflite or .keras file")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top-k", type=_positive_int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_predict)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def main(argv=None):
    """Runs `nasnet-tf` with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        return args.func(args) or 0
    except CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
    except (ValueError, RuntimeError) as e:
        # The library's input checks (Keras wording, one line).
        print(f"{prog}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 2
