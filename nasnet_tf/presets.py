"""Named NASNet-A presets (the paper's Table 1 / slim's hparams), one registry holding each
preset's layout (the `NASNet` arguments) and its training recipe (`TrainConfig` defaults).

Recipes: CIFAR follows slim's cifar settings (600 epochs at batch 32, SGD momentum 0.9, lr 0.025
cosine, weight decay 5e-4). ImageNet (mobile, large): the Inception-style RMSProp recipe the
paper trains with (decay 0.9, epsilon 1.0, exponential decay 0.94 every 2 epochs, weight decay
4e-5, parameter moving average 0.9999).
"""

import copy

__all__ = ["PRESETS", "get_preset", "get_recipe"]

PRESETS = {
    "cifar": {
        "layout": {
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
        "recipe": dict(
            epochs=600, batch_size=32, optimizer="sgd", learning_rate=0.025, momentum=0.9,
            nesterov=True, lr_schedule="cosine", weight_decay=5e-4, clipnorm=5.0, ema=False,
        ),
    },
    "mobile": {
        "layout": {
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
        "recipe": dict(
            epochs=312, batch_size=32, optimizer="rmsprop", learning_rate=0.04, momentum=0.9,
            rmsprop_rho=0.9, rmsprop_epsilon=1.0, lr_schedule="exponential", lr_decay_rate=0.94,
            lr_decay_epochs=2.0, weight_decay=4e-5, clipnorm=10.0, ema=True,
        ),
    },
    "large": {
        "layout": {
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
        "recipe": dict(
            epochs=312, batch_size=16, optimizer="rmsprop", learning_rate=0.04, momentum=0.9,
            rmsprop_rho=0.9, rmsprop_epsilon=1.0, lr_schedule="exponential", lr_decay_rate=0.94,
            lr_decay_epochs=2.0, weight_decay=4e-5, clipnorm=10.0, ema=True,
        ),
    },
}
"""Preset name -> `{"layout": NASNet arguments, "recipe": TrainConfig defaults}`. NASNet-A CIFAR
6@768, Mobile 4@1056, Large 6@4032."""


def _entry(name):
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}. Known presets: {sorted(PRESETS)}. Received: preset={name!r}"
        )
    return PRESETS[name]


def get_preset(name):
    """Returns a copy of the layout (the `NASNet` arguments) of preset `name`.

    Example:

    >>> get_preset("mobile")["penultimate_filters"]
    1056
    """
    return copy.deepcopy(_entry(name)["layout"])


def get_recipe(name):
    """Returns a copy of the training recipe (`TrainConfig` defaults) of preset `name`.

    Example:

    >>> get_recipe("cifar")["optimizer"]
    'sgd'
    """
    return copy.deepcopy(_entry(name)["recipe"])
