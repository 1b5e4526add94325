"""The `nasnet-tf` command: search, train, export, show, predict, demo.

Every user error (a missing file, bad JSON, an unknown preset or dataset, an output that cannot
be written) prints one line, `nasnet-tf <command>: error: ...`, to stderr and exits with status 2;
outputs are written whole or not at all.
"""

import argparse
import json
import os
import sys
import tempfile

PROG = "nasnet-tf"
DEFAULT_RUNS = os.path.join("nasnet_runs")


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


def write_json(path, data):
    """Writes JSON whole or not at all (temp file in the same directory, then `os.replace`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
def _load_model_for_export(path):
    from nasnet_tf import export

    if not os.path.exists(path):
        raise CLIError(f"model not found: {path!r} (give a .keras file)")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise CLIError(f"expected a .keras model file, got {path!r}")
    meta = {}
    if os.path.isfile(export.metadata_path(path)):
        meta = _read_json(export.metadata_path(path))
    return export.load_keras(path), meta


def cmd_export(args):
    from nasnet_tf import export

    fmt = args.format or _infer_format(args.output)
    if os.path.exists(args.output) and not args.overwrite:
        raise CLIError(f"{args.output!r} already exists (pass --overwrite to replace it)")
    check_writable(os.path.dirname(os.path.abspath(args.output)))
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


def read_images(paths, shape, dtype, center_crop=False):
    """Reads image files as a `(n, h, w, c)` batch at the model's size, [0, 255] pixels."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from nasnet_tf import augment

    h, w, c = shape
    batch = []
    for path in paths:
        if not os.path.isfile(path):
            raise CLIError(f"image not found: {path!r}")
        try:
            with Image.open(path) as img:
                img = img.convert("L" if c == 1 else "RGB")
                array = np.asarray(img, dtype="uint8")
        except (UnidentifiedImageError, OSError) as e:
            raise CLIError(f"cannot read image {path!r}: {e}") from e
        if array.ndim == 2:
            array = array[..., None]
        image = np.asarray(augment.eval_resize(array, (h, w), center_crop))
        batch.append(image)
    batch = np.stack(batch)
    if dtype == "uint8":
        batch = np.clip(np.round(batch), 0, 255).astype("uint8")
    return batch.astype(dtype)


def cmd_predict(args):
    import numpy as np

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
