"""nasnet_tf: NASNet search space, cells and builder for Keras 3 (TensorFlow and JAX backends).

The public names load on first use (PEP 562), so that `import nasnet_tf` (and the `nasnet-tf`
command's `--help`, argument errors and `show`) import neither TensorFlow, JAX nor Keras.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Block": "nasnet_tf.genotype",
    "CellGenotype": "nasnet_tf.genotype",
    "COMBINE_OPS": "nasnet_tf.genotype",
    "DropPathScheduler": "nasnet_tf.callbacks",
    "Genotype": "nasnet_tf.genotype",
    "Layer": "nasnet_tf.layerwise",
    "LayerwiseGenotype": "nasnet_tf.layerwise",
    "NASNET_A": "nasnet_tf.genotype",
    "NASNet": "nasnet_tf.model",
    "NASNetCell": "nasnet_tf.cell",
    "OPS": "nasnet_tf.ops",
    "OP_NAMES": "nasnet_tf.genotype",
    "PRESETS": "nasnet_tf.presets",
    "build_layerwise_cnn": "nasnet_tf.layerwise",
    "build_nasnet": "nasnet_tf.builder",
    "from_slim": "nasnet_tf.genotype",
    "get_op": "nasnet_tf.ops",
    "get_preset": "nasnet_tf.presets",
    "load_keras_application_weights": "nasnet_tf.keras_weights",
    "load_weights": "nasnet_tf.builder",
    "set_drop_path_progress": "nasnet_tf.cell",
}

__all__ = sorted(_EXPORTS, key=str.lower)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nasnet_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
