"""The NASNet backbone: a functional `keras.Model` that stacks genotype-driven cells."""

import keras
from keras import layers, ops

from nasnet_tf import validators
from nasnet_tf.cell import NASNetCell
from nasnet_tf.compiled_state import build_compiled_state, label_row
from nasnet_tf.genotype import NASNET_A, Genotype
from nasnet_tf.ops import BN_MOMENTUM, batch_norm

STEMS = ("imagenet", "cifar")
POOLINGS = (None, "avg", "max")


@keras.saving.register_keras_serializable(package="nasnet_tf")
class NASNet(keras.Model):
    """A NASNet built from a genotype: stem -> N normal -> reduction -> N normal -> reduction
    -> N normal -> head, filters doubling at each reduction (`N @ P` in the paper's notation).

    Layer and cell names follow `keras.applications.NASNet` (`stem_conv1`,
    `normal_cell_0`, `reduction_cell_reduce_4`, `predictions`, ...). Most users call
    `nasnet_tf.build_nasnet`, which fills these arguments from a named preset.

    Args:
        genotype: a `Genotype` (or its dict). Defaults to `NASNET_A`.
        num_cells: N, the normal cells repeated between reductions.
        penultimate_filters: P = 24 x F, where F is the first stage's cell filters.
        stem: `"imagenet"` (3x3/2 conv and two reduction cells) or `"cifar"` (3x3 conv).
        stem_multiplier: scales the stem conv's filters (32 x m for ImageNet, F x m for CIFAR).
        filter_multiplier: filter growth at each reduction.
        skip_reduction: the normal cell after a reduction takes as its previous input the
            output from before the reduction (NASNet-A Large).
        auxiliary_head: adds the auxiliary classifier at 2/3 depth. In training the model
            returns `[predictions, aux_predictions]` and adds `aux_loss_weight` times the
            compiled loss on the auxiliary output; at inference it returns `predictions` only.
        aux_loss_weight: weight of the auxiliary loss.
        drop_path_keep_prob: ScheduledDropPath keep probability of the last cell (1.0: off).
            Each cell's drop-path progress starts at 0.0 (nothing dropped): `nasnet_tf.training
            .train` adds `nasnet_tf.DropPathScheduler`, which ramps it to 1 over the run; for a
            plain `model.fit`, pass `callbacks=[nasnet_tf.DropPathScheduler(total_steps)]`.
            The progress is state, not a weight: `count_params()` is the same with drop path
            on or off.
        dense_dropout_keep_prob: keep probability of the dropout before the classifier.
        input_shape: `(height, width, channels)`.
        classes: number of classes (with `include_top`).
        include_top: whether to end with the classifier.
        pooling: without the top, `None`, `"avg"` or `"max"`.
        classifier_activation: activation of the classifier (`None` for logits).
        seed: seed of the drop-path noise.
        batch_norm_momentum: momentum of every batch normalization (slim's 0.9997 by default;
            runs of a few hundred steps, such as search children, need a lower one).
        sync_batch_norm: whether every batch normalization is synchronized across the
            replicas of a `tf.distribute` strategy (`BatchNormalization(synchronized=True)`;
            no effect on one device or under JAX).

    Example:

    >>> model = NASNet(num_cells=1, penultimate_filters=96, input_shape=(32, 32, 3))
    >>> model.predict(keras.ops.ones((1, 32, 32, 3)), verbose=0).shape
    (1, 10)
    """

    def __init__(
        self,
        genotype=NASNET_A,
        num_cells=6,
        penultimate_filters=768,
        stem="cifar",
        stem_multiplier=3,
        filter_multiplier=2,
        skip_reduction=False,
        auxiliary_head=False,
        aux_loss_weight=0.4,
        drop_path_keep_prob=1.0,
        dense_dropout_keep_prob=1.0,
        input_shape=(32, 32, 3),
        classes=10,
        include_top=True,
        pooling=None,
        classifier_activation="softmax",
        seed=None,
        batch_norm_momentum=BN_MOMENTUM,
        sync_batch_norm=False,
        name="nasnet",
        **kwargs,
    ):
        # === Validation ===
        if isinstance(genotype, dict):
            genotype = Genotype.from_dict(genotype)
        if not isinstance(genotype, Genotype):
            raise ValueError(
                "`genotype` must be a nasnet_tf.Genotype or its dict. "
                f"Received: genotype={genotype!r}"
            )
        validators.positive_int(num_cells, "num_cells")
        validators.positive_int(filter_multiplier, "filter_multiplier")
        validators.positive_int(penultimate_filters, "penultimate_filters")
        if stem not in STEMS:
            raise ValueError(f"`stem` must be one of {list(STEMS)}. Received: stem={stem!r}")
        divisor = 24 * (filter_multiplier**2 if stem == "imagenet" else 1)
        if penultimate_filters % divisor:
            raise ValueError(
                f"`penultimate_filters` must be a multiple of {divisor} (24 x F"
                + (", F divisible by filter_multiplier**2 for the ImageNet stem" if
                   stem == "imagenet" else "")
                + f"). Received: penultimate_filters={penultimate_filters}"
            )
        validators.positive_float(stem_multiplier, "stem_multiplier")
        validators.probability(drop_path_keep_prob, "drop_path_keep_prob")
        validators.momentum(batch_norm_momentum, "batch_norm_momentum")
        validators.probability(dense_dropout_keep_prob, "dense_dropout_keep_prob")
        input_shape = validators.input_shape(input_shape)
        min_size = 3 if stem == "imagenet" else 1
        if min(input_shape[:2]) < min_size:
            raise ValueError(
                f"The {stem} stem needs inputs of at least {min_size}x{min_size}. "
                f"Received: input_shape={input_shape}"
            )
        if include_top:
            validators.positive_int(classes, "classes")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {list(POOLINGS)}. Received: {pooling!r}")
        if auxiliary_head and not include_top:
            raise ValueError(
                "`auxiliary_head=True` needs `include_top=True` (it is a classifier)."
            )

        # === Functional model ===
        filters = penultimate_filters // 24
        fm = filter_multiplier
        num_stem_cells = 2 if stem == "imagenet" else 0
        total_cells = 3 * num_cells + 2 + num_stem_cells
        position = iter(range(total_cells))

        def cell(x, p, cell_filters, reduction, block_id):
            kind = "reduction" if reduction else "normal"
            index = next(position)
            layer = NASNetCell(
                genotype.reduction if reduction else genotype.normal,
                cell_filters,
                reduction=reduction,
                drop_path_keep_prob=drop_path_keep_prob,
                cell_index=index,
                total_cells=total_cells,
                seed=None if seed is None else seed + index,
                bn_momentum=batch_norm_momentum,
                sync_batch_norm=sync_batch_norm,
                name=f"{kind}_cell_{block_id}",
            )
            return layer(x if p is None else [x, p]), x

        inputs = keras.Input(shape=input_shape, name="images")
        conv = dict(use_bias=False, kernel_initializer="he_normal", name="stem_conv1")
        if stem == "imagenet":
            x = layers.Conv2D(int(32 * stem_multiplier), 3, strides=2, padding="valid", **conv)(
                inputs
            )
            x = batch_norm("stem_bn1", batch_norm_momentum, sync_batch_norm)(x)
            x, p = cell(x, None, filters // fm**2, True, "stem_1")
            x, p = cell(x, p, filters // fm, True, "stem_2")
        else:
            x = layers.Conv2D(int(filters * stem_multiplier), 3, padding="same", **conv)(inputs)
            x = batch_norm("stem_bn1", batch_norm_momentum, sync_batch_norm)(x)
            p = None
        aux_input = None
        for stage in range(3):
            stage_filters = filters * fm**stage
            if stage:
                x, p0 = cell(x, p, stage_filters, True, f"reduce_{stage * num_cells}")
                p = p if skip_reduction else p0
            for i in range(num_cells):
                x, p = cell(x, p, stage_filters, False, f"{stage * num_cells + i + (stage > 0)}")
            if stage == 1:
                aux_input = x
        x = layers.ReLU(name="final_relu")(x)

        outputs = x
        if include_top:
            x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
            if dense_dropout_keep_prob < 1.0:
                x = layers.Dropout(1.0 - dense_dropout_keep_prob, seed=seed, name="dropout")(x)
            outputs = layers.Dense(
                classes, activation=classifier_activation, dtype="float32", name="predictions"
            )(x)
            if auxiliary_head:
                outputs = [
                    outputs,
                    _aux_head(aux_input, classes, classifier_activation, batch_norm_momentum,
                              sync_batch_norm),
                ]
        elif pooling == "avg":
            outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        elif pooling == "max":
            outputs = layers.GlobalMaxPooling2D(name="max_pool")(x)

        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        # === Config ===
        self.genotype = genotype
        self.num_cells = num_cells
        self.penultimate_filters = penultimate_filters
        self.stem = stem
        self.stem_multiplier = stem_multiplier
        self.filter_multiplier = filter_multiplier
        self.skip_reduction = bool(skip_reduction)
        self.auxiliary_head = bool(auxiliary_head)
        self.aux_loss_weight = aux_loss_weight
        self.drop_path_keep_prob = drop_path_keep_prob
        self.dense_dropout_keep_prob = dense_dropout_keep_prob
        self.image_shape = input_shape
        self.classes = classes
        self.include_top = include_top
        self.pooling = pooling
        self.classifier_activation = classifier_activation
        self.seed = seed
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.sync_batch_norm = bool(sync_batch_norm)

    def fit(self, x=None, y=None, *args, **kwargs):
        # Keras creates the optimizer's and the compiled metrics' variables ahead of the first
        # step only under a `tf.distribute` strategy; otherwise TensorFlow's first step creates
        # them while it is traced, and is traced again. Built here first, it is traced once.
        if getattr(self, "compiled", False) and getattr(self, "_distribute_strategy", 1) is None:
            build_compiled_state(self, label_row(x, y))
        return super().fit(x, y, *args, **kwargs)

    # -- the auxiliary head is a training-time output only ------------------------------------
    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        if self.auxiliary_head and not training:
            return outputs[0]
        return outputs

    def compute_output_spec(self, inputs, training=None, mask=None):
        spec = super().compute_output_spec(inputs, training=training, mask=mask)
        if self.auxiliary_head and not training:
            return spec[0]
        return spec

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not (self.auxiliary_head and isinstance(y_pred, (list, tuple))):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        main, aux = y_pred
        loss = super().compute_loss(x, y, main, sample_weight, training)
        if self.loss is None or self.aux_loss_weight == 0:
            return loss
        aux_loss_fn = keras.losses.get(self.loss)
        if isinstance(aux_loss_fn, keras.losses.Loss):
            aux_loss = aux_loss_fn(y, aux, sample_weight)
        else:
            values = aux_loss_fn(y, aux)
            if sample_weight is not None:
                weight = ops.reshape(ops.cast(sample_weight, values.dtype), ops.shape(values))
                values = values * weight
            aux_loss = ops.mean(values)
        return loss + ops.cast(self.aux_loss_weight, loss.dtype) * ops.cast(aux_loss, loss.dtype)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self.auxiliary_head and isinstance(y_pred, (list, tuple)):
            y_pred = y_pred[0]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "genotype": self.genotype.to_dict(),
            "num_cells": self.num_cells,
            "penultimate_filters": self.penultimate_filters,
            "stem": self.stem,
            "stem_multiplier": self.stem_multiplier,
            "filter_multiplier": self.filter_multiplier,
            "skip_reduction": self.skip_reduction,
            "auxiliary_head": self.auxiliary_head,
            "aux_loss_weight": self.aux_loss_weight,
            "drop_path_keep_prob": self.drop_path_keep_prob,
            "dense_dropout_keep_prob": self.dense_dropout_keep_prob,
            "input_shape": list(self.image_shape),
            "classes": self.classes,
            "include_top": self.include_top,
            "pooling": self.pooling,
            "classifier_activation": self.classifier_activation,
            "seed": self.seed,
            "batch_norm_momentum": self.batch_norm_momentum,
            "sync_batch_norm": self.sync_batch_norm,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _aux_head(x, classes, activation, momentum, synchronized):
    """ReLU, 5x5/3 avg pool, 1x1 conv 128, BN, ReLU, conv 768 over the whole map, BN, ReLU, FC."""
    conv = dict(use_bias=False, kernel_initializer="he_normal")
    x = layers.ReLU(name="aux_relu_1")(x)
    pool = (min(5, x.shape[1]), min(5, x.shape[2]))
    x = layers.AveragePooling2D(pool, strides=3, padding="valid", name="aux_pool")(x)
    x = layers.Conv2D(128, 1, name="aux_conv_1", **conv)(x)
    x = batch_norm("aux_bn_1", momentum, synchronized)(x)
    x = layers.ReLU(name="aux_relu_2")(x)
    x = layers.Conv2D(768, tuple(x.shape[1:3]), padding="valid", name="aux_conv_2", **conv)(x)
    x = batch_norm("aux_bn_2", momentum, synchronized)(x)
    x = layers.ReLU(name="aux_relu_3")(x)
    x = layers.Flatten(name="aux_flatten")(x)
    return layers.Dense(classes, activation=activation, dtype="float32", name="aux_predictions")(
        x
    )
