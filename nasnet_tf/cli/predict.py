"""`nasnet-tf predict`: classify image files with a SavedModel, a `.tflite` or a `.keras`."""

import json
import os

from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="classify image files with an exported model",
        description="Classify image files with a SavedModel directory, a .tflite or a .keras "
        "file; images are resized to the model's size.")
    p.add_argument("model", help="SavedModel directory, .tflite or .keras file")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top-k", type=cli_args.positive_int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run, needs_backend=True)


def load_predictor(path):
    """Returns `(predict, metadata)` for a SavedModel directory, a `.tflite` or a `.keras` file:
    `predict(images)` maps raw [0, 255] images at the model's size to probabilities."""
    import numpy as np

    from nasnet_tf import serving

    if not os.path.exists(path):
        raise utils.CLIError(f"model not found: {path!r}")
    meta_path = serving.metadata_path(path)
    meta = utils.read_json(meta_path) if os.path.exists(meta_path) else {}
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise utils.CLIError(f"{path!r} is not a SavedModel directory (no saved_model.pb)")
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        serve = loaded.signatures[serving.SIGNATURE_KEY]
        spec = serve.structured_input_signature[1]["images"]
        meta.setdefault("input", {"shape": list(spec.shape[1:]), "dtype": spec.dtype.name})

        def predict(images, _loaded=loaded):  # the signature needs `loaded` alive
            return serve(images=tf.constant(images))[serving.OUTPUT_KEY].numpy()
    elif path.endswith(".tflite"):
        predict = serving.load_tflite(path)
        if not meta:
            raise utils.CLIError(f"no metadata beside {path!r} (expected {meta_path!r})")
    elif path.endswith(".keras"):
        model = serving.load_keras(path)
        pre = serving._check_preprocessing(meta.get("preprocessing"))
        meta.setdefault("input", {"shape": list(model.inputs[0].shape[1:]), "dtype": "float32"})
        meta["input"]["dtype"] = "float32"

        def predict(images):
            x = np.asarray(images, "float32") * np.asarray(pre["scale"], "float32") + np.asarray(
                pre["offset"], "float32")
            return np.asarray(model.predict(x, verbose=0))
    else:
        raise utils.CLIError(f"unknown model type {path!r} (give a SavedModel directory, a "
                             ".tflite or a .keras file)")
    return predict, meta


def _open_image(path, mode=None):
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise utils.CLIError(f"image not found: {path!r}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode) if mode else img.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise utils.CLIError(f"cannot read image {path!r}: {e}") from e


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


def run(args):
    import numpy as np

    if not os.path.exists(args.model):
        raise utils.CLIError(f"model not found: {args.model!r}")
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
