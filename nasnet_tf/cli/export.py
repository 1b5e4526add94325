"""`nasnet-tf export`: a trained `.keras` model as a SavedModel, a TFLite file or a copy."""

import os

from nasnet_tf.cli import utils

# nasnet_tf.serving's EXPORT_FORMATS and INPUT_DTYPES, here so that `--help` needs no Keras
# (tests/test_cli_main.py keeps them equal).
FORMATS = ("saved_model", "keras", "tflite")
INPUT_DTYPES = ("float32", "uint8")


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="export a .keras model as SavedModel, .keras or TFLite",
        description="Export a trained .keras model for serving: a TF SavedModel (signature "
        "`serving_default`: images in [0, 255] -> probabilities, preprocessing inside, no "
        "auxiliary head), a TFLite file, or a .keras copy; metadata JSON (genotype, layout, "
        "preprocessing) goes beside it.")
    p.add_argument("model", help="the .keras file (e.g. from `nasnet-tf train`)")
    p.add_argument("--output", "-o", required=True,
                   help="SavedModel directory, or a .tflite / .keras file")
    p.add_argument("--format", choices=FORMATS,
                   help="default: from --output (.keras, .tflite, else saved_model)")
    p.add_argument("--input-dtype", choices=INPUT_DTYPES, default="float32",
                   help="dtype of the served images (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run, needs_backend=True)


def infer_format(output):
    """The export format an output path asks for: `.keras`, `.tflite`, else a SavedModel."""
    if output.endswith(".keras"):
        return "keras"
    if output.endswith(".tflite"):
        return "tflite"
    return "saved_model"


def check_model_file(path):
    """A `CLIError` unless `path` is an existing `.keras` file."""
    if not os.path.exists(path):
        raise utils.CLIError(f"model not found: {path!r} (give a .keras file)")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise utils.CLIError(f"expected a .keras model file, got {path!r}")


def _load_model(path):
    from nasnet_tf import serving

    check_model_file(path)
    meta = {}
    if os.path.isfile(serving.metadata_path(path)):
        meta = utils.read_json(serving.metadata_path(path))
    return serving.load_keras(path), meta


def run(args):
    from nasnet_tf import serving

    fmt = args.format or infer_format(args.output)
    if os.path.exists(args.output) and not args.overwrite:
        raise utils.CLIError(f"{args.output!r} already exists (pass --overwrite to replace it)")
    utils.check_writable(os.path.dirname(os.path.abspath(args.output)))
    check_model_file(args.model)
    if fmt != "keras":
        utils.require_tensorflow(f"{fmt} export")
    model, meta = _load_model(args.model)
    kwargs = dict(
        preprocessing=meta.get("preprocessing"),
        preset=meta.get("preset"),
        class_names=(meta.get("output") or {}).get("class_names"),
        overwrite=args.overwrite,
        metadata={k: v for k, v in meta.items() if k in ("dataset", "augment", "training")},
    )
    if fmt != "keras":
        kwargs["input_dtype"] = args.input_dtype
    path = serving.export_model(model, args.output, format=fmt, **kwargs)
    print(f"exported {fmt} to {path}")
    print(f"metadata: {serving.metadata_path(path)}")
    return 0
