"""Loading `keras.applications.NASNetMobile` / `NASNetLarge` weights into a nasnet_tf NASNet.

Keras' NASNet is NASNet-A with the ImageNet stem, written cell by cell with its own layer names.
Our model runs the same graph from the genotype, so every Keras layer that has weights maps to one
of ours by name; this module holds that mapping (Keras' quirks included: the fifth left op of its
reduction cell is named `reduction_left4_*`).
"""

import h5py

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
        source: a `keras.applications` NASNet model, or the path of a Keras legacy `.h5`
            weights file such as Keras' `NASNet-mobile.h5`.

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
    if isinstance(source, str):
        weights = _read_legacy_h5(source)
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
    # Keras' NASNet has no auxiliary head and no drop path: those keep their own values.
    unmapped = [
        w.path
        for layer in model.layers
        if not layer.name.startswith("aux_")
        for w in layer.weights
        if id(w) not in mapped and "drop_path_progress" not in w.path
    ]
    if missing or wrong or unmapped:
        raise ValueError(
            "The Keras NASNet weights do not fit this model's layout (check `num_cells`, "
            "`penultimate_filters`, `stem_multiplier`, `skip_reduction`, `include_top` and "
            f"`classes`). Missing layers: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"layers of another shape: {wrong[:5]}{'...' if len(wrong) > 5 else ''}; "
            f"weights with no Keras counterpart: {unmapped[:5]}"
        )
