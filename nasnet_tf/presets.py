"""Named NASNet-A presets (the paper's Table 1 / slim's hparams), one registry holding each
preset's layout (the `NASNet` arguments) and its training recipe (`TrainConfig` defaults).

Recipes: CIFAR follows slim's cifar settings (600 epochs at batch 32, SGD momentum 0.9, lr 0.025
cosine, weight decay 5e-4). ImageNet (mobile, large): the Inception-style RMSProp recipe the
paper trains with (decay 0.9, epsilon 1.0, exponential decay 0.94 every 2 epochs, weight decay
4e-5, parameter moving average 0.9999).
"""

import copy

__all__ = ["PRESETS", "get_preset", "get_recipe"]

_LAYOUT_FIELDS = ("num_cells", "penultimate_filters", "stem", "stem_multiplier", "skip_reduction",
                  "auxiliary_head", "drop_path_keep_prob", "dense_dropout_keep_prob",
                  "input_shape", "classes")
# The paper's Table 1, one row a preset, in the order of `_LAYOUT_FIELDS`.
_LAYOUTS = {
    #          N  P     stem        mult  skip   aux   drop  dense  input          classes
    "cifar":  (6, 768,  "cifar",    3,    False, True, 0.6,  1.0,   (32, 32, 3),   10),
    "mobile": (4, 1056, "imagenet", 1,    False, True, 1.0,  0.5,   (224, 224, 3), 1000),
    "large":  (6, 4032, "imagenet", 3,    True,  True, 0.7,  0.5,   (331, 331, 3), 1000),
}
_CIFAR_RECIPE = dict(
    epochs=600, batch_size=32, optimizer="sgd", learning_rate=0.025, momentum=0.9, nesterov=True,
    lr_schedule="cosine", weight_decay=5e-4, clipnorm=5.0, ema=False,
)
_IMAGENET_RECIPE = dict(
    epochs=312, batch_size=32, optimizer="rmsprop", learning_rate=0.04, momentum=0.9,
    rmsprop_rho=0.9, rmsprop_epsilon=1.0, lr_schedule="exponential", lr_decay_rate=0.94,
    lr_decay_epochs=2.0, weight_decay=4e-5, clipnorm=10.0, ema=True,
)
_RECIPES = {"cifar": _CIFAR_RECIPE, "mobile": _IMAGENET_RECIPE,
            "large": dict(_IMAGENET_RECIPE, batch_size=16)}

PRESETS = {
    name: {"layout": dict(zip(_LAYOUT_FIELDS, row)), "recipe": _RECIPES[name]}
    for name, row in _LAYOUTS.items()
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
