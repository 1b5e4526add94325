"""Export for serving: a TF SavedModel (through `model.export()`), TFLite, and `.keras` files, each
with a metadata JSON beside it (genotype, layout, preprocessing) so the model can be rebuilt.

The served model takes raw images at the model's size, `uint8` or `float32` pixel values in
[0, 255], applies the preprocessing inside, and returns class probabilities; the auxiliary head
is left out (the model runs with `training=False`). SavedModel and TFLite need the TensorFlow
backend; this module raises a clear error under another one.

Every artefact is written whole or not at all: into a temporary sibling, then `os.replace`d.
"""

import json
import os
import shutil
import tempfile
import warnings

import keras

from nasnet_tf.io_utils import write_json

__all__ = [
    "DEFAULT_PREPROCESSING",
    "build_from_metadata",
    "EXPORT_FORMATS",
    "export_model",
    "export_saved_model",
    "export_tflite",
    "load_keras",
    "load_tflite",
    "metadata_path",
    "model_metadata",
    "read_metadata",
    "save_keras",
    "serving_model",
]

EXPORT_FORMATS = ("saved_model", "keras", "tflite")
INPUT_DTYPES = ("float32", "uint8")
METADATA_NAME = "nasnet_tf.json"
SIGNATURE_KEY = "serving_default"
OUTPUT_KEY = "probabilities"

DEFAULT_PREPROCESSING = {"scale": 1.0 / 127.5, "offset": -1.0}
"""Pixels in [0, 255] -> `x * scale + offset`; the default maps them to [-1, 1] (Keras' NASNet
"tf" mode). `scale` and `offset` may be per-channel lists (a mean/std normalisation is
`scale = 1 / (255 * std)`, `offset = -mean / std`)."""


def _require_tensorflow(what):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow backend (set KERAS_BACKEND=tensorflow). "
            f"Received: backend={backend!r}"
        )


def _check_preprocessing(preprocessing):
    if preprocessing is None:
        return dict(DEFAULT_PREPROCESSING)
    if not isinstance(preprocessing, dict) or set(preprocessing) - {"scale", "offset"}:
        raise ValueError(
            "`preprocessing` must be a dict with the keys 'scale' and 'offset' (numbers or "
            f"per-channel lists). Received: preprocessing={preprocessing!r}"
        )
    out = {}
    for key, default in (("scale", 1.0), ("offset", 0.0)):
        value = preprocessing.get(key, default)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(
                f"`preprocessing['{key}']` must be a number or a list of numbers. "
                f"Received: {key}={value!r}"
            )
        out[key] = [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)
    return out


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if not shape or any(d is None for d in shape):
        raise ValueError(
            "Export needs a model with a fixed input size (height, width, channels). "
            f"Received: input shape {shape}"
        )
    return shape


def serving_model(model, preprocessing=None, input_dtype="float32"):
    """Wraps `model` for serving: raw images in, preprocessing, `model(training=False)`,
    `{"probabilities": ...}` out.

    Args:
        model: a `keras.Model` with a fixed input size (e.g. a `nasnet_tf.NASNet`).
        preprocessing: `{"scale": ..., "offset": ...}` applied to [0, 255] pixels; defaults to
            `DEFAULT_PREPROCESSING` ([-1, 1]).
        input_dtype: `"float32"` or `"uint8"`.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
    ...                      auxiliary_head=False)
    >>> serving_model(model, input_dtype="uint8").input.dtype
    'uint8'
    """
    shape = _check_model(model)
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(
            f"`input_dtype` must be one of {list(INPUT_DTYPES)}. "
            f"Received: input_dtype={input_dtype!r}"
        )
    pre = _check_preprocessing(preprocessing)
    images = keras.Input(shape, dtype=input_dtype, name="images")
    x = keras.layers.Rescaling(pre["scale"], pre["offset"], name="preprocessing")(images)
    outputs = model(x, training=False)
    if getattr(model, "classifier_activation", "softmax") in (None, "linear"):
        outputs = keras.layers.Softmax(name="softmax")(outputs)
    return keras.Model(images, {OUTPUT_KEY: outputs}, name=f"{model.name}_serving")


def model_metadata(model, *, preprocessing=None, input_dtype="float32", preset=None,
                   class_names=None, extra=None):
    """The JSON-ready description stored beside an export: genotype, layout, preprocessing,
    input and output, so the model can be rebuilt (`build_nasnet(**layout)`) and retrained.

    Example:

    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3))
    >>> sorted(model_metadata(model)["layout"])[:3]
    ['aux_loss_weight', 'auxiliary_head', 'batch_norm_momentum']
    """
    from nasnet_tf import __version__

    shape = _check_model(model)
    meta = {"nasnet_tf_version": __version__, "keras_version": keras.__version__}
    genotype = getattr(model, "genotype", None)
    if genotype is not None:
        meta["genotype"] = genotype.to_dict()
        layout = model.get_config()
        for key in ("genotype", "name", "trainable"):
            layout.pop(key, None)
        meta["layout"] = layout
    meta["preset"] = preset
    meta["preprocessing"] = _check_preprocessing(preprocessing)
    meta["input"] = {"shape": list(shape), "dtype": input_dtype, "pixel_range": [0, 255],
                     "name": "images"}
    classes = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if classes is not None and len(class_names) != classes:
            raise ValueError(
                f"`class_names` must have one name per class ({classes}). "
                f"Received: {len(class_names)} names"
            )
    meta["output"] = {"name": OUTPUT_KEY, "classes": classes, "class_names": class_names}
    if extra:
        meta.update(extra)
    return meta


def build_from_metadata(metadata):
    """Rebuilds the (untrained) model an export describes, for retraining: a `NASNet` with the
    stored genotype and layout.

    Args:
        metadata: the metadata dict, or the path of an exported artefact or of its JSON.

    Example:

    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3))
    >>> build_from_metadata(model_metadata(model)).count_params() == model.count_params()
    True
    """
    from nasnet_tf.model import NASNet

    if isinstance(metadata, (str, os.PathLike)):
        path = os.fspath(metadata)
        if path.endswith(".json") and os.path.isfile(path):
            with open(path) as f:
                metadata = json.load(f)
        else:
            metadata = read_metadata(path)
    if not isinstance(metadata, dict) or "genotype" not in metadata or "layout" not in metadata:
        raise ValueError(
            "The metadata must hold a 'genotype' and a 'layout' (a nasnet_tf NASNet export). "
            f"Received keys: {sorted(metadata) if isinstance(metadata, dict) else metadata!r}"
        )
    return NASNet(genotype=metadata["genotype"], **metadata["layout"])


def metadata_path(path):
    """Where an artefact's metadata lives: inside a SavedModel directory
    (`<dir>/nasnet_tf.json`), beside a file (`<file>.json`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return os.path.join(path, METADATA_NAME)
    return path + ".json"


def read_metadata(path):
    """Reads the metadata of an exported artefact (SavedModel dir, `.tflite` or `.keras`)."""
    meta = metadata_path(path)
    if not os.path.isfile(meta):
        raise ValueError(
            f"No nasnet_tf metadata found for {os.fspath(path)!r} (looked for {meta!r})"
        )
    with open(meta) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Invalid metadata JSON in {meta!r}: {e}") from e


def _prepare_target(path, overwrite):
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path!r} already exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise ValueError(f"Cannot create the output directory {parent!r}: {e.strerror}") from e
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"The output directory {parent!r} is not writable.")
    return path


def _replace_dir(tmp_dir, path):
    """Moves a finished directory into place; an old one is removed only after the new one is
    complete, so a crash leaves either the old or the new artefact."""
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".old-")
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp_dir, path)
    if old and os.path.isdir(old):
        shutil.rmtree(old, ignore_errors=True)
    elif old:
        os.remove(old)


def export_saved_model(model, path, *, preprocessing=None, input_dtype="float32", preset=None,
                       class_names=None, overwrite=False, metadata=None):
    """Exports a TF SavedModel for serving, with `nasnet_tf.json` metadata inside its directory.

    The signature `serving_default` (also the `serve` function) takes `images` of shape
    `(batch, height, width, channels)` in `input_dtype`, pixel values in [0, 255], and returns
    `{"probabilities": (batch, classes)}`. Reload it with plain TensorFlow:
    `tf.saved_model.load(path).serve(images)["probabilities"]`.

    Args:
        model: a `keras.Model` with a fixed input size.
        path: the SavedModel directory.
        preprocessing: see `serving_model`.
        input_dtype: `"float32"` or `"uint8"`.
        preset: the preset name the layout came from, recorded in the metadata.
        class_names: optional class names, recorded in the metadata.
        overwrite: replace an existing `path`.
        metadata: extra JSON-ready entries for the metadata.

    Returns:
        The absolute path of the SavedModel directory.

    Example:

    >>> import tempfile, os
    >>> from nasnet_tf import build_nasnet
    >>> model = build_nasnet(num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3),
    ...                      auxiliary_head=False)
    >>> path = export_saved_model(model, os.path.join(tempfile.mkdtemp(), "served"))
    >>> sorted(read_metadata(path)["input"])
    ['dtype', 'name', 'pixel_range', 'shape']
    """
    _require_tensorflow("SavedModel export")
    meta = model_metadata(model, preprocessing=preprocessing, input_dtype=input_dtype,
                          preset=preset, class_names=class_names, extra=metadata)
    meta["format"] = "saved_model"
    meta["signature"] = SIGNATURE_KEY
    served = serving_model(model, preprocessing, input_dtype)
    path = _prepare_target(path, overwrite)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".export-")
    try:
        target = os.path.join(tmp, "saved_model")
        served.export(target, format="tf_saved_model", verbose=False)
        write_json(os.path.join(target, METADATA_NAME), meta)
        _replace_dir(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def export_tflite(model, path, *, preprocessing=None, input_dtype="float32", preset=None,
                  class_names=None, overwrite=False, metadata=None):
    """Converts `model` to TFLite through its SavedModel (same signature, preprocessing inside)
    and writes `<path>.json` metadata beside it.

    `model` is a `keras.Model`, or the path of a SavedModel exported by `export_saved_model`
    (its metadata is carried over).

    Returns:
        The absolute path of the `.tflite` file.
    """
    _require_tensorflow("TFLite export")
    import tensorflow as tf

    path = _prepare_target(path, overwrite)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path), prefix=".tflite-") as tmp:
        if isinstance(model, (str, os.PathLike)):
            saved = os.fspath(model)
            if not os.path.isfile(os.path.join(saved, "saved_model.pb")):
                raise ValueError(f"Not a SavedModel directory: {saved!r}")
            meta = read_metadata(saved)
        else:
            saved = export_saved_model(
                model, os.path.join(tmp, "saved_model"), preprocessing=preprocessing,
                input_dtype=input_dtype, preset=preset, class_names=class_names,
                metadata=metadata,
            )
            meta = read_metadata(saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE_KEY])
        content = converter.convert()
        meta["format"] = "tflite"
        tmp_file = os.path.join(tmp, "model.tflite")
        with open(tmp_file, "wb") as f:
            f.write(content)
        write_json(os.path.join(tmp, "model.tflite.json"), meta)
        os.replace(tmp_file, path)
        os.replace(os.path.join(tmp, "model.tflite.json"), metadata_path(path))
    return path


def load_tflite(path):
    """Returns a callable `images -> probabilities` (NumPy) for a `.tflite` file, through the
    TFLite interpreter's `serving_default` signature runner."""
    _require_tensorflow("TFLite inference")
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter announces its move to LiteRT
        interpreter = tf.lite.Interpreter(model_path=os.fspath(path))
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)

    def predict(images):
        return runner(images=images)[OUTPUT_KEY]

    return predict


def save_keras(model, path, *, preprocessing=None, preset=None, class_names=None,
               overwrite=False, metadata=None):
    """Saves the full model (aux head and all, for retraining) as `.keras`, with `<path>.json`
    metadata beside it (the preprocessing the model expects, its preset, class names).

    Returns:
        The absolute path of the `.keras` file.
    """
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"A Keras model file must end in '.keras'. Received: path={path!r}")
    meta = model_metadata(model, preprocessing=preprocessing, preset=preset,
                          class_names=class_names, extra=metadata)
    meta["format"] = "keras"
    path = _prepare_target(path, overwrite)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path), prefix=".keras-") as tmp:
        tmp_file = os.path.join(tmp, "model.keras")
        model.save(tmp_file)
        write_json(os.path.join(tmp, "model.keras.json"), meta)
        os.replace(tmp_file, path)
        os.replace(os.path.join(tmp, "model.keras.json"), metadata_path(path))
    return path


def load_keras(path, compile=False):
    """Loads a `.keras` model saved by `save_keras` (or `model.save`), with a clear error for a
    missing or unreadable file."""
    # Registers the package's layers (and training schedules) before deserialising.
    from nasnet_tf import model, training  # noqa: F401

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"No such model file: {path!r}")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(f"Cannot load the Keras model {path!r}: {e}") from e


def export_model(model, path, format="saved_model", **kwargs):
    """Exports `model` in one of `EXPORT_FORMATS`: `"saved_model"`, `"keras"` or `"tflite"`.

    Keyword arguments go to `export_saved_model`, `save_keras` or `export_tflite`.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"Unknown export format {format!r}. Accepted: {list(EXPORT_FORMATS)}"
        )
    if format == "keras":
        kwargs.pop("input_dtype", None)
        return save_keras(model, path, **kwargs)
    if format == "tflite":
        return export_tflite(model, path, **kwargs)
    return export_saved_model(model, path, **kwargs)
