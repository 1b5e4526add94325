"""nasnet_tf: NASNet search space, cells and builder for Keras 3 (TensorFlow and JAX backends)."""

from nasnet_tf.builder import build_nasnet, load_weights
from nasnet_tf.cell import DropPathScheduler, NASNetCell, set_drop_path_progress
from nasnet_tf.genotype import COMBINE_OPS, NASNET_A, Block, CellGenotype, Genotype, from_slim
from nasnet_tf.keras_weights import load_keras_application_weights
from nasnet_tf.model import NASNet
from nasnet_tf.ops import OP_NAMES, OPS, get_op
from nasnet_tf.presets import PRESETS, get_preset

__version__ = "0.1.0"

__all__ = [
    "Block",
    "CellGenotype",
    "COMBINE_OPS",
    "DropPathScheduler",
    "Genotype",
    "NASNET_A",
    "NASNet",
    "NASNetCell",
    "OPS",
    "OP_NAMES",
    "PRESETS",
    "build_nasnet",
    "from_slim",
    "get_op",
    "get_preset",
    "load_keras_application_weights",
    "load_weights",
    "set_drop_path_progress",
]
