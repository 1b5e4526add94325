"""Loading `keras.applications.NASNetMobile` / `NASNetLarge` weights into a nasnet_tf NASNet.

Keras' NASNet is NASNet-A with the ImageNet stem, written cell by cell with its own layer names.
Our model runs the same graph from the genotype, so every Keras layer that has weights maps to one
of ours by name; this module holds that mapping (Keras' quirks included: the fifth left op of its
reduction cell is named `reduction_left4_*`).

Keras' weights come as a `keras.applications` model, a Keras legacy `.h5` file (Keras' ImageNet
downloads) or a Keras 3 `.weights.h5` file saved from `NASNetMobile` / `NASNetLarge`. A Keras 3
file names its layers by class and position (`separable_conv2d_12`), not by layer name, so it is
read through the Keras model of the same layout, which this module builds (without weights).
"""

import os

import h5py
import keras

from nasnet_tf.cell import NASNetCell
from nasnet_tf.genotype import NASNET_A
from nasnet_tf.ops import FactorizedReduction, ReLUConvBN, SeparableConvOp


def is_legacy_h5(path):
    """Whether `path` is a Keras legacy `.h5` weights/model file (with `layer_names`)."""
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            return "layer_names" in group.attrs
    except OSError:
        return False


def is_keras_application_weights(path):
    """Whether `path` is a Keras 3 `.weights.h5` file of a `keras.applications` NASNet.

    Keras 3 files list a functional model's layers under `layers/`, keyed by class: Keras'
    NASNet has `SeparableConv2D` layers at its top level, a nasnet_tf model only inside cells.
    """
    try:
        with h5py.File(path, "r") as f:
            group = f.get("layers")
            return isinstance(group, h5py.Group) and "separable_conv2d" in group
    except OSError:
        return False


# The `keras.applications` NASNets and their layouts (Keras' `stem_block_filters` = 32 x m).
_APPLICATIONS = {
    "NASNetMobile": dict(num_cells=4, penultimate_filters=1056, stem_multiplier=1,
                         skip_reduction=False, filter_multiplier=2),
    "NASNetLarge": dict(num_cells=6, penultimate_filters=4032, stem_multiplier=3,
                        skip_reduction=True, filter_multiplier=2),
}


def _keras_application_from_file(model, path):
    """The `keras.applications` NASNet of `model`'s layout with the Keras 3 file's weights."""
    layout = {key: getattr(model, key) for key in _APPLICATIONS["NASNetMobile"]}
    names = [name for name, spec in _APPLICATIONS.items() if spec == layout]
    if not names:
        raise ValueError(
            f"{path!r} is a Keras 3 weights file of a `keras.applications` NASNet, which loads "
            "into the NASNetMobile or NASNetLarge layout only (`build_nasnet(preset='mobile')` "
            "or `preset='large'`). For another layout, load it into the Keras model it was "
            "saved from and copy that: `keras_model.load_weights(path)`, then "
            "`nasnet_tf.load_keras_application_weights(model, keras_model)`. "
            f"Received a model with {layout}"
        )
    application = getattr(keras.applications, names[0])
    theirs = application(
        input_shape=model.image_shape,
        include_top=model.include_top,
        weights=None,
        classes=model.classes if model.include_top else 1000,
    )
    try:
        theirs.load_weights(path)
    except ValueError as error:
        raise ValueError(
            f"{path!r} does not load into `keras.applications.{names[0]}` with this model's "
            f"`input_shape`, `include_top` and `classes`. Load it into the Keras model it was "
            "saved from, then call `nasnet_tf.load_keras_application_weights(model, "
            f"keras_model)`. Keras said: {str(error).splitlines()[0]}"
        ) from None
    return theirs


def _read_legacy_h5(path):
    """Layer name -> list of arrays, from a Keras legacy `.h5` file."""
    weights = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else raw
            g = group[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            weights[name] = [g[n][()] for n in names]
    return weights


def _by_name(layers):
    return {layer.name: layer for layer in layers}


def _cell_pairs(cell):
    """Yields (our layer, Keras layer name) for one cell."""
    kind, block_id = cell.name.split("_cell_", 1)
    chain = _by_name(cell.base.chain)
    yield chain["conv"], f"{kind}_conv_1_{block_id}"
    yield chain["bn"], f"{kind}_bn_1_{block_id}"
    if isinstance(cell.adjust, FactorizedReduction):
        yield cell.adjust.conv_1, f"adjust_conv_1_{block_id}"
        yield cell.adjust.conv_2, f"adjust_conv_2_{block_id}"
        yield cell.adjust.bn, f"adjust_bn_{block_id}"
    elif isinstance(cell.adjust, ReLUConvBN):
        chain = _by_name(cell.adjust.chain)
        yield chain["conv"], f"adjust_conv_projection_{block_id}"
        yield chain["bn"], f"adjust_bn_{block_id}"
    for k, pair in enumerate(cell.block_ops):
        for side, op in zip(("left", "right"), pair):
            if not isinstance(op, SeparableConvOp):
                continue
            number = 4 if (kind, side, k) == ("reduction", "left", 4) else k + 1
            tag = f"{kind}_{side}{number}_{block_id}"
            for sub in op.chain:
                if sub.weights:
                    yield sub, f"{sub.name}_{tag}"


def _pairs(model):
    for layer in model.layers:
        if isinstance(layer, NASNetCell):
            yield from _cell_pairs(layer)
        elif layer.name in ("stem_conv1", "stem_bn1", "predictions"):
            yield layer, layer.name


def load_keras_application_weights(model, source):
    """Copies Keras' NASNet weights into `model`, layer by layer.

    Args:
        model: a nasnet_tf `NASNet` with the `NASNET_A` genotype and the ImageNet stem, in the
            same layout as the source (e.g. `build_nasnet(preset="mobile")`).
        source: a `keras.applications` NASNet model; the path of a Keras legacy `.h5`
            weights file such as Keras' `NASNet-mobile.h5`; or the path of a Keras 3
            `.weights.h5` file saved from `keras.applications.NASNetMobile` or `NASNetLarge`
            (for the NASNetMobile / NASNetLarge layouts: it is read through that Keras model,
            built here).

    Example:

    >>> import keras
    >>> from nasnet_tf import build_nasnet
    >>> theirs = keras.applications.NASNetMobile(weights=None)
    >>> ours = build_nasnet(preset="mobile", auxiliary_head=False)
    >>> load_keras_application_weights(ours, theirs)
    """
    if model.genotype != NASNET_A or model.stem != "imagenet":
        raise ValueError(
            "Keras' NASNet weights fit only the NASNET_A genotype with the 'imagenet' stem. "
            f"Received: genotype={model.genotype}, stem={model.stem!r}"
        )
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        if is_legacy_h5(source):
            weights = _read_legacy_h5(source)
        elif is_keras_application_weights(source):
            theirs = _keras_application_from_file(model, source)
            weights = {layer.name: layer.get_weights() for layer in theirs.layers}
        else:
            raise ValueError(
                "`source` must be a keras.applications NASNet, or the path of its weights in "
                "Keras' legacy `.h5` format or a Keras 3 `.weights.h5` file. "
                f"Received: source={source!r}"
            )
    else:
        weights = {layer.name: layer.get_weights() for layer in source.layers}
    missing, wrong, mapped = [], [], set()
    for ours, keras_name in _pairs(model):
        mapped.update(id(w) for w in ours.weights)
        if keras_name not in weights:
            missing.append(keras_name)
            continue
        values = weights[keras_name]
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in ours.weights]:
            wrong.append(keras_name)
            continue
        ours.set_weights(values)
    # Keras' NASNet has no auxiliary head: it keeps its own values. (Drop-path progress is
    # state, not a weight.)
    unmapped = [
        w.path
        for layer in model.layers
        if not layer.name.startswith("aux_")
        for w in layer.weights
        if id(w) not in mapped
    ]
    if missing or wrong or unmapped:
        raise ValueError(
            "The Keras NASNet weights do not fit this model's layout (check `num_cells`, "
            "`penultimate_filters`, `stem_multiplier`, `skip_reduction`, `include_top` and "
            f"`classes`). Missing layers: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"layers of another shape: {wrong[:5]}{'...' if len(wrong) > 5 else ''}; "
            f"weights with no Keras counterpart: {unmapped[:5]}"
        )
