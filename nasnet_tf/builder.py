"""`build_nasnet`: a NASNet from a genotype and a named preset, optionally with local weights."""

import os

from nasnet_tf import validators
from nasnet_tf.genotype import NASNET_A, as_genotype
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
    include_top=True, pooling=None, classifier_activation="softmax",
    weights=None,
    seed=None,
    batch_norm_momentum=0.9997, sync_batch_norm=False,
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
        drop_path_keep_prob: ScheduledDropPath keep probability (1.0 = off). The drop-path
            progress starts at 0.0 (nothing dropped): `nasnet_tf.training.train` adds
            `nasnet_tf.DropPathScheduler`, which ramps it to 1 over the run; for a plain
            `model.fit`, pass `callbacks=[nasnet_tf.DropPathScheduler(total_steps)]`.
        dense_dropout_keep_prob: keep probability of the dropout before the classifier.
        input_shape: `(height, width, channels)`; any size the layout allows.
        classes: number of classes.
        include_top: whether to end with the classifier.
        pooling: without the top, `None`, `"avg"` or `"max"`.
        classifier_activation: `"softmax"`, or `None` for logits.
        weights: `None`, or a local weights file: one saved from a nasnet_tf model
            (`*.weights.h5`); a Keras applications NASNet file in Keras' legacy `.h5` format
            (as `keras.applications.NASNetMobile` downloads it); or a Keras 3 `.weights.h5`
            file saved from `keras.applications.NASNetMobile` / `NASNetLarge` (for the
            `"mobile"` / `"large"` layouts). Keras' files go through
            `nasnet_tf.load_keras_application_weights`.
        seed: seed of the drop-path and dropout noise.
        batch_norm_momentum: momentum of every batch normalization (slim's 0.9997; use a
            lower one, e.g. 0.9, for runs of a few hundred steps such as search children).
        sync_batch_norm: synchronize every batch normalization across the replicas of a
            `tf.distribute` strategy (`nasnet_tf.training.train` sets it when it trains on
            several replicas).
        name: the model's name (default `nasnet_<preset>`).

    Returns:
        A `nasnet_tf.NASNet` model.

    Example:

    >>> model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=96,
    ...                      auxiliary_head=False)
    >>> model.output_shape
    (None, 10)
    """
    config = get_preset(preset)
    config.update(validators.given(
        _UNSET, num_cells=num_cells, penultimate_filters=penultimate_filters, stem=stem,
        stem_multiplier=stem_multiplier, skip_reduction=skip_reduction,
        auxiliary_head=auxiliary_head, drop_path_keep_prob=drop_path_keep_prob,
        dense_dropout_keep_prob=dense_dropout_keep_prob, input_shape=input_shape, classes=classes,
    ))
    if not include_top:
        config["auxiliary_head"] = False
    model = NASNet(
        genotype=as_genotype(genotype, default=NASNET_A),
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        seed=seed,
        batch_norm_momentum=batch_norm_momentum,
        sync_batch_norm=sync_batch_norm,
        name=name or f"nasnet_{preset}",
        **config,
    )
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model, path):
    """Loads local weights into `model`: a nasnet_tf `*.weights.h5` file, or a Keras
    applications NASNet file (Keras' legacy `.h5` format, or a Keras 3 `.weights.h5` file of
    `NASNetMobile` / `NASNetLarge`), converted by `nasnet_tf.load_keras_application_weights`.

    Example:

    >>> import os, tempfile
    >>> model = build_nasnet(preset="cifar", num_cells=1, penultimate_filters=48)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
    >>> model.save_weights(path)
    >>> load_weights(model, path)
    """
    from nasnet_tf import keras_weights

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            "`weights` must be None or the path of a local weights file. "
            f"No such file: {path!r}"
        )
    if keras_weights.is_legacy_h5(path) or keras_weights.is_keras_application_weights(path):
        keras_weights.load_keras_application_weights(model, path)
    else:
        model.load_weights(path)
