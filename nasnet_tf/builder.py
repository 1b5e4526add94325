"""`build_nasnet`: a NASNet from a genotype and a named preset, optionally with local weights."""

import os

from nasnet_tf.genotype import NASNET_A, Genotype
from nasnet_tf.model import NASNet
from nasnet_tf.presets import get_preset

_UNSET = object()


def build_nasnet(
    genotype=None,
    *,
    preset="cifar",
    num_cells=_UNSET,
    penultimate_filters=_UNSET,
    stem=_UNSET,
    stem_multiplier=_UNSET,
    skip_reduction=_UNSET,
    auxiliary_head=_UNSET,
    drop_path_keep_prob=_UNSET,
    dense_dropout_keep_prob=_UNSET,
    input_shape=_UNSET,
    classes=_UNSET,
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    weights=None,
    seed=None,
    batch_norm_momentum=0.9997,
    name=None,
):
    """Builds a NASNet: `preset` gives the layout, every other argument overrides it.

    Args:
        genotype: a `Genotype`, its dict, or a path to its JSON file. Defaults to `NASNET_A`.
        preset: `"cifar"` (6@768, 32x32, 10 classes), `"mobile"` (4@1056, 224x224) or
            `"large"` (6@4032, 331x331); see `nasnet_tf.PRESETS`.
        num_cells: N, normal cells between reductions.
        penultimate_filters: P (24 x the first stage's filters).
        stem: `"imagenet"` or `"cifar"`.
        stem_multiplier: scales the stem conv's filters.
        skip_reduction: the cell after a reduction reads the output from before it.
        auxiliary_head: the training-only auxiliary classifier at 2/3 depth.
        drop_path_keep_prob: ScheduledDropPath keep probability (1.0 = off).
        dense_dropout_keep_prob: keep probability of the dropout before the classifier.
        input_shape: `(height, width, channels)`; any size the layout allows.
        classes: number of classes.
        include_top: whether to end with the classifier.
        pooling: without the top, `None`, `"avg"` or `"max"`.
        classifier_activation: `"softmax"`, or `None` for logits.
        weights: `None`, a weights file saved from a nasnet_tf model (`*.weights.h5`), or a
            Keras applications NASNet weight file in Keras' legacy `.h5` format (as
            `keras.applications.NASNetMobile` downloads it), read from local disk.
        seed: seed of the drop-path and dropout noise.
        batch_norm_momentum: momentum of every batch normalization (slim's 0.9997; use a
            lower one, e.g. 0.9, for runs of a few hundred steps such as search children).
        name: the model's name (default `nasnet_<preset>`).

    Returns:
        A `nasnet_tf.NASNet` model.

    Example:

    >>> model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=96)
    >>> model.output_shape
    (None, 10)
    """
    config = get_preset(preset)
    overrides = {
        "num_cells": num_cells,
        "penultimate_filters": penultimate_filters,
        "stem": stem,
        "stem_multiplier": stem_multiplier,
        "skip_reduction": skip_reduction,
        "auxiliary_head": auxiliary_head,
        "drop_path_keep_prob": drop_path_keep_prob,
        "dense_dropout_keep_prob": dense_dropout_keep_prob,
        "input_shape": input_shape,
        "classes": classes,
    }
    config.update({k: v for k, v in overrides.items() if v is not _UNSET})
    if not include_top:
        config["auxiliary_head"] = False
    model = NASNet(
        genotype=_as_genotype(genotype),
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        seed=seed,
        batch_norm_momentum=batch_norm_momentum,
        name=name or f"nasnet_{preset}",
        **config,
    )
    if weights is not None:
        load_weights(model, weights)
    return model


def _as_genotype(genotype):
    if genotype is None:
        return NASNET_A
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, dict):
        return Genotype.from_dict(genotype)
    if isinstance(genotype, (str, os.PathLike)):
        if not os.path.isfile(genotype):
            raise ValueError(
                "`genotype` must be a Genotype, its dict, or the path of a genotype JSON file. "
                f"No such file: {os.fspath(genotype)!r}"
            )
        with open(genotype) as f:
            return Genotype.from_json(f.read())
    raise ValueError(
        "`genotype` must be a Genotype, its dict, or the path of a genotype JSON file. "
        f"Received: genotype={genotype!r}"
    )


def load_weights(model, path):
    """Loads local weights into `model`: a nasnet_tf `*.weights.h5` file, or a Keras
    applications NASNet file in Keras' legacy `.h5` format (converted by layer name)."""
    from nasnet_tf import keras_weights

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            "`weights` must be None or the path of a local weights file. "
            f"No such file: {path!r}"
        )
    if keras_weights.is_legacy_h5(path):
        keras_weights.load_keras_application_weights(model, path)
    else:
        model.load_weights(path)
