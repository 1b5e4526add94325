"""Named NASNet-A layouts (the paper's Table 1 / slim's hparams), resolved through one registry."""

import copy

PRESETS = {
    "cifar": {
        "num_cells": 6,
        "penultimate_filters": 768,
        "stem": "cifar",
        "stem_multiplier": 3,
        "skip_reduction": False,
        "auxiliary_head": True,
        "drop_path_keep_prob": 0.6,
        "dense_dropout_keep_prob": 1.0,
        "input_shape": (32, 32, 3),
        "classes": 10,
    },
    "mobile": {
        "num_cells": 4,
        "penultimate_filters": 1056,
        "stem": "imagenet",
        "stem_multiplier": 1,
        "skip_reduction": False,
        "auxiliary_head": True,
        "drop_path_keep_prob": 1.0,
        "dense_dropout_keep_prob": 0.5,
        "input_shape": (224, 224, 3),
        "classes": 1000,
    },
    "large": {
        "num_cells": 6,
        "penultimate_filters": 4032,
        "stem": "imagenet",
        "stem_multiplier": 3,
        "skip_reduction": True,
        "auxiliary_head": True,
        "drop_path_keep_prob": 0.7,
        "dense_dropout_keep_prob": 0.5,
        "input_shape": (331, 331, 3),
        "classes": 1000,
    },
}
"""Preset name -> `NASNet` arguments. NASNet-A CIFAR 6@768, Mobile 4@1056, Large 6@4032."""


def get_preset(name):
    """Returns a copy of the arguments of preset `name`.

    Example:

    >>> get_preset("mobile")["penultimate_filters"]
    1056
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Known presets: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
