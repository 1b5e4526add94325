"""The 2016 layer-wise CNN architectures (Zoph & Le, arXiv 1611.01578, Sec. 3.3) and their builder.

An architecture is a sequence of convolutional layers; for each one the controller chose the
filter height and width (1, 3, 5, 7), the number of filters (24, 36, 48, 64), the stride, and
which earlier layers feed it. As the paper describes: a layer concatenates (along channels)
every layer that feeds it, zero-padding smaller feature maps to the largest; a layer that no
layer feeds reads the image; the outputs of all layers that feed no layer are concatenated
before the classifier.

`Layer` and `LayerwiseGenotype` hold such an architecture as data (they import without Keras,
as `nasnet_tf.genotype` does); `build_layerwise_cnn` turns one into a Keras model (ReLU, conv,
BN per layer; global average pooling; softmax). The search space over them, as KerasTuner
hyperparameters, is `tuners.layerwise_space.LayerwiseSearchSpace`.
"""

import dataclasses

from nasnet_tf import validators
from nasnet_tf.genotype import JSONGenotype, as_genotype

__all__ = ["FILTER_SIZES", "NUM_FILTERS", "Layer", "LayerwiseGenotype", "build_layerwise_cnn"]

FILTER_SIZES = (1, 3, 5, 7)
"""The paper's candidate filter heights and widths."""
NUM_FILTERS = (24, 36, 48, 64)
"""The paper's candidate numbers of filters."""
_LAYER_FIELDS = ("filter_height", "filter_width", "filters", "stride", "inputs")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One convolutional layer of a layer-wise architecture.

    Args:
        filter_height: kernel height.
        filter_width: kernel width.
        filters: number of output channels.
        stride: the stride along both spatial axes.
        inputs: indices of the earlier layers concatenated as this layer's input, or `()` to
            read the image. Stored sorted.

    Example:

    >>> Layer(3, 5, 36, inputs=[1, 0])
    Layer(filter_height=3, filter_width=5, filters=36, stride=1, inputs=(0, 1))
    """

    filter_height: int
    filter_width: int
    filters: int
    stride: int = 1
    inputs: tuple = ()

    def __post_init__(self):
        for name in ("filter_height", "filter_width", "filters", "stride"):
            object.__setattr__(self, name, validators.positive_int(getattr(self, name), name))
        inputs = validators.sequence(self.inputs, "inputs", "layer indices")
        for j in inputs:
            if isinstance(j, bool) or not isinstance(j, int) or j < 0:
                raise ValueError(
                    f"`inputs` must hold layer indices >= 0. Received: inputs={list(inputs)}"
                )
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"`inputs` must be distinct. Received: inputs={list(inputs)}")
        object.__setattr__(self, "inputs", tuple(sorted(inputs)))

    def to_dict(self):
        config = dataclasses.asdict(self)
        config["inputs"] = list(self.inputs)
        return config


@dataclasses.dataclass(frozen=True)
class LayerwiseGenotype(JSONGenotype):
    """A layer-wise CNN architecture: a sequence of `Layer`s, each reading earlier ones.

    Its JSON (`to_json`, as a layer-wise search writes it in `best_genotype.json`) is
    `{"layers": [{"filter_height": ..., "filter_width": ..., "filters": ..., "stride": ...,
    "inputs": [...]}, ...]}`.

    Args:
        layers: a sequence of `Layer` (or their dicts). Layer i may read layers 0..i-1 only.

    Example:

    >>> g = LayerwiseGenotype([Layer(3, 3, 24), Layer(5, 1, 36, inputs=[0])])
    >>> g.output_layers
    (1,)
    >>> str(g)
    '0=3x3x24/1(img) 1=5x1x36/1(0) -> 1'
    >>> LayerwiseGenotype.from_json(g.to_json()) == g
    True
    """

    JSON_KIND = "layer-wise genotype"

    layers: tuple

    def __post_init__(self):
        layers = validators.sequence(self.layers, "layers", "Layer", (str, bytes, dict))
        layers = tuple(_as_layer(layer) for layer in layers)
        if not layers:
            raise ValueError("An architecture needs at least one layer. Received: layers=()")
        for i, layer in enumerate(layers):
            late = [j for j in layer.inputs if j >= i]
            if late:
                raise ValueError(
                    f"Layer {i} reads layers {late}, which do not come before it. Layer {i} "
                    f"may read layers 0..{i - 1}. Received: inputs={list(layer.inputs)}"
                )
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self):
        return len(self.layers)

    @property
    def output_layers(self):
        """The layers no layer reads, concatenated before the classifier."""
        used = {j for layer in self.layers for j in layer.inputs}
        return tuple(i for i in range(len(self.layers)) if i not in used)

    def to_dict(self):
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data):
        validators.exact_keys(data, ["layers"], "A layer-wise genotype dict has exactly the key")
        return cls(data["layers"])

    def __str__(self):
        parts = []
        for i, layer in enumerate(self.layers):
            source = ",".join(map(str, layer.inputs)) if layer.inputs else "img"
            parts.append(
                f"{i}={layer.filter_height}x{layer.filter_width}x{layer.filters}"
                f"/{layer.stride}({source})"
            )
        return " ".join(parts) + " -> " + ",".join(map(str, self.output_layers))


def _as_layer(value):
    if isinstance(value, Layer):
        return value
    if isinstance(value, dict):
        validators.known_fields(value, _LAYER_FIELDS, "layer")
        missing = [name for name in _LAYER_FIELDS[:3] if name not in value]
        if missing:
            raise ValueError(
                f"A layer needs the fields {list(_LAYER_FIELDS[:3])}. Received: {value!r}"
            )
        return Layer(**value)
    raise ValueError(
        f"Each layer must be a Layer or a dict with keys {list(_LAYER_FIELDS)}. "
        f"Received: {value!r}"
    )


def _concat_padded(tensors, name):
    """Concatenates feature maps along channels, zero-padding smaller ones to the largest
    height and width (1611.01578, Sec. 3.3), centred as evenly as possible."""
    import keras

    if len(tensors) == 1:
        return tensors[0]
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    padded = []
    for k, t in enumerate(tensors):
        dh, dw = height - t.shape[1], width - t.shape[2]
        if dh or dw:
            t = keras.layers.ZeroPadding2D(
                ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), name=f"{name}_pad{k}"
            )(t)
        padded.append(t)
    return keras.layers.Concatenate(axis=-1, name=name)(padded)


def build_layerwise_cnn(
    genotype,
    *,
    input_shape=(32, 32, 3),
    classes=10,
    classifier_activation="softmax",
    batch_norm_momentum=0.99,
    seed=None,
    name="layerwise_cnn",
):
    """Builds the CNN of a layer-wise architecture.

    Each layer is ReLU, `Conv2D` (its filter size, filters and stride; `"same"` padding, no
    bias), then batch normalization, over the channel-wise concatenation of the layers that
    feed it (zero-padded to the largest map), or over the image when none does. The layers
    that feed no layer are concatenated, globally average-pooled and classified (in float32,
    also under a mixed-precision policy).

    Args:
        genotype: a `LayerwiseGenotype`, its dict, or a path to its JSON file.
        input_shape: `(height, width, channels)` of the images (channels last).
        classes: number of classes.
        classifier_activation: activation of the classifier, `None` for logits.
        batch_norm_momentum: momentum of the batch normalizations' moving statistics (Keras'
            0.99; lower, e.g. 0.9, for runs of a few hundred steps such as search children).
        seed: int or None. With an int, the kernels' initial values are drawn from it (layer
            i's conv from `seed + i`), so the same seed builds the same weights; None draws
            them from Keras' global seed (`keras.utils.set_random_seed`). The network has no
            dropout.
        name: the model's name.

    Returns:
        A functional `keras.Model` (ending in a `"predictions"` `Dense` layer).

    Example:

    >>> g = LayerwiseGenotype([Layer(3, 3, 24), Layer(1, 5, 36, stride=2, inputs=[0]),
    ...                        Layer(3, 1, 24, inputs=[0, 1])])
    >>> build_layerwise_cnn(g, input_shape=(8, 8, 3), classes=4, seed=0).output_shape
    (None, 4)
    """
    import keras

    genotype = as_genotype(genotype, LayerwiseGenotype)
    input_shape = validators.input_shape(input_shape)
    classes = validators.positive_int(classes, "classes")
    batch_norm_momentum = validators.momentum(batch_norm_momentum, "batch_norm_momentum")
    if seed is not None:
        seed = validators.positive_int(seed, "seed", minimum=0)

    def initializer(kind, offset):
        if seed is None:
            return kind
        return keras.initializers.get({"class_name": kind, "config": {"seed": seed + offset}})

    inputs = keras.Input(shape=input_shape, name="image")
    outputs = []
    for i, layer in enumerate(genotype.layers):
        sources = [outputs[j] for j in layer.inputs] or [inputs]
        x = _concat_padded(sources, name=f"layer{i}_concat")
        x = keras.layers.ReLU(name=f"layer{i}_relu")(x)
        x = keras.layers.Conv2D(
            layer.filters,
            (layer.filter_height, layer.filter_width),
            strides=layer.stride,
            padding="same",
            use_bias=False,
            kernel_initializer=initializer("GlorotUniform", i),
            name=f"layer{i}_conv",
        )(x)
        x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"layer{i}_bn")(x)
        outputs.append(x)
    x = _concat_padded([outputs[i] for i in genotype.output_layers], name="head_concat")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(
        classes,
        activation=classifier_activation,
        kernel_initializer=initializer("GlorotUniform", genotype.num_layers),
        dtype="float32",
        name="predictions",
    )(x)
    return keras.Model(inputs, x, name=name)
